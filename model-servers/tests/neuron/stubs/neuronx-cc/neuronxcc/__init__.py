"""Test-only stand-in for the Neuron compiler package: its version (optimum-neuron compares an
artifact's compiler version with the installed one). Nothing is compiled here."""

from importlib.metadata import version

__version__ = version("neuronx-cc").split("+")[0]
