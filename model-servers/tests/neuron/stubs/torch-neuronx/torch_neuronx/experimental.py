"""torch_neuronx.experimental stand-in."""

from typing import Any


def set_neuron_cores(model: Any, start_nc: int = 0, nc_count: int = 1) -> None:
    """Pins a loaded model to NeuronCores; a CPU has none to pin to."""
