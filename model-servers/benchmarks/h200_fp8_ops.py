"""How much of the UNet step FP8 could take off, measured op by op on the GPU: every convolution
and linear layer of SD 2.1's UNet (random weights, 512x512, CFG, 8 images -> UNet batch 16) run
with its real captured input, and its attention at each resolution, each timed as CUDA-graph
replays:

- fp16 as PyTorch runs it (cuDNN convolutions NCHW and channels-last, cuBLAS linears, SDPA): the
  floor;
- FP8 E4M3 with static per-tensor scales (per output channel for convolution weights):
  convolutions through cuDNN's graph API (``nvidia-cudnn-frontend``, carried as a wheel: PyTorch
  has no FP8 convolution), channels-last, fp16 out, every engine plan cuDNN builds timed and the
  fastest kept (with the descale epilogue and without); linears through ``torch._scaled_mm``, fp16
  out; attention through cuDNN's ``sdpa_fp8``, FP8 out (fp16 out of it is Blackwell-only);
- the cast of the input to FP8 on its own, which a compiler would fuse into the kernel before the
  op, so it is reported apart.

Also each op's drift (relative L2 of the FP8 output against fp16) and, with ``--step-ms`` (the
measured static step at this size), the step with each op at its faster precision and everything
else unchanged (``project``), with and without the casts. Writes --out/fp8_ops.json.

    python benchmarks/h200_fp8_ops.py --work /tmp/hb --out $OUT/fp8-ops --images 8 --step-ms 31.35
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
sys.path.insert(0, str(HERE))  # h200_scaling's timing and drift
T0 = time.time()
FP8_MAX = 448.0  # E4M3's largest finite value
KINDS = {"conv", "linear", "attention"}


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def project(rows: list[dict[str, Any]], step_ms: float) -> dict[str, Any]:
    """The step with each op at its faster precision (FP8 where it beat fp16, fp16 elsewhere), the
    rest unchanged: per kind the fp16 and best milliseconds per step (count x per call), the casts
    the FP8 ops need, and the projected step and its fraction of ``step_ms``, without and with
    those casts (which a compiler would fuse into the kernel before, or not)."""
    kinds: dict[str, dict[str, float]] = {}
    for r in rows:
        if "fp8Ms" not in r or "fp16Ms" not in r:
            continue
        k = kinds.setdefault(r["kind"], {"fp16Ms": 0.0, "bestMs": 0.0, "castMs": 0.0, "ops": 0, "opsInFp8": 0})
        in_fp8 = r["fp8Ms"] < r["fp16Ms"]
        k["fp16Ms"] += r["count"] * r["fp16Ms"]
        k["bestMs"] += r["count"] * min(r["fp8Ms"], r["fp16Ms"])
        k["castMs"] += r["count"] * r.get("castMs", 0.0) * in_fp8
        k["ops"] += r["count"]
        k["opsInFp8"] += r["count"] * in_fp8
    saved = sum(k["fp16Ms"] - k["bestMs"] for k in kinds.values())
    casts = sum(k["castMs"] for k in kinds.values())
    out: dict[str, Any] = {"byKind": {n: {m: round(v, 3) for m, v in k.items()} for n, k in kinds.items()}}
    if step_ms > 0:
        out.update({
            "stepMs": step_ms,
            "projectedStepMs": round(step_ms - saved, 3),
            "projectedFraction": round((step_ms - saved) / step_ms, 3),
            "projectedStepWithCastsMs": round(step_ms - saved + casts, 3),
            "projectedFractionWithCasts": round((step_ms - saved + casts) / step_ms, 3),
        })
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/hb")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=8, help="images per step (UNet batch = 2 x this)")
    p.add_argument("--step-ms", type=float, default=0.0, help="the measured static step at this size (h200_scaling.py), for the projection")
    p.add_argument("--reps", type=int, default=20, help="calls per captured graph")
    p.add_argument("--skip", default="", help="comma-separated kinds to leave out: conv, linear, attention")
    a = p.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    if skip - KINDS:
        p.error(f"--skip: unknown kind(s) {', '.join(sorted(skip - KINDS))}; the kinds are {', '.join(sorted(KINDS))}")

    import torch
    import torch.nn.functional as F

    from h200_scaling import median_ms, relative_l2
    from hwai_models import tiny
    from hwai_models.tasks.diffusion_engine import StepGraph

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sd = Path(a.work) / "sd21"
    if not (sd / "unet" / "config.json").exists():
        tiny.random_sd21(sd)
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(str(sd), subfolder="unet", torch_dtype=torch.float16).cuda().eval()
    unet.fuse_qkv_projections()
    import cudnn  # after torch, whose libcudnn it then finds loaded

    handle = cudnn.create_handle()
    res: dict[str, Any] = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "cudnnBackend": cudnn.backend_version_string(), "cudnnFrontend": cudnn.__version__, "images": a.images, "rows": []}

    # Every conv and linear's input at this batch, once per distinct signature, with its count.
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}

    def hook(mod: Any, args: tuple[Any, ...], _out: Any) -> None:
        x = args[0]
        if isinstance(mod, torch.nn.Conv2d):
            key = ("conv", tuple(x.shape), tuple(mod.weight.shape), mod.stride, mod.padding)
        else:
            key = ("linear", tuple(x.shape), tuple(mod.weight.shape))
        if key in seen:
            seen[key]["count"] += 1
        else:
            seen[key] = {"count": 1, "x": x.detach().clone(), "mod": mod}

    hs = [m.register_forward_hook(hook) for m in unet.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    g = torch.Generator(device="cuda").manual_seed(1234)
    b, lat = 2 * a.images, 64
    with torch.inference_mode():
        unet(torch.randn(b, 4, lat, lat, device="cuda", dtype=torch.float16, generator=g), torch.full((b,), 501, device="cuda"), encoder_hidden_states=torch.randn(b, 77, 1024, device="cuda", dtype=torch.float16, generator=g))
    for h in hs:
        h.remove()
    log(f"{len(seen)} distinct ops, {sum(v['count'] for v in seen.values())} calls per step")

    def replay_ms(call: Callable[[], Any], setup: Callable[[], None] = lambda: None) -> float:
        """Per call: ``setup`` and ``a.reps`` calls captured as one CUDA graph by the engine's own
        ``StepGraph`` (warmed on a side stream first), the median of 10 replays (``median_ms``);
        where the call cannot be captured, 50 calls back to back between two events."""

        def calls() -> None:
            setup()
            for _ in range(a.reps):
                call()

        try:
            return median_ms(torch, StepGraph(calls, (), capture=True).graph.replay, iters=10) / a.reps
        except Exception as ex:  # noqa: BLE001
            log(f"capture failed ({type(ex).__name__}: {str(ex)[:120]}); timing 50 calls between events")
            torch.cuda.synchronize()
            setup()
            s, f = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(50):
                call()
            f.record()
            f.synchronize()
            return s.elapsed_time(f) / 50

    def on_current_stream() -> None:
        cudnn.set_stream(handle=handle, stream=torch.cuda.current_stream().cuda_stream)

    def fp8(t: Any, scale: Any) -> Any:
        return (t / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)

    def fp8_conv(x8: Any, w8: Any, descale: Any, stride: list[int], pad: list[int], shape: Any) -> tuple[float, dict[str, Any], Any]:
        """An FP8 convolution through cuDNN's graph API, fp16 out (times ``descale`` per output
        channel when given), channels-last. Every engine plan cuDNN builds for it is timed: the
        fastest (what an autotuner would keep), and heuristics' own first choice (plan 0)."""
        y = torch.empty(shape, device="cuda", dtype=torch.float16).contiguous(memory_format=torch.channels_last)
        gr = cudnn.pygraph(io_data_type=cudnn.data_type.HALF, intermediate_data_type=cudnn.data_type.FLOAT, compute_data_type=cudnn.data_type.FLOAT, handle=handle)
        X = gr.tensor(name="x", dim=list(x8.shape), stride=list(x8.stride()), data_type=cudnn.data_type.FP8_E4M3)
        W = gr.tensor(name="w", dim=list(w8.shape), stride=list(w8.stride()), data_type=cudnn.data_type.FP8_E4M3)
        Y = gr.conv_fprop(image=X, weight=W, padding=pad, stride=stride, dilation=[1, 1], compute_data_type=cudnn.data_type.FLOAT)
        pack = {X: x8, W: w8}
        if descale is not None:
            D = gr.tensor(name="d", dim=list(descale.shape), stride=list(descale.stride()), data_type=cudnn.data_type.FLOAT)
            Y = gr.mul(a=Y, b=D, compute_data_type=cudnn.data_type.FLOAT)
            pack[D] = descale
        Y.set_output(True)
        Y.set_data_type(cudnn.data_type.HALF)
        Y.set_dim(list(y.shape))
        Y.set_stride(list(y.stride()))
        pack[Y] = y
        gr.validate()
        gr.build_operation_graph()
        gr.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        gr.check_support()
        gr.build_plans(cudnn.build_plan_policy.ALL)
        times: dict[str, float] = {}
        for i in range(gr.get_execution_plan_count()):
            try:
                wsp = torch.empty(max(1, gr.get_workspace_size_plan_at_index(i)), device="cuda", dtype=torch.uint8)
                times[f"{i}:{gr.get_plan_name_at_index(i)}"] = replay_ms(lambda i=i, wsp=wsp: gr.execute_plan_at_index(pack, wsp, i, handle=handle), on_current_stream)
            except Exception as ex:  # noqa: BLE001 - a plan that will not run is skipped
                log(f"plan {i} failed: {type(ex).__name__}: {str(ex)[:100]}")
        if not times:
            raise RuntimeError("no plan ran")
        best = min(times, key=times.__getitem__)
        i = int(best.split(":")[0])
        torch.cuda.synchronize()
        gr.execute_plan_at_index(pack, torch.empty(max(1, gr.get_workspace_size_plan_at_index(i)), device="cuda", dtype=torch.uint8), i, handle=handle)
        torch.cuda.synchronize()
        first = next(iter(times))
        return times[best], {"count": len(times), "best": best, "heuristicsFirst": first, "heuristicsFirstMs": round(times[first], 5)}, y

    def fp8_attention(q: Any, k: Any, v: Any, ref: Any) -> tuple[float, Any]:
        """Attention over FP8 Q, K, V through cuDNN's ``sdpa_fp8`` (inference: no softmax stats),
        per-tensor scales. FP8 out: cuDNN gives fp16 out of FP8 attention only on Blackwell, and
        in an FP8 UNet the output feeds the FP8 ``to_out`` linear as it is. Returns the time and
        the output dequantised."""
        qs, ks, vs = (t.float().abs().amax() / FP8_MAX for t in (q, k, v))
        os = ref.float().abs().amax()  # the output's range, as a calibration pass would record it
        q8, k8, v8 = fp8(q, qs), fp8(k, ks), fp8(v, vs)
        one = lambda val: torch.full((1, 1, 1, 1), float(val), device="cuda", dtype=torch.float32)  # noqa: E731
        scales = {"dq": one(qs), "dk": one(ks), "dv": one(vs), "ds": one(1 / FP8_MAX), "ss": one(FP8_MAX), "so": one(FP8_MAX / os)}
        o = torch.empty(ref.shape, device="cuda", dtype=torch.float8_e4m3fn)
        gr = cudnn.pygraph(io_data_type=cudnn.data_type.FP8_E4M3, intermediate_data_type=cudnn.data_type.FLOAT, compute_data_type=cudnn.data_type.FLOAT, handle=handle)
        Q, K, V = (gr.tensor(name=n, dim=list(t.shape), stride=list(t.stride()), data_type=cudnn.data_type.FP8_E4M3) for n, t in (("q", q8), ("k", k8), ("v", v8)))
        S = {n: gr.tensor(name=n, dim=[1, 1, 1, 1], stride=[1, 1, 1, 1], data_type=cudnn.data_type.FLOAT) for n in scales}
        O, _stats, amax_s, amax_o = gr.sdpa_fp8(q=Q, k=K, v=V, descale_q=S["dq"], descale_k=S["dk"], descale_v=S["dv"], descale_s=S["ds"], scale_s=S["ss"], scale_o=S["so"], generate_stats=False, attn_scale=q.shape[-1] ** -0.5, use_causal_mask=False)
        O.set_output(True)
        O.set_data_type(cudnn.data_type.FP8_E4M3)
        O.set_dim(list(o.shape))
        O.set_stride(list(o.stride()))
        amaxes = []
        for t in (amax_s, amax_o):
            t.set_output(True)
            t.set_data_type(cudnn.data_type.FLOAT)
            t.set_dim([1, 1, 1, 1])
            t.set_stride([1, 1, 1, 1])
            amaxes.append(torch.empty(1, 1, 1, 1, device="cuda", dtype=torch.float32))
        gr.build([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        wsp = torch.empty(max(1, gr.get_workspace_size()), device="cuda", dtype=torch.uint8)
        pack = {Q: q8, K: k8, V: v8, O: o, amax_s: amaxes[0], amax_o: amaxes[1], **{S[n]: t for n, t in scales.items()}}
        ms = replay_ms(lambda: gr.execute(pack, wsp, handle=handle), on_current_stream)
        torch.cuda.synchronize()
        gr.execute(pack, wsp, handle=handle)
        torch.cuda.synchronize()
        return ms, o.float() * (os / FP8_MAX)

    def record(row: dict[str, Any]) -> None:
        """One op's figures: logged, and fp8_ops.json rewritten with the projection so far, so
        that a run cut short keeps what it got."""
        row.update({k: round(v, 5) for k, v in row.items() if isinstance(v, float)})
        log(json.dumps(row))
        res["rows"].append(row)
        res["projection"] = project(res["rows"], a.step_ms)
        (out / "fp8_ops.json").write_text(json.dumps(res, indent=1))

    # SD 2.1 at 512x512: head dim 64; 5, 10, 20, 20 heads at 64x64, 32x32, 16x16 and the 8x8 middle;
    # self-attention over the latent's pixels and cross-attention over the 77 text tokens, each
    # five times per step at the first three resolutions (two down, three up) and once in the middle
    attention = [(4096, 5, 5), (1024, 10, 5), (256, 20, 5), (64, 20, 1)]
    with torch.inference_mode():
        for s_q, heads, count in attention if "attention" not in skip else []:
            for s_kv in (s_q, 77):
                q = torch.randn(b, heads, s_q, 64, device="cuda", dtype=torch.float16, generator=g)
                k, v = (torch.randn(b, heads, s_kv, 64, device="cuda", dtype=torch.float16, generator=g) for _ in range(2))
                ref = F.scaled_dot_product_attention(q, k, v)
                row: dict[str, Any] = {"kind": "attention", "query": [b, heads, s_q, 64], "keys": s_kv, "count": count}
                try:
                    row["fp16Ms"] = replay_ms(lambda: F.scaled_dot_product_attention(q, k, v))
                    row["fp8Ms"], o = fp8_attention(q, k, v, ref)
                    row["drift"] = relative_l2(o, ref)
                    row["castMs"] = replay_ms(lambda: (fp8(q, 1.0), fp8(k, 1.0), fp8(v, 1.0)))
                    row["speedup"] = round(row["fp16Ms"] / row["fp8Ms"], 3)
                except Exception as ex:  # noqa: BLE001
                    row["error"] = f"{type(ex).__name__}: {str(ex)[:300]}"
                record(row)

    with torch.inference_mode():
        for key, v in sorted(seen.items(), key=lambda kv: str(kv[0])) if "conv" not in skip or "linear" not in skip else []:
            if key[0] in skip:
                continue
            x, mod = v["x"], v["mod"]
            w = mod.weight.detach()
            row = {"kind": key[0], "input": list(x.shape), "weight": list(w.shape), "count": v["count"]}
            try:
                xs = x.float().abs().amax() / FP8_MAX
                if key[0] == "conv":
                    stride, pad = list(mod.stride), list(mod.padding)
                    ref = F.conv2d(x, w, stride=stride, padding=pad)
                    xc, wc = x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last)
                    row["fp16NchwMs"] = replay_ms(lambda: F.conv2d(x, w, stride=stride, padding=pad))
                    row["fp16NhwcMs"] = replay_ms(lambda: F.conv2d(xc, wc, stride=stride, padding=pad))
                    row["fp16Ms"] = min(row["fp16NchwMs"], row["fp16NhwcMs"])
                    ws = w.float().abs().amax(dim=(1, 2, 3)) / FP8_MAX  # per output channel
                    x8, w8 = fp8(xc, xs), fp8(wc, ws.view(-1, 1, 1, 1))
                    descale = (xs * ws).view(1, -1, 1, 1).contiguous()
                    for epilogue in ("descale", "none"):  # fp16 out with the scales applied; the bare FP8 convolution
                        try:
                            ms, plans, y = fp8_conv(x8, w8, descale if epilogue == "descale" else None, stride, pad, ref.shape)
                        except Exception as ex:  # noqa: BLE001
                            row[f"fp8Error_{epilogue}"] = f"{type(ex).__name__}: {str(ex)[:200]}"
                            continue
                        row[f"fp8Ms_{epilogue}"], row[f"fp8Plans_{epilogue}"] = ms, plans
                        if epilogue == "descale":
                            row["fp8Ms"], row["drift"] = ms, relative_l2(y, ref)
                    row["castMs"] = replay_ms(lambda: fp8(xc, xs))
                else:
                    x2 = x.reshape(-1, x.shape[-1])
                    ref = F.linear(x2, w)
                    row["fp16Ms"] = replay_ms(lambda: F.linear(x2, w))
                    ws = w.float().abs().amax() / FP8_MAX
                    x8, w8 = fp8(x2, xs), fp8(w, ws)
                    sa, sb = xs.float().reshape(()), ws.float().reshape(())
                    mm = lambda: torch._scaled_mm(x8, w8.t(), scale_a=sa, scale_b=sb, out_dtype=torch.float16)  # noqa: E731
                    row["fp8Ms"] = replay_ms(mm)
                    row["drift"] = relative_l2(mm(), ref)
                    row["castMs"] = replay_ms(lambda: fp8(x2, xs))
                row["speedup"] = round(row["fp16Ms"] / row["fp8Ms"], 3)
            except Exception as ex:  # noqa: BLE001 - an op cuDNN or cuBLAS refuses is a figure too
                row["error"] = f"{type(ex).__name__}: {str(ex)[:300]}"
            record(row)
    print(json.dumps(res["projection"], indent=1))


if __name__ == "__main__":
    main()
