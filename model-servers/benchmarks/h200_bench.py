"""GPU benchmark: SD 2.1's real architecture (random weights, fp16, 512x512, 25 steps, CFG) and
Llama 3.2 1B's (random weights, bf16), through the real app, on one GPU.

Phases (each writes JSON under --out as soon as it finishes; a time budget skips what won't fit):
  build      random-weight models from configs/ (no hub)
  unet       UNet FLOPs per step (torch.utils.flop_counter) and time per step for batches of
             1..16 images (x2 for CFG) in eager, torch.compile (Inductor) and Inductor + CUDA graphs:
             achieved TFLOP/s against the bf16/fp16 dense peak
  sd-cuda    the server on backend cuda, calibrated (open-loop ramp, p99 at the 900 ms SLO)
  sd-triton  the server on backend triton, calibrated
  llm-cuda   Llama 3.2 1B on backend cuda, calibrated

    python benchmarks/h200_bench.py --phases build,unet,sd-cuda --out /tmp/out
    python benchmarks/h200_bench.py --tiny --device cpu ...   (CPU rehearsal with tiny models)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

PEAK_TFLOPS = 989.0  # H100/H200 SXM dense bf16/fp16 tensor-core peak (datasheet)
SD_BODY = {"prompt": "a photo of an astronaut riding a horse on mars", "num_inference_steps": 25, "guidance_scale": 7.5}
LLM_BODY = {"prompt": "Write a short story about a robot learning to paint.", "max_new_tokens": 32, "ignore_eos": True}

T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


def save(out: Path, name: str, data: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(data, indent=2, default=str))


# ----------------------------------------------------------------------------- build


def build(a: argparse.Namespace) -> dict[str, Any]:
    from hwai_models import tiny

    res: dict[str, Any] = {}
    sd, llm = Path(a.work) / "sd21", Path(a.work) / "llama-3.2-1b"
    t = time.time()
    if not (sd / "unet" / "config.json").exists():
        (tiny.tiny_sd(sd) if a.tiny else tiny.random_sd21(sd, device=a.device))
    res["sd21_build_s"] = round(time.time() - t, 1)
    t = time.time()
    if not (llm / "config.json").exists():
        (tiny.tiny_llm(llm) if a.tiny else tiny.random_llm(llm, "llama-3.2-1b", device=a.device))
    res["llm_build_s"] = round(time.time() - t, 1)
    return res


# ----------------------------------------------------------------------------- unet microbench


def unet_bench(a: argparse.Namespace) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    dev = a.device
    dt = torch.float16 if dev == "cuda" else torch.float32
    sd = Path(a.work) / "sd21"
    unet = UNet2DConditionModel.from_pretrained(str(sd), subfolder="unet", torch_dtype=dt).to(dev).eval()
    vae = AutoencoderKL.from_pretrained(str(sd), subfolder="vae", torch_dtype=dt).to(dev).eval()
    if dev == "cuda":
        unet = unet.to(memory_format=torch.channels_last)
        vae = vae.to(memory_format=torch.channels_last)
    lat = a.image_size // 2 ** (len(vae.config.block_out_channels) - 1)
    ctx = unet.config.cross_attention_dim
    res: dict[str, Any] = {"image_size": a.image_size, "latent": lat, "dtype": str(dt), "peak_tflops": PEAK_TFLOPS}
    if dev == "cuda":
        res["gpu"] = torch.cuda.get_device_name()

    def inputs(n_img: int) -> tuple[Any, Any, Any]:
        b = 2 * n_img  # classifier-free guidance: conditional + unconditional
        return (
            torch.randn(b, 4, lat, lat, device=dev, dtype=dt),
            torch.randint(1, 999, (b,), device=dev),
            torch.randn(b, 77, ctx, device=dev, dtype=dt),
        )

    with torch.inference_mode():
        x, t, e = inputs(1)
        with FlopCounterMode(display=False) as fc:
            unet(x, t, encoder_hidden_states=e)
        unet_flops = fc.get_total_flops()
        z = torch.randn(1, 4, lat, lat, device=dev, dtype=dt)
        with FlopCounterMode(display=False) as fc:
            vae.decode(z)
        vae_flops = fc.get_total_flops()
    res["unet_flops_per_image_step"] = unet_flops  # CFG included (UNet batch 2)
    res["unet_tflop_per_image_step"] = round(unet_flops / 1e12, 4)
    res["vae_decode_tflop_per_image"] = round(vae_flops / 1e12, 4)
    res["tflop_per_image_25_steps"] = round((25 * unet_flops + vae_flops) / 1e12, 2)
    log(f"UNet {unet_flops / 1e12:.3f} TFLOP per image-step (CFG), VAE decode {vae_flops / 1e12:.3f} TFLOP")

    def timeit(fn: Any, n_img: int, iters: int) -> float:
        x, t, e = inputs(n_img)
        with torch.inference_mode():
            for _ in range(3):
                fn(x, t, e)
            if dev == "cuda":
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                times = []
                for _ in range(iters):
                    start.record()
                    fn(x, t, e)
                    end.record()
                    end.synchronize()
                    times.append(start.elapsed_time(end) / 1000)
            else:
                times = []
                for _ in range(iters):
                    t0 = time.perf_counter()
                    fn(x, t, e)
                    times.append(time.perf_counter() - t0)
        times.sort()
        return times[len(times) // 2]

    batches = [int(b) for b in a.batches.split(",")]
    res["modes"] = {}
    for mode in a.unet_modes.split(","):
        if time.time() - T0 > a.budget - 60:
            log(f"skip unet mode {mode}: out of time")
            continue
        torch._dynamo.reset()
        if mode == "eager":
            module = unet
        else:
            module = torch.compile(unet, mode=None if mode == "inductor" else "reduce-overhead", dynamic=None)

        def fn(x: Any, t: Any, e: Any, m: Any = module, compiled: bool = mode != "eager") -> Any:
            if compiled:
                for v in (x, t, e):
                    torch._dynamo.mark_dynamic(v, 0)
            return m(x, t, encoder_hidden_states=e, return_dict=False)[0]

        t_c = time.time()
        with torch.inference_mode():
            fn(*inputs(2))
            if dev == "cuda":
                torch.cuda.synchronize()
        rows = []
        first = round(time.time() - t_c, 1)
        for n in batches:
            s = timeit(fn, n, a.iters)
            tf = unet_flops * n / s / 1e12
            rows.append({"images": n, "unet_batch": 2 * n, "step_ms": round(s * 1000, 2), "tflops": round(tf, 1), "pct_peak": round(100 * tf / PEAK_TFLOPS, 1), "images_per_min_25_steps_unet_only": round(60 * n / (25 * s), 1)})
            log(f"{mode:16} {n:3d} images/step  {s * 1000:7.2f} ms  {tf:6.1f} TFLOP/s ({100 * tf / PEAK_TFLOPS:4.1f}% of peak)")
        res["modes"][mode] = {"first_call_s": first, "rows": rows}
    # VAE decode time per batch (eager)
    vae_rows = []
    with torch.inference_mode():
        for n in (1, 4):
            z = torch.randn(n, 4, lat, lat, device=dev, dtype=dt)
            for _ in range(2):
                vae.decode(z)
            if dev == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(5):
                vae.decode(z)
            if dev == "cuda":
                torch.cuda.synchronize()
            s = (time.perf_counter() - t0) / 5
            vae_rows.append({"images": n, "ms": round(s * 1000, 2), "tflops": round(vae_flops * n / s / 1e12, 1)})
    res["vae_decode"] = vae_rows
    del unet, vae
    if dev == "cuda":
        torch.cuda.empty_cache()
    return res


# ----------------------------------------------------------------------------- server + calibrator


def start_server(port: int, env_extra: dict[str, str], stdout: Path, stderr: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({"HWAI_PORT": str(port), "HWAI_HOST": "127.0.0.1", "HWAI_DRAIN_SECONDS": "0", "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])})
    env.update(env_extra)
    return subprocess.Popen([sys.executable, "-m", "hwai_models.server"], env=env, stdout=open(stdout, "w"), stderr=open(stderr, "w"), cwd=str(ROOT))


def is_ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/readiness", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(proc: subprocess.Popen, url: str, timeout: float, log_path: Path) -> float:
    """Seconds until the server's /readiness says yes; RuntimeError, with its log's tail, when it
    exits or ``timeout`` passes first."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
        if is_ready(url):
            return time.time() - t0
        time.sleep(0.5)
    raise RuntimeError(f"not ready after {timeout} s: {log_path.read_text()[-3000:]}")


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def prefill(a: argparse.Namespace, out: Path, env_extra: dict[str, str], buckets: list[int]) -> dict[str, Any]:
    """Fill Inductor's cache (TORCHINDUCTOR_CACHE_DIR) with every bucket's static compilation at
    once: one server per bucket, each compiling its one size, in parallel. The measured server then
    loads each size from the cache instead of compiling them one after another (~60-80 s each)."""
    t0 = time.time()
    procs = {k: start_server(a.port + 1 + k, {**env_extra, "HWAI_STEP_BUCKETS": str(k), "HWAI_MAX_BATCH_SIZE": str(k)}, Path(os.devnull), out / f"prefill-{k}.log") for k in buckets}
    ready: dict[int, float] = {}
    try:
        while len(ready) < len(procs) and time.time() - t0 < a.ready_timeout:
            for k, proc in procs.items():
                if k not in ready and proc.poll() is None and is_ready(f"http://127.0.0.1:{a.port + 1 + k}"):
                    ready[k] = round(time.time() - t0, 1)
            if all(k in ready or p.poll() is not None for k, p in procs.items()):
                break
            time.sleep(1)
    finally:
        stop(list(procs.values()))
    res = {"buckets": buckets, "readyAfterS": ready, "failed": sorted(set(procs) - set(ready)), "seconds": round(time.time() - t0, 1)}
    log(f"prefill: {res}")
    return res


def serve_calibrate(a: argparse.Namespace, name: str, env_extra: dict[str, str], body: dict[str, Any], calib: list[str]) -> dict[str, Any]:
    import httpx

    from hwai_models import calibrate

    out = Path(a.out) / name
    out.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"env": env_extra}
    buckets = [int(k) for k in env_extra.get("HWAI_STEP_BUCKETS", "").split(",") if k.strip()]
    if a.prefill and buckets and env_extra.get("HWAI_COMPILE_DYNAMIC") == "false":
        res["prefill"] = prefill(a, out, env_extra, buckets)
    emf_path, log_path = out / "emf.jsonl", out / "server.log"
    proc = start_server(a.port, env_extra, emf_path, log_path)
    url = f"http://127.0.0.1:{a.port}"
    try:
        res["time_to_ready_s"] = round(wait_ready(proc, url, a.ready_timeout, log_path), 1)
        log(f"{name}: ready after {res['time_to_ready_s']} s")
        info0 = httpx.get(url + "/info", timeout=5).json()
        # One request alone: the unloaded latency.
        single = []
        for _ in range(3):
            t = time.perf_counter()
            r = httpx.post(url + info0["route"], json=body, timeout=60)
            single.append(round(time.perf_counter() - t, 4))
            assert r.status_code == 200, r.text[:500]
        res["unloaded_latency_s"] = single
        log(f"{name}: unloaded latency {single}")
        # The calibration ends inside this invocation's budget (25 s kept for shutting the server
        # down and the EMF check), so a device call's limit never takes its figures with it.
        left = max(30.0, a.budget - (time.time() - T0) - 25)
        args = ["--url", url, "--body", json.dumps(body), "--out", str(Path(a.out) / "calibration.yaml"), "--plot", str(out / "breaking-point.png"), "--json", str(out / "calibration.json"), *calib, "--max-seconds", f"{left:.0f}"]
        rc = calibrate.main(args)
        res["calibrate_rc"] = rc
        info = httpx.get(url + "/info", timeout=5).json()
        res["info"] = info
        cal = json.loads((out / "calibration.json").read_text())
        res["breakingPoint"] = cal.get("breakingPoint")
        res["confirmed"], res["spread"], res["repeats"] = cal.get("confirmed"), cal.get("spread"), cal.get("repeats")
        res["firstFailure"] = cal.get("firstFailure")
        res["cutShort"] = cal.get("cutShort")
        res["method"] = cal.get("method")
    finally:
        stop([proc])
    # EMF sanity: every line parses and carries the dimensions
    n_ok = n_err = 0
    for line in emf_path.read_text().splitlines():
        d = json.loads(line)
        assert d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "hw-agnostic-infer"
        n_ok += int(d.get("RequestCount", 0))
        n_err += int(d.get("ErrorCount", 0))
    res["emf_request_count"], res["emf_error_count"] = n_ok, n_err
    return res


def sd_phase(a: argparse.Namespace, backend: str, unit_extra: dict[str, str], name: str | None = None, unit: str | None = None) -> dict[str, Any]:
    env = {
        "HWAI_TASK": "text-to-image",
        "HWAI_BACKEND": backend if not a.tiny else "cpu",
        "HWAI_MODEL_DIR": str(Path(a.work) / "sd21"),
        "HWAI_SERVICE": "sd21",
        "HWAI_UNIT": unit or f"sd21-h200-{backend}",
        "HWAI_MAX_BATCH_SIZE": str(a.sd_max_batch),
        "HWAI_IMAGE_SIZE": str(a.image_size),
        "HWAI_MAX_QUEUE": "4096",
        "HWAI_MAX_WAIT_S": "3600",  # measure the queue beyond the breaking point, not refusals
    }
    if a.tiny:
        env["HWAI_UNIT"] = f"sd21-tiny-{backend}"
    env.update(unit_extra)
    for kv in a.server_env:
        k, _, v = kv.partition("=")
        env[k] = v
    calib = ["--slo", str(a.slo), "--start-rpm", str(a.sd_start_rpm if backend == "cuda" else a.sd_triton_start_rpm), "--growth", str(a.growth), "--step-seconds", str(a.step_seconds), "--refine", str(a.refine), "--cooldown", "1", "--timeout", "30", "--min-requests", str(a.min_requests), "--repeat", str(a.repeat), "--seed", str(a.seed), "--max-rpm", str(a.max_rpm), "--descend", str(a.descend)]
    body = dict(SD_BODY)
    if a.tiny:
        body["num_inference_steps"] = 5
    res = serve_calibrate(a, name or f"sd-{backend}", env, body, calib)
    bp = res.get("breakingPoint")
    fl = unet_flops(a)
    if bp:
        ipm = bp["offered_rpm"]
        res["images_per_min"] = round(ipm, 1)
        if fl:
            res["sustained_unet_tflops_at_breaking_point"] = round(ipm / 60 * 25 * fl / 1e12, 1)
        # batch and UNet rate over the breaking-point step alone (the server's counters over it)
        st = bp.get("server_stats") or {}
        fig = step_figures(bp)
        res["mean_batch"], res["unet_busy_while_active"] = fig["meanBatch"], fig["unetBusyWhileActive"]
        if fl and st.get("unetSeconds"):
            tf = st["samplesStepped"] * fl / st["unetSeconds"] / 1e12
            res["unet_tflops_while_stepping"] = round(tf, 1)
            res["unet_pct_peak_while_stepping"] = round(100 * tf / PEAK_TFLOPS, 1)
    record_result(a, res, backend)
    return res


def unet_flops(a: argparse.Namespace) -> float | None:
    """FLOPs of one UNet call per image (CFG included): this run's count, else the committed one
    (a property of the architecture, counted by the unet phase)."""
    fl = a.results.get("unet", {}).get("unet_flops_per_image_step")
    committed = HERE / "h200" / "unet-microbench.json"
    if not fl and not a.tiny and committed.exists():
        fl = json.loads(committed.read_text()).get("unet", {}).get("unet_flops_per_image_step")
    return fl


def step_figures(step: dict[str, Any] | None) -> dict[str, Any] | None:
    """A calibration step's figures from the server's counters over that step alone."""
    if not step:
        return None
    st = step.get("server_stats") or {}
    n, unet, active = st.get("steps"), st.get("unetSeconds"), st.get("activeSeconds")
    return {
        "imagesPerMinute": step["offered_rpm"], "p99Seconds": round(step["p99"], 3), "p50Seconds": round(step["p50"], 3),
        "meanBatch": round(st["samplesStepped"] / n, 2) if n else None,
        "unetMsPerStep": round(1000 * unet / n, 2) if n and unet else None,
        # of the time a batch was running, the share the GPU spent in the UNet (the rest: the
        # host preparing steps, the decoder, the text encoder)
        "unetBusyWhileActive": round(unet / active, 3) if unet and active else None,
    }


def record_result(a: argparse.Namespace, res: dict[str, Any], backend: str) -> None:
    """One unit's entry in --out/results.json (merged with what is there)."""
    bp = res.get("breakingPoint")
    unit = res["env"].get("HWAI_UNIT") or ""
    path = Path(a.out) / "results.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc[unit] = {
        "backend": backend,
        "imagesPerMinute": res.get("images_per_min"),
        "p99Seconds": round(bp["p99"], 3) if bp else None,
        "p50Seconds": round(bp["p50"], 3) if bp else None,
        "unetTflops": res.get("unet_tflops_while_stepping"),
        "meanBatch": res.get("mean_batch"),
        "unetBusyWhileActive": res.get("unet_busy_while_active"),
        "confirmed": res.get("confirmed"),
        "cutShort": res.get("cutShort"),
        "spread": res.get("spread"),
        "requestsAtBreakingPoint": bp["sent"] if bp else None,
        "breakingPointStep": step_figures(bp),
        "firstFailingStep": step_figures(res.get("firstFailure")),
        "sloSeconds": a.slo,
        "levers": {k: v for k, v in res["env"].items() if k in LEVER_VARS},
        "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python3 benchmarks/h200_bench.py " + " ".join(sys.argv[1:]),
    }
    save(Path(a.out), "results.json", doc)


LEVER_VARS = ("HWAI_CUDNN_BENCHMARK", "HWAI_INDUCTOR_OPTIONS", "HWAI_COMPILE_MODE", "HWAI_CHANNELS_LAST", "HWAI_FUSE_QKV", "HWAI_COMPILE_VAE", "HWAI_FP8", "HWAI_STEP_GRAPHS", "HWAI_COMPILE_DYNAMIC", "HWAI_STEP_BUCKETS", "HWAI_LATENCY_TARGET_S")
BEGIN, END = "<!-- results.json: begin (generated by h200_bench.py --table) -->", "<!-- results.json: end -->"


def results_table(doc: dict[str, Any]) -> str:
    """The README's table, from results.json."""
    rows = [
        "| unit | backend | levers set (others at their defaults) | highest passing step, images/min | p99 | p50 | p99 over it and its repeats | every repeat passed | UNet TFLOP/s there | mean batch there | first failing step: images/min, p99, mean batch, UNet ms per step, UNet busy while a batch ran | measured |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | --- | --- |",
    ]
    fmt = lambda v, f="{}": "—" if v is None else f.format(v)  # noqa: E731
    for unit, r in sorted(doc.items()):
        sp = r.get("spread") or {}
        p99s = sp.get("p99Seconds") or []
        lev = ", ".join(f"{k.removeprefix('HWAI_').lower()}={v}" for k, v in (r.get("levers") or {}).items()) or "defaults"
        ff = r.get("firstFailingStep")
        fail = f"{ff['imagesPerMinute']}, {ff['p99Seconds']} s, {fmt(ff['meanBatch'])}, {fmt(ff['unetMsPerStep'], '{} ms')}, {fmt(ff['unetBusyWhileActive'])}" if ff else "—"
        rows.append(
            f"| {unit} | {r['backend']} | {lev} | **{fmt(r.get('imagesPerMinute'))}** | {fmt(r.get('p99Seconds'), '{} s')} | {fmt(r.get('p50Seconds'), '{} s')} | "
            f"{fmt(f'{p99s[0]:.3f}–{p99s[1]:.3f} s' if p99s else None)} | {fmt(r.get('confirmed'))} | {fmt(r.get('unetTflops'))} | {fmt(r.get('meanBatch'))} | {fail} | {r['measuredAt'][:10]} |"
        )
    return "\n".join(rows)


def update_readme(results: Path, readme: Path) -> None:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme}: no {BEGIN} ... {END} block to fill")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(head + BEGIN + "\n" + results_table(json.loads(results.read_text())) + "\n" + END + tail)


def llm_phase(a: argparse.Namespace) -> dict[str, Any]:
    env = {
        "HWAI_TASK": "text-generation",
        "HWAI_BACKEND": "cuda" if not a.tiny else "cpu",
        "HWAI_MODEL_DIR": str(Path(a.work) / "llama-3.2-1b"),
        "HWAI_SERVICE": "llama32-1b",
        "HWAI_UNIT": "llama32-1b-h200-cuda" if not a.tiny else "llama32-1b-tiny-cpu",
        "HWAI_DTYPE": "bfloat16" if not a.tiny else "float32",
        "HWAI_MAX_BATCH_SIZE": str(a.llm_max_batch),
        "HWAI_BATCH_WAIT_MS": "2",
        "HWAI_MAX_QUEUE": "4096",
        "HWAI_MAX_WAIT_S": "3600",  # measure the queue beyond the breaking point, not refusals
    }
    calib = ["--slo", str(a.slo), "--start-rpm", str(a.llm_start_rpm), "--growth", str(a.growth), "--step-seconds", str(a.step_seconds), "--refine", str(a.refine), "--cooldown", "1", "--timeout", "30"]
    return serve_calibrate(a, "llm-cuda", env, LLM_BODY, calib)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phases", default="build,unet,sd-cuda,sd-triton,llm-cuda")
    p.add_argument("--out", help="folder for the JSON (required except with --table)")
    p.add_argument("--work", default="/tmp/hwai-bench")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny models on CPU: a rehearsal of the whole script")
    p.add_argument("--budget", type=float, default=560.0, help="seconds this invocation may take")
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--batches", default="1,2,4,8,12,16")
    p.add_argument("--unet-modes", default="eager,inductor,inductor-cudagraphs")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--sd-max-batch", type=int, default=12)
    p.add_argument("--llm-max-batch", type=int, default=32)
    p.add_argument("--triton-mode", default="default", help="HWAI_COMPILE_MODE for sd-triton")
    p.add_argument("--step-buckets", default="2,4,8", help="HWAI_STEP_BUCKETS for sd-triton-static")
    p.add_argument("--latency-target", type=float, default=0.85, help="HWAI_LATENCY_TARGET_S for sd-triton-bounded")
    p.add_argument("--slo", type=float, default=0.9)
    p.add_argument("--growth", type=float, default=1.25)
    p.add_argument("--step-seconds", type=float, default=15.0)
    p.add_argument("--refine", type=int, default=3)
    p.add_argument("--sd-start-rpm", type=float, default=40.0)
    p.add_argument("--sd-triton-start-rpm", type=float, default=120.0)
    p.add_argument("--llm-start-rpm", type=float, default=120.0)
    p.add_argument("--port", type=int, default=18080)
    p.add_argument("--min-requests", type=int, default=300, help="calibrator: arrivals per step at least")
    p.add_argument("--repeat", type=int, default=2, help="calibrator: repeats of the breaking point with other seeds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--descend", type=int, default=2, help="calibrator: steps down when the first rate fails (a run started too high still finds its point)")
    p.add_argument("--max-rpm", type=float, default=1e6, help="calibrator: highest rate tried (to re-measure one rate: --sd-triton-start-rpm R --max-rpm R)")
    p.add_argument("--table", type=Path, help="only (re)write README.md's table from this results.json, and stop")
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--prefill", action="store_true", help="static buckets: compile every bucket at once, one server each, into Inductor's cache before the measured server starts")
    p.add_argument("--server-env", action="append", default=[], metavar="HWAI_X=V", help="another server setting for the SD phases (a lever: recorded in results.json)")
    a = p.parse_args()
    if a.table:
        update_readme(a.table, HERE / "h200" / "README.md")
        return 0
    if not a.out:
        p.error("--out is required")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    a.results = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    prev = Path(a.work) / "unet.json"
    if "unet" not in a.results and prev.exists():
        a.results["unet"] = json.loads(prev.read_text())
    if a.device == "cuda":
        import torch

        a.results["env"] = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name()}
    for phase in a.phases.split(","):
        if time.time() - T0 > a.budget - 30:
            log(f"skip {phase}: out of time")
            continue
        log(f"== {phase}")
        try:
            if phase == "build":
                a.results["build"] = build(a)
            elif phase == "unet":
                a.results["unet"] = unet_bench(a)
                Path(a.work).mkdir(parents=True, exist_ok=True)
                (Path(a.work) / "unet.json").write_text(json.dumps(a.results["unet"]))
            elif phase == "sd-cuda":
                a.results["sd-cuda"] = sd_phase(a, "cuda", {})
            elif phase == "sd-triton":
                a.results["sd-triton"] = sd_phase(a, "triton", {"HWAI_COMPILE_MODE": a.triton_mode})
            elif phase == "sd-triton-cg":  # the earlier CUDA graph trees (torch.compile's reduce-overhead)
                a.results["sd-triton-cg"] = sd_phase(a, "triton", {"HWAI_COMPILE_MODE": "reduce-overhead", "HWAI_STEP_GRAPHS": "false"}, "sd-triton-cg", "sd21-h200-triton-cudagraphs")
            elif phase == "sd-triton-levers":  # 2026-11-29's levers (channels_last off, fused QKV, compiled VAE), graph trees
                a.results[phase] = sd_phase(a, "triton", {"HWAI_COMPILE_MODE": "reduce-overhead", "HWAI_STEP_GRAPHS": "false"}, phase, "sd21-h200-triton-levers")
            elif phase == "sd-triton-graphs":  # every lever at its default: the whole step captured per batch size
                a.results[phase] = sd_phase(a, "triton", {"HWAI_COMPILE_MODE": a.triton_mode}, phase, "sd21-h200-triton-graphs")
            elif phase == "sd-triton-static":  # static-shape compilations, one per step bucket
                # buckets other than the first run's (2,4,8) are a unit of their own in results.json
                buckets = a.step_buckets.replace(" ", "")
                unit = "sd21-h200-triton-static" + ("" if buckets == "2,4,8" else "-" + buckets.replace(",", "-"))
                a.results[phase] = sd_phase(a, "triton", {"HWAI_COMPILE_MODE": a.triton_mode, "HWAI_COMPILE_DYNAMIC": "false", "HWAI_STEP_BUCKETS": a.step_buckets}, phase, unit)
            elif phase == "sd-triton-bounded":  # the step graphs plus the batch bound at a target under the SLO
                a.results[phase] = sd_phase(a, "triton", {"HWAI_COMPILE_MODE": a.triton_mode, "HWAI_LATENCY_TARGET_S": str(a.latency_target)}, phase, "sd21-h200-triton-bounded")
            elif phase == "sd-triton-fp8":
                a.results[phase] = sd_phase(a, "triton", {"HWAI_COMPILE_MODE": a.triton_mode, "HWAI_FP8": "true"}, phase, "sd21-h200-triton-graphs-fp8")
            elif phase == "llm-cuda":
                a.results["llm-cuda"] = llm_phase(a)
            else:
                raise SystemExit(f"unknown phase {phase}")
        except Exception as e:  # noqa: BLE001 - record and go on to the next phase
            import traceback

            a.results[phase + "-error"] = traceback.format_exc()
            log(f"{phase} failed: {e}")
        save(out, "summary.json", a.results)
    # short table last
    print("\n==== summary ====")
    u = a.results.get("unet", {})
    if u:
        print(f"UNet {u.get('unet_tflop_per_image_step')} TFLOP/image-step (CFG); VAE {u.get('vae_decode_tflop_per_image')} TFLOP/image")
        for mode, m in u.get("modes", {}).items():
            print(f"  {mode:20} first call {m['first_call_s']}s: " + ", ".join(f"{r['images']}img {r['step_ms']}ms {r['tflops']}TF/s" for r in m["rows"]))
    for k in ("sd-cuda", "sd-triton", "sd-triton-cg", "sd-triton-levers", "sd-triton-graphs", "sd-triton-static", "sd-triton-bounded", "sd-triton-fp8", "llm-cuda"):
        r = a.results.get(k)
        if r and r.get("breakingPoint"):
            bp = r["breakingPoint"]
            print(f"{k:10} breaking point {bp['offered_rpm']:.1f}/min (achieved {bp['achieved_rpm']:.1f})  p50 {bp['p50']:.3f}s p99 {bp['p99']:.3f}s  ready {r.get('time_to_ready_s')}s  unloaded {r.get('unloaded_latency_s')}  unet {r.get('unet_tflops_while_stepping')} TF/s  mean batch {r.get('mean_batch')}  unet busy {r.get('unet_busy_while_active')}")
        elif k in a.results or k + "-error" in a.results:
            print(f"{k:10} no breaking point: {str(a.results.get(k + '-error', ''))[-300:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
