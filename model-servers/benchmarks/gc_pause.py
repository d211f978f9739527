"""How long one full garbage collection stalls a model server, and what gc.freeze() leaves of it.

Loads the tiny SD UNet (CPU), compiles it with torch.compile for batch sizes 1..N as static shapes
(as HWAI_COMPILE_DYNAMIC=false with a step graph per size does), and after the load and each size
prints the number of Python objects alive and the time of one full collection (gc.collect()); then
freezes them (what the server does after its warm-up, HWAI_GC_FREEZE) and times a full collection
again. A full collection holds the GIL: the diffusion engine's thread cannot queue the next step
for that long, and every request in flight waits with it.

    python benchmarks/gc_pause.py --sizes 7 --out /tmp/gc.json

``--serve N`` instead runs the real server (tiny SD 2.1-shaped model, CPU, 32x32, 25 steps) in its
own process, sends it N requests (4 at a time), and reads from /info how many collections of each
kind ran while it served them and the longest pause: with HWAI_GC_FREEZE=false and =true.

    python benchmarks/gc_pause.py --serve 300
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # h200_bench's server start


def full_collection_ms() -> float:
    t = time.perf_counter()
    gc.collect()
    return round(1000 * (time.perf_counter() - t), 1)


def serve(n: int) -> list[dict[str, Any]]:
    """The real server on the tiny model, ``n`` requests, the collector's counters over them."""
    import asyncio
    import os
    import socket

    import h200_bench
    import httpx

    from hwai_models import tiny

    work = Path(tempfile.mkdtemp(prefix="hwai-gc-"))
    tiny.tiny_sd(work / "sd")
    rows = []
    for freeze in ("false", "true"):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        env = {"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "gc", "HWAI_UNIT": "gc-cpu", "HWAI_MODEL_DIR": str(work / "sd"), "HWAI_IMAGE_SIZE": "32", "HWAI_GC_FREEZE": freeze}
        log = work / f"server-{freeze}.log"
        proc = h200_bench.start_server(port, env, Path(os.devnull), log)
        url = f"http://127.0.0.1:{port}"
        try:
            h200_bench.wait_ready(proc, url, 120, log)
            before = httpx.get(url + "/info").json()["stats"]

            async def load() -> None:
                sem = asyncio.Semaphore(4)
                async with httpx.AsyncClient(timeout=60) as client:

                    async def one(i: int) -> None:
                        async with sem:
                            r = await client.post(url + "/v1/text-to-image", json={"prompt": f"a photo number {i}", "seed": i})
                            r.raise_for_status()

                    await asyncio.gather(*(one(i) for i in range(n)))

            t0 = time.time()
            asyncio.run(load())
            after = httpx.get(url + "/info").json()["stats"]
            row = {"HWAI_GC_FREEZE": freeze, "requests": n, "seconds": round(time.time() - t0, 1), "frozenObjects": after["gcFrozenObjects"],
                   "fullCollections": after["gcFullCollections"] - before["gcFullCollections"],
                   "fullCollectionSeconds": round(after["gcFullPauseSeconds"] - before["gcFullPauseSeconds"], 3),
                   "allCollectionSeconds": round(after["gcPauseSeconds"] - before["gcPauseSeconds"], 3),
                   "longestPauseMsSinceStart": after["maxGcPauseMs"]}
            rows.append(row)
            print(row, flush=True)
        finally:
            h200_bench.stop([proc])
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, default=7, help="compile batch sizes 1..N (static shapes)")
    p.add_argument("--out", help="also write the figures here (JSON)")
    p.add_argument("--serve", type=int, default=0, help="instead: N requests through the real server, with and without the freeze")
    a = p.parse_args()
    if a.serve:
        rows = serve(a.serve)
        if a.out:
            Path(a.out).write_text(json.dumps({"machine": "this machine's CPU", "python": sys.version.split()[0], "rows": rows}, indent=1))
        return

    import torch
    from diffusers import UNet2DConditionModel

    from hwai_models import tiny

    work = Path(tempfile.mkdtemp(prefix="hwai-gc-"))
    tiny.tiny_sd(work / "sd")
    unet = UNet2DConditionModel.from_pretrained(str(work / "sd"), subfolder="unet").eval()
    cfg = unet.config
    rows: list[dict[str, Any]] = [{"after": "model loaded", "objects": len(gc.get_objects()), "fullCollectionMs": full_collection_ms()}]
    print(rows[-1], flush=True)
    fn = torch.compile(unet, dynamic=False)
    with torch.inference_mode():
        for n in range(1, a.sizes + 1):
            b = 2 * n  # classifier-free guidance
            x = torch.randn(b, cfg.in_channels, cfg.sample_size, cfg.sample_size)
            fn(x, torch.full((b,), 5), encoder_hidden_states=torch.randn(b, 77, cfg.cross_attention_dim))
            rows.append({"after": f"compiled for {n} images", "objects": len(gc.get_objects()), "fullCollectionMs": full_collection_ms()})
            print(rows[-1], flush=True)
    gc.freeze()
    rows.append({"after": "gc.freeze()", "frozen": gc.get_freeze_count(), "fullCollectionMs": full_collection_ms()})
    print(rows[-1], flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps({"machine": "this machine's CPU", "python": sys.version.split()[0], "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
