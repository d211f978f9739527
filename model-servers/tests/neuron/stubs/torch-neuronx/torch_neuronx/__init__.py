"""Test-only stand-in for torch-neuronx: the compiled-model call, enforcing static shapes on CPU.

``trace`` is what ``optimum-cli export neuron`` calls to compile a module. Here it traces the module
with TorchScript on the CPU and puts a shape guard in front of it: the saved artifact then accepts
only the example inputs' shapes (static batch, sequence length, image size), and any other shape
raises ``RuntimeError`` inside the TorchScript call, as the Neuron runtime refuses inputs that do
not match the compiled NEFF. Everything optimum-neuron does around that call is its own code.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, List

import torch

from . import experimental  # noqa: F401  (optimum-neuron calls torch_neuronx.experimental.set_neuron_cores)

__version__ = version("torch-neuronx").split("+")[0]


@torch.jit.script
def _static_input(x: torch.Tensor, compiled: List[int], index: int) -> torch.Tensor:
    if x.size() != compiled:
        raise RuntimeError(
            "Neuron runtime stand-in: input {} has shape {}, the compiled model takes {} (static shapes: "
            "pad or split the batch and truncate or resize to the compiled sizes)".format(index, x.size(), compiled)
        )
    return x


class _StaticShapes(torch.nn.Module):
    def __init__(self, module: Any, shapes: list[list[int]]) -> None:
        super().__init__()
        self.module = module
        self.shapes = shapes

    def forward(self, *inputs: torch.Tensor) -> Any:
        checked = [_static_input(x, s, i) for i, (x, s) in enumerate(zip(inputs, self.shapes))]
        return self.module(*checked)


def trace(func: Any, example_inputs: Any, *_: Any, **__: Any) -> torch.jit.ScriptModule:
    """Compile ``func`` for exactly the shapes of ``example_inputs`` (here: a guarded TorchScript trace)."""
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    guarded = _StaticShapes(func, [list(t.shape) for t in inputs]).eval()
    with torch.no_grad():
        return torch.jit.trace(guarded, inputs, strict=False, check_trace=False)


def move_trace_to_device(model: Any, device_id: int) -> None:
    """Places a non-inlined model's weights on a NeuronCore; nothing to place on a CPU."""


def async_load(model: Any) -> None:
    """Loading hint for the runtime; no meaning on a CPU."""


def lazy_load(model: Any) -> None:
    """Loading hint for the runtime; no meaning on a CPU."""


class DataParallel(torch.nn.Module):
    """Runs a compiled model on several NeuronCores, one slice of the batch each (optimum-neuron
    loads the SD UNet this way on the two cores of an inf2.xlarge). Without dynamic batching, as
    optimum-neuron sets it for static artifacts, torch-neuronx requires the input batch to be
    exactly ``compiled batch x len(device_ids)``: each core's slice goes to the guarded model,
    which enforces the compiled shapes."""

    def __init__(self, module: Any, device_ids: list[int] | None = None, dim: int = 0, set_dynamic_batching: bool = True) -> None:
        super().__init__()
        if set_dynamic_batching:
            raise NotImplementedError("dynamic batching is not stood in: hwai compiles static artifacts (dynamic_batch_size=False)")
        self.module = module
        self.device_ids = list(device_ids) if device_ids is not None else [0, 1]
        self.dim = dim

    def forward(self, *inputs: Any) -> Any:
        batch = next(x for x in inputs if isinstance(x, torch.Tensor)).shape[self.dim]
        cores = len(self.device_ids)
        if batch % cores:
            raise RuntimeError(f"Neuron runtime stand-in: DataParallel needs a batch divisible by its {cores} NeuronCores, got {batch}")
        chunk = batch // cores
        outs = []
        for start in range(0, batch, chunk):
            part = [x.narrow(self.dim, start, chunk) if isinstance(x, torch.Tensor) else x for x in inputs]
            outs.append(self.module(*part))
        return _cat(outs, self.dim)


def _cat(outs: list[Any], dim: int) -> Any:
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outs, dim)
    if isinstance(first, dict):
        return {k: _cat([o[k] for o in outs], dim) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_cat([o[i] for o in outs], dim) for i in range(len(first)))
    return first


def dynamic_batch(model: Any) -> Any:
    """Real torch-neuronx splits a batch into compiled-size chunks; the hwai artifacts do not use it."""
    raise NotImplementedError("dynamic_batch is not stood in: hwai compiles with a static batch size")


def __getattr__(name: str) -> Any:
    # Any other torch-neuronx name optimum-neuron imports belongs to compiling: importable, and
    # failing loudly if a serving path calls it.
    if name.startswith("__"):
        raise AttributeError(name)
    from hwai_neuron_compile_time import symbol

    return symbol(f"torch_neuronx.{name}")
