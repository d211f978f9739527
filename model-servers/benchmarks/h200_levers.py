"""The issue-10 levers, each measured on its own on the GPU, no server: SD 2.1's real UNet and VAE
(random weights, fp16, 512x512 -> 64x64 latents, CFG so UNet batch = 2 x images).

Per variant: the compiled UNet's step time (median of CUDA-event-timed calls, after warm-up) at a
fixed batch bucket, its TFLOP/s against the counted FLOPs, its compile time, and its drift against
the eager fp16 UNet on fixed inputs (relative L2 of the noise prediction). Then the VAE decoder,
eager against compiled, and the stall a decode puts on a running batch, same stream against a
second stream. Writes --out/levers.json after every variant, so a run cut short keeps what it got.

    python benchmarks/h200_levers.py --work /tmp/hb --out $OUT --images 4 --budget 540
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from h200_scaling import median_ms, relative_l2  # noqa: E402
PEAK_TFLOPS = 989.0
T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/hb")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=4, help="images per step (UNet batch = 2 x this)")
    p.add_argument("--budget", type=float, default=540)
    p.add_argument("--variants", default="inductor,channels_last,fused_qkv,fp8,cudagraphs,all_but_autotune,max_autotune")
    p.add_argument("--skip-vae", action="store_true", help="leave out the VAE decoder's measurements")
    p.add_argument("--skip-eager", action="store_true", help="leave out the eager UNet's time")
    p.add_argument(
        "--variant-timeout", type=float, default=0.0,
        help="run each compiled variant in a process of its own, killed after this many seconds (0: all in this process); "
        "a variant that hangs in compilation then costs only its own time",
    )
    a = p.parse_args()

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    from hwai_models import tiny

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sd = Path(a.work) / "sd21"
    if not (sd / "unet" / "config.json").exists():
        tiny.random_sd21(sd)
    dev, dt = "cuda", torch.float16
    res: dict[str, Any] = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "images": a.images, "unetBatch": 2 * a.images, "variants": {}}
    try:
        import torchao

        res["torchao"] = torchao.__version__
    except Exception as e:  # noqa: BLE001
        res["torchao"] = f"absent: {type(e).__name__}: {e}"

    def save() -> None:
        (out / "levers.json").write_text(json.dumps(res, indent=2, default=str))

    def load_unet() -> Any:
        return UNet2DConditionModel.from_pretrained(str(sd), subfolder="unet", torch_dtype=dt).to(dev).eval()

    g = torch.Generator(device=dev).manual_seed(1234)
    b = 2 * a.images
    x = torch.randn(b, 4, 64, 64, device=dev, dtype=dt, generator=g)
    t = torch.full((b,), 501, device=dev, dtype=torch.long)
    e = torch.randn(b, 77, 1024, device=dev, dtype=dt, generator=g)

    ref_unet = load_unet()
    with torch.inference_mode():
        with FlopCounterMode(display=False) as fc:
            ref = ref_unet(x, t, encoder_hidden_states=e, return_dict=False)[0].float()
        flops = fc.get_total_flops()
    res["unetTflopPerStep"] = round(flops / 1e12, 3)
    del ref_unet
    torch.cuda.empty_cache()

    def time_calls(fn: Callable[[], Any], iters: int = 30) -> float:
        return median_ms(torch, fn, iters)

    def drift(y: Any) -> float:
        return relative_l2(y, ref)

    if not a.skip_eager:  # the reference's own time
        unet = load_unet()
        with torch.inference_mode():
            ms = time_calls(lambda: unet(x, t, encoder_hidden_states=e, return_dict=False)[0])
        res["variants"]["eager"] = {"ms": round(ms, 2), "tflops": round(flops / ms / 1e9, 1), "drift": 0.0}
        log(f"eager: {ms:.2f} ms")
        save()
        del unet

    # the VAE decoder: eager vs compiled, and the stall it puts on a running batch
    if not a.skip_vae:
        torch._dynamo.reset()
        vae = AutoencoderKL.from_pretrained(str(sd), subfolder="vae", torch_dtype=dt).to(dev).eval()
        vae = vae.to(memory_format=torch.channels_last)
        z = torch.randn(1, 4, 64, 64, device=dev, dtype=dt)
        v: dict[str, Any] = {}
        with torch.inference_mode():
            v["eagerMs1"] = round(time_calls(lambda: vae.decode(z, return_dict=False)[0], 15), 2)
            dec = torch.compile(vae.decode, mode="default", dynamic=False)
            t1 = time.time()
            dec(z, return_dict=False)
            torch.cuda.synchronize()
            v["compileS"] = round(time.time() - t1, 1)
            v["compiledMs1"] = round(time_calls(lambda: dec(z, return_dict=False)[0], 15), 2)
            # the stall: 5 UNet steps of the running batch with one decode among them, on the same
            # stream and on a second one; the batch's step time is what a sample waits for
            unet = load_unet()  # eager: the overlap is the question, not the step's speed
            step = lambda: unet(x, t, encoder_hidden_states=e, return_dict=False)[0]  # noqa: E731
            side = torch.cuda.Stream()

            def steps_with_decode(second: bool) -> None:
                for k in range(5):
                    step()
                    if k == 1:
                        if second:
                            side.wait_stream(torch.cuda.current_stream())
                            with torch.cuda.stream(side):
                                dec(z, return_dict=False)
                        else:
                            dec(z, return_dict=False)

            v["fiveStepsMs"] = round(time_calls(lambda: [step() for _ in range(5)], 10), 2)
            v["fiveStepsPlusDecodeSameStreamMs"] = round(time_calls(lambda: steps_with_decode(False), 10), 2)
            v["fiveStepsPlusDecodeSecondStreamMs"] = round(time_calls(lambda: (steps_with_decode(True), torch.cuda.current_stream().wait_stream(side)), 10), 2)
        res["vae"] = v
        log(f"vae: {v}")
        save()
        del unet, vae, dec
    torch._dynamo.reset()

    recipes = {
        # name: (channels_last, fused_qkv, fp8, compile mode, attention kernel (None: PyTorch's choice))
        "inductor": (False, False, False, "default", None),
        "channels_last": (True, False, False, "default", None),
        "fused_qkv": (False, True, False, "default", None),
        "cudagraphs": (False, False, False, "reduce-overhead", None),
        "fp8": (False, False, True, "default", None),
        "fused_qkv_fp8": (False, True, True, "default", None),
        "fused_qkv_cudnn_attention": (False, True, False, "default", "CUDNN_ATTENTION"),
        "fused_qkv_autotune": (False, True, False, "max-autotune-no-cudagraphs", None),
        "all_but_autotune": (True, True, True, "reduce-overhead", None),
        "max_autotune": (True, True, False, "max-autotune", None),
    }
    for name in a.variants.split(","):
        left = a.budget - (time.time() - T0)
        if left < 90:
            res["variants"][name] = {"skipped": f"time budget ({left:.0f} s left)"}
            continue
        if a.variant_timeout > 0:
            res["variants"][name] = run_variant_alone(a, name, min(a.variant_timeout, left - 10))
            log(f"{name}: {res['variants'][name]}")
            save()
            continue
        cl, fq, fp8, mode, attention = recipes[name]
        torch._dynamo.reset()
        torch.cuda.empty_cache()
        row: dict[str, Any] = {"channelsLast": cl, "fusedQkv": fq, "fp8": fp8, "mode": mode, "attention": attention}
        from contextlib import nullcontext

        from torch.nn.attention import SDPBackend, sdpa_kernel

        kernel = (lambda: sdpa_kernel(getattr(SDPBackend, attention))) if attention else nullcontext
        try:
            unet = load_unet()
            if cl:
                unet = unet.to(memory_format=torch.channels_last)
            if fq:
                unet.fuse_qkv_projections()
            if fp8:
                # per-tensor scales: torchao's per-row float8 refuses fp16 weights (bf16 only), and
                # the workload stays fp16 (run 2026-11-29: "PerRow quantization only works for
                # bfloat16 precision input weight")
                from hwai_models.backends import float8_linears

                float8_linears(unet)
            xi = x.to(memory_format=torch.channels_last) if cl else x
            fn = torch.compile(unet, mode=mode, dynamic=False)
            t1 = time.time()
            with torch.inference_mode(), kernel():
                y = fn(xi, t, encoder_hidden_states=e, return_dict=False)[0]
                torch.cuda.synchronize()
                row["compileS"] = round(time.time() - t1, 1)
                row["drift"] = drift(y.clone())
                call = lambda: fn(xi, t, encoder_hidden_states=e, return_dict=False)[0]  # noqa: E731
                if mode in ("default", "max-autotune-no-cudagraphs"):
                    # timed as the server runs it: one CUDA graph replay per step (GPU time alone,
                    # no launch or guard overhead)
                    try:
                        from hwai_models.tasks.diffusion_engine import StepGraph  # the server's own capture

                        call, row["timing"] = StepGraph(call, (), capture=True).graph.replay, "cuda-graph replay"
                    except Exception as ex:  # noqa: BLE001 - time the plain calls instead
                        row["timing"] = f"calls (capture failed: {type(ex).__name__}: {str(ex)[:200]})"
                ms = time_calls(call)
            row["ms"] = round(ms, 2)
            row["tflops"] = round(flops / ms / 1e9, 1)
            row["pctPeak"] = round(100 * flops / ms / 1e9 / PEAK_TFLOPS, 1)
            log(f"{name}: {ms:.2f} ms, {row['tflops']} TFLOP/s, drift {row['drift']:.2e}, compile {row['compileS']} s")
        except Exception as ex:  # noqa: BLE001 - a lever that fails is a figure too
            row["error"] = f"{type(ex).__name__}: {str(ex)[:400]}"
            log(f"{name}: failed: {row['error']}")
        res["variants"][name] = row
        save()
        del unet

    print(json.dumps(res, indent=1, default=str))


def run_variant_alone(a: argparse.Namespace, name: str, timeout: float) -> dict[str, Any]:
    """One variant in a child process of this script (its own CUDA context, its own compilation),
    killed when its time is up."""
    import subprocess

    child_out = Path("/tmp") / f"hwai-levers-{name}"
    cmd = [sys.executable, __file__, "--work", a.work, "--out", str(child_out), "--images", str(a.images), "--variants", name, "--skip-vae", "--skip-eager", "--budget", str(timeout + 60)]
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s (killed)"}
    rows = json.loads((child_out / "levers.json").read_text())["variants"] if (child_out / "levers.json").exists() else {}
    if name not in rows:
        return {"error": f"exited {proc.returncode} after {time.time() - t0:.0f} s without a result: {proc.stderr[-400:]}"}
    return rows[name]


if __name__ == "__main__":
    main()
