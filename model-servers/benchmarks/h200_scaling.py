"""How the compiled UNet step's time grows with the batch, as the server runs it: static shapes,
one torch.compile'd graph and one CUDA graph replay per batch size, SD 2.1's real UNet (random
weights, 512x512 -> 64x64 latents, CFG so UNet batch = 2 x images, fused QKV projections).

Prints and writes per size the median step time, its TFLOP/s, and the least-squares fit
``step(N) = fixed + perImage * N`` over the sizes measured: the per-image part is what sets the
server's breaking point at a p99 (the p99 sees the bursts, where N is large), the fixed part what a
lone request pays. With ``--profile-size N`` it also breaks one step's GPU time down by kernel
kind (convolutions, matrix multiplies, attention, Inductor's fused norm/elementwise kernels,
layout copies). ``--fp8 row|tensor`` puts the UNet's linear layers in float8 (torchao) and reports
the drift of the noise prediction against the same UNet without it. Writes --out/scaling.json
after every size, so a run cut short keeps what it got.

    python benchmarks/h200_scaling.py --work /tmp/hb --out $OUT/fp16 --sizes 2,4,8,12 --profile-size 8
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
T0 = time.time()

# Kernel kinds by name, first match wins (CUDA kernel names as the profiler reports them).
KINDS = [
    # Inductor's generated kernels first: their names list the ops they fused ("convolution" for a
    # convolution's bias added in a norm kernel), and the convolution itself is cuDNN's
    ("inductor fused (norm, elementwise)", re.compile(r"^triton_", re.I)),
    ("attention", re.compile(r"flash|fmha|attention|sdpa", re.I)),
    ("convolution", re.compile(r"conv|implicit_gemm|fprop|dgrad|cudnn", re.I)),
    ("matmul", re.compile(r"gemm|cutlass|nvjet|xmma|scaled_mm|f8f8", re.I)),
    ("layout copy", re.compile(r"nchwToNhwc|nhwcToNchw|transpose|copy_kernel|elementwise_kernel.*copy", re.I)),
]


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def kind_of(name: str) -> str:
    return next((k for k, rx in KINDS if rx.search(name)), "other")


def fit(points: list[tuple[int, float]]) -> dict[str, float] | None:
    """Least squares step(N) = fixed + perImage * N."""
    if len(points) < 2:
        return None
    n = len(points)
    sx = sum(x for x, _ in points)
    sy = sum(y for _, y in points)
    sxx = sum(x * x for x, _ in points)
    sxy = sum(x * y for x, y in points)
    b = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return {"fixedMs": round((sy - b * sx) / n, 3), "perImageMs": round(b, 3)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/hb")
    p.add_argument("--out", required=True)
    p.add_argument("--sizes", default="2,4,8,12", help="images per step (UNet batch = 2 x this), one static compilation each")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
    p.add_argument("--fp8", default="none", choices=["none", "row", "tensor"], help="the UNet's linears in float8 (torchao), per-row or per-tensor scales")
    p.add_argument("--no-fused-qkv", action="store_true")
    p.add_argument("--dynamic", action="store_true", help="one compilation dynamic in the batch, a CUDA graph per size (the server's default) instead of one static compilation per size")
    p.add_argument("--channels-last", action="store_true", help="the UNet's weights and inputs channels-last (HWAI_CHANNELS_LAST=on)")
    p.add_argument("--mode", default="default", help="torch.compile mode (max-autotune-no-cudagraphs: Inductor's autotuning)")
    p.add_argument("--profile-size", type=int, default=0, help="break this size's step down by kernel kind")
    p.add_argument("--budget", type=float, default=1e9, help="stop starting sizes after this many seconds")
    p.add_argument("--image-size", type=int, default=512, help="the images' side (latents are 1/8 of it): the workload is 512x512 whatever the UNet's config says")
    p.add_argument("--tiny", action="store_true", help="rehearse on the CPU with the tiny test model (no CUDA graphs, no profile)")
    p.add_argument("--cudnn-benchmark", action="store_true", help="also time each size with cuDNN's autotuner on (torch.backends.cudnn.benchmark), same compiled code")
    p.add_argument("--inductor", default="", help="Inductor options for the compilation, as the server's HWAI_INDUCTOR_OPTIONS: e.g. conv_1x1_as_mm=true,coordinate_descent_tuning=true")
    a = p.parse_args()

    import torch
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    from hwai_models import tiny

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch._dynamo.config.cache_size_limit = 64
    from hwai_models.backends import inductor_options, set_inductor_options

    set_inductor_options(inductor_options(a.inductor))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sd = Path(a.work) / ("sd-tiny" if a.tiny else "sd21")
    if not (sd / "unet" / "config.json").exists():
        tiny.tiny_sd(sd) if a.tiny else tiny.random_sd21(sd)
    dev, dt = ("cpu", torch.float32) if a.tiny else ("cuda", getattr(torch, a.dtype))
    res: dict[str, Any] = {
        "gpu": "cpu (tiny rehearsal)" if a.tiny else torch.cuda.get_device_name(), "torch": torch.__version__, "dtype": a.dtype, "fp8": a.fp8,
        "fusedQkv": not a.no_fused_qkv, "mode": a.mode, "dynamicBatch": a.dynamic, "channelsLast": a.channels_last,
        "inductor": inductor_options(a.inductor),
        "timing": f"median of 30 CUDA-graph replays, {'one compilation dynamic in the batch' if a.dynamic else 'static shapes'}", "sizes": {},
    }
    save = lambda: (out / "scaling.json").write_text(json.dumps(res, indent=2))  # noqa: E731

    unet = UNet2DConditionModel.from_pretrained(str(sd), subfolder="unet", torch_dtype=dt).to(dev).eval()
    if not a.no_fused_qkv:
        unet.fuse_qkv_projections()
    if a.channels_last:
        unet = unet.to(memory_format=torch.channels_last)

    cfg = unet.config
    latent = cfg.sample_size if a.tiny else a.image_size // 8  # SD 2.1's config says 96 (768x768); the workload is 512x512
    res["latentSize"] = latent

    def inputs(n: int) -> tuple[Any, Any, Any]:
        g = torch.Generator(device=dev).manual_seed(1234)
        b = 2 * n
        return (
            torch.randn(b, cfg.in_channels, latent, latent, device=dev, dtype=dt, generator=g),
            torch.full((b,), 501, device=dev, dtype=torch.long),
            torch.randn(b, 77, cfg.cross_attention_dim, device=dev, dtype=dt, generator=g),
        )

    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]  # none: only the FLOP count (and the fp8 drift)
    with torch.inference_mode():
        x1, t1, e1 = inputs(1)
        with FlopCounterMode(display=False) as fc:
            ref = unet(x1, t1, encoder_hidden_states=e1, return_dict=False)[0].float()
        per_image = fc.get_total_flops()
    res["unetTflopPerImage"] = round(per_image / 1e12, 4)
    if a.fp8 != "none":
        from hwai_models.backends import float8_linears

        float8_linears(unet, per_row=a.fp8 == "row")
        with torch.inference_mode():  # the drift float8 adds, eager against the same UNet unquantised
            yq = unet(x1, t1, encoder_hidden_states=e1, return_dict=False)[0].float()
        res["fp8Drift"] = relative_l2(yq, ref)
        log(f"linears in float8 ({a.fp8}): drift {res['fp8Drift']:.3e}")
    fn = torch.compile(unet, mode=a.mode, dynamic=None if a.dynamic else False)

    for n in sizes:
        left = a.budget - (time.time() - T0)
        if left < 45:
            res["sizes"][str(n)] = {"skipped": f"time budget ({left:.0f} s left)"}
            save()
            continue
        x, t, e = inputs(n)
        if a.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if a.dynamic:  # as the server marks them (backends.mark_batch_dynamic)
            for v in (x, t, e):
                torch._dynamo.mark_dynamic(v, 0)
        row: dict[str, Any] = {}
        try:
            with torch.inference_mode():
                c0 = time.time()
                y = fn(x, t, encoder_hidden_states=e, return_dict=False)[0]
                if dev == "cuda":
                    torch.cuda.synchronize()
                row["compileS"] = round(time.time() - c0, 1)
                del y
                if dev == "cpu":
                    ms = median_ms(torch, lambda: fn(x, t, encoder_hidden_states=e, return_dict=False), cuda=False)
                    row.update({"ms": round(ms, 3), "tflops": round(per_image * n / ms / 1e9, 4), "msPerImage": round(ms / n, 3)})
                else:
                    row.update(graph_replay_figures(torch, fn, x, t, e, n, per_image, a.profile_size))
                    if a.cudnn_benchmark:  # the same compiled code, cuDNN picking its convolutions by timing them
                        torch.backends.cudnn.benchmark = True
                        row["cudnnBenchmarkMs"] = graph_replay_figures(torch, fn, x, t, e, n, per_image, 0)["ms"]
                        torch.backends.cudnn.benchmark = False
            log(f"{n} images: {row}")
        except Exception as ex:  # noqa: BLE001 - a size that fails is a figure too
            row["error"] = f"{type(ex).__name__}: {str(ex)[:400]}"
            log(f"{n} images: failed: {row['error']}")
        res["sizes"][str(n)] = row
        res["fit"] = fit([(int(k), v["ms"]) for k, v in res["sizes"].items() if "ms" in v])
        save()
    print(json.dumps(res, indent=1))


def relative_l2(y: Any, ref: Any) -> float:
    """The drift of ``y`` from ``ref``: the relative L2 norm of their difference, in float32."""
    return float((y.float() - ref.float()).norm() / ref.float().norm())


def median_ms(torch: Any, call: Callable[[], Any], iters: int = 30, cuda: bool = True) -> float:
    """The median time of ``iters`` calls after 5 warm-ups: CUDA events around each on a GPU (its
    own time, no launch queue), the wall clock on a CPU."""
    for _ in range(5):
        call()
    times = []
    if not cuda:
        for _ in range(iters):
            c = time.perf_counter()
            call()
            times.append(1000 * (time.perf_counter() - c))
        return sorted(times)[iters // 2]
    torch.cuda.synchronize()
    s, f = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(iters):
        s.record()
        call()
        f.record()
        f.synchronize()
        times.append(s.elapsed_time(f))
    return sorted(times)[iters // 2]


def graph_replay_figures(torch: Any, fn: Any, x: Any, t: Any, e: Any, n: int, per_image: float, profile_size: int) -> dict[str, Any]:
    """The step for ``n`` images captured as a CUDA graph: its replay time, and its kernels by kind."""
    from hwai_models.tasks.diffusion_engine import StepGraph  # the server's own capture

    graph = StepGraph(lambda x, t, e: fn(x, t, encoder_hidden_states=e, return_dict=False), (x, t, e), capture=True)
    ms = median_ms(torch, graph.graph.replay)
    row: dict[str, Any] = {"ms": round(ms, 3), "tflops": round(per_image * n / ms / 1e9, 1), "msPerImage": round(ms / n, 3)}
    del graph
    if n == profile_size:
        row["profile"] = profile(torch, lambda: fn(x, t, encoder_hidden_states=e, return_dict=False))
    return row


def profile(torch: Any, call: Callable[[], Any]) -> dict[str, Any]:
    """GPU time of 5 compiled calls by kernel kind (ms per step) and the top kernels."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    for _ in range(3):
        call()
    torch.cuda.synchronize()
    with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            call()
        torch.cuda.synchronize()
    by_kind: dict[str, float] = {}
    by_name: dict[str, float] = {}
    for ev in prof.events():
        if ev.device_type != torch.autograd.DeviceType.CUDA:
            continue
        us = ev.time_range.elapsed_us()
        by_kind[kind_of(ev.name)] = by_kind.get(kind_of(ev.name), 0.0) + us
        by_name[ev.name] = by_name.get(ev.name, 0.0) + us
    print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=25), flush=True)
    total = sum(by_kind.values())
    return {
        "gpuMsPerStep": round(total / 5 / 1000, 3),
        "byKindMs": {k: round(v / 5 / 1000, 3) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
        "topKernelsMs": [[name[:120], round(us / 5 / 1000, 3)] for name, us in sorted(by_name.items(), key=lambda kv: -kv[1])[:15]],
    }


if __name__ == "__main__":
    main()
