"""How long one full garbage collection stalls a model server, and what gc.freeze() leaves of it.

Loads the tiny SD UNet (CPU), compiles it with torch.compile for batch sizes 1..N as static shapes
(as HWAI_COMPILE_DYNAMIC=false with a step graph per size does), and after the load and each size
prints the number of Python objects alive and the time of one full collection (gc.collect()); then
freezes them (what the server does after its warm-up, HWAI_GC_FREEZE) and times a full collection
again. A full collection holds the GIL: the diffusion engine's thread cannot queue the next step
for that long, and every request in flight waits with it.

    python benchmarks/gc_pause.py --sizes 7 --out /tmp/gc.json
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


def full_collection_ms() -> float:
    t = time.perf_counter()
    gc.collect()
    return round(1000 * (time.perf_counter() - t), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, default=7, help="compile batch sizes 1..N (static shapes)")
    p.add_argument("--out", help="also write the figures here (JSON)")
    a = p.parse_args()

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
