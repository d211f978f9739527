"""Imported from a .pth file in the test environment, so that every interpreter (the
``optimum-cli`` subprocesses included) sees the compile-time stand-ins."""

from . import install

install("neuronx_distributed", "torch_xla", "torch_neuronx.xla_impl", "torch_neuronx.utils", "neuronxcc.nki", "neuronxcc.starfish", "libneuronxla")
