"""Import-only stand-ins for the Neuron SDK's compile-time modules (test-only).

optimum-neuron's decoder code imports neuronx_distributed, torch_xla, neuronxcc.nki and
torch_neuronx.xla_impl at module level to build graphs when it *compiles*. Serving a compiled
artifact calls none of them; ``install(prefix)`` makes every module under ``prefix`` importable and
every name in it a :class:`CompileTimeOnly` symbol that raises as soon as it is called with data,
so a serving path that reached the SDK fails instead of silently passing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any


class NeedsNeuronSdk(RuntimeError):
    """A serving path called into the Neuron SDK's compile-time code."""


class _Meta(type):
    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return symbol(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        # Decorator use at import time (``@nki.jit``, ``nki_jit()(kernel)``): hand the function back.
        if len(args) == 1 and not kwargs and callable(args[0]):
            return args[0]
        if not args:
            return cls
        raise NeedsNeuronSdk(f"{cls.__qualname__} was called: it is Neuron SDK compile-time code, not part of serving a compiled artifact")

    def __repr__(cls) -> str:
        return f"<compile-time-only {cls.__qualname__}>"


class CompileTimeOnly(metaclass=_Meta):
    pass


def symbol(qualname: str) -> type:
    cls = _Meta(qualname.rsplit(".", 1)[-1], (CompileTimeOnly,), {})
    cls.__qualname__ = qualname
    return cls


class _Module(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = symbol(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if any(fullname == p or fullname.startswith(p + ".") for p in self.prefixes):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        m = _Module(spec.name)
        m.__path__ = []  # a package: submodules resolve through this finder too
        return m

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install(*prefixes: str) -> None:
    """Serve every module under ``prefixes`` from the stand-in (after any real package)."""
    sys.meta_path.append(_Finder(prefixes))
