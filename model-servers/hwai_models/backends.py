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
