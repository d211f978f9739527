"""Backend plumbing: device, dtype, torch.compile for the ``triton`` backend (neuron: :mod:`.neuron`)."""

from __future__ import annotations

import logging
from typing import Any

from .config import Backend, Settings

log = logging.getLogger("hwai_models.backends")


def torch_dtype(settings: Settings) -> Any:
    import torch

    if settings.dtype != "auto":
        return getattr(torch, settings.dtype)
    if settings.backend in (Backend.CUDA, Backend.TRITON):
        return torch.float16
    return torch.float32


def check_backend(settings: Settings) -> None:
    """Fail at start-up, with a clear message, when the backend cannot run here."""
    if settings.backend in (Backend.CUDA, Backend.TRITON):
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError(f"backend {settings.backend.value!r} needs a CUDA GPU and none is visible")
    if settings.backend == Backend.NEURON:
        from .neuron import optimum_neuron

        optimum_neuron()  # raises ImportError with a message when optimum-neuron is absent


def compile_module(module: Any, settings: Settings) -> Any:
    """torch.compile with Inductor (OpenAI Triton kernels) for the ``triton`` backend."""
    if settings.backend != Backend.TRITON:
        return module
    import torch

    log.info("torch.compile(mode=%s, dynamic batch=%s)", settings.compile_mode, settings.compile_dynamic)
    return torch.compile(module, mode=settings.compile_mode, dynamic=False if not settings.compile_dynamic else None, fullgraph=False)


def configure_torch(settings: Settings) -> None:
    """Process-wide switches the GPU levers need, before anything is compiled or run: cuDNN's
    autotuner (HWAI_CUDNN_BENCHMARK) and Inductor's options (HWAI_INDUCTOR_OPTIONS, triton)."""
    if settings.backend not in (Backend.CUDA, Backend.TRITON):
        return
    import torch

    torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    if settings.backend == Backend.TRITON:
        set_inductor_options(inductor_options(settings.inductor_options))


def inductor_options(text: str) -> dict[str, bool | int | float | str]:
    """``"a=true,b=4"`` (HWAI_INDUCTOR_OPTIONS) as Inductor config values: true/false as booleans,
    numbers as numbers, anything else as a string."""
    opts: dict[str, bool | int | float | str] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        name, _, raw = (x.strip() for x in item.partition("="))
        low = raw.lower()
        if low in ("true", "false"):
            opts[name] = low == "true"
        else:
            try:
                opts[name] = int(raw)
            except ValueError:
                try:
                    opts[name] = float(raw)
                except ValueError:
                    opts[name] = raw
    return opts


def set_inductor_options(opts: dict[str, Any]) -> None:
    """Set Inductor's config for every later compilation; a name Inductor lacks is an error that
    names it (a typo would otherwise be a lever silently not pulled)."""
    if not opts:
        return
    import torch._inductor.config as cfg

    for name, value in opts.items():
        *owners, attr = name.split(".")
        target: Any = cfg
        for part in owners:  # a nested option: triton.cudagraphs
            target = getattr(target, part, None)
        if target is None or not hasattr(target, attr):
            raise ValueError(f"HWAI_INDUCTOR_OPTIONS: Inductor has no option {name!r}")
        setattr(target, attr, value)
    log.info("Inductor options: %s", opts)


def float8_linears(module: Any, per_row: bool = False) -> None:
    """The module's linear layers in float8 (Hopper's FP8 tensor cores) with torchao: dynamic
    per-tensor scales for activations and weights, or per-row ones (which need bf16 weights)."""
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, PerTensor, quantize_
    except ImportError as e:
        raise RuntimeError("HWAI_FP8=true needs torchao (pip install torchao)") from e
    quantize_(module, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow() if per_row else PerTensor()))


def mark_batch_dynamic(settings: Settings, *tensors: Any) -> None:
    """Tell dynamo the batch dimension varies, so one compiled graph serves every batch size."""
    if settings.backend != Backend.TRITON or not settings.compile_dynamic:
        return
    import torch

    for t in tensors:
        if t is not None and t.dim() > 0 and t.shape[0] >= 2:
            torch._dynamo.mark_dynamic(t, 0)
