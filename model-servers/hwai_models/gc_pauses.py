"""Python's garbage collector against the latency tail.

A loaded and compiled model server holds about a million Python objects (the model's modules,
dynamo's guards, Inductor's graphs, one set per compiled batch size). A full (generation 2)
collection walks all of them while holding the GIL: 0.5-0.65 s on the CI machine for the tiny UNet
compiled for 7 batch sizes (``benchmarks/gc_pause.py``). The GPU's loop waits as long, and every
request in flight gets that much older: a p99 judged on 300 requests fails when one such pause
falls in its window.

``freeze_alive()`` after the warm-up moves everything alive into a permanent generation, which no later
collection walks; ``GcPauses`` times every collection so that /info shows what is left.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

log = logging.getLogger("hwai_models.gc")


class GcPauses:
    """Every collection's pause, through ``gc.callbacks``: counts and seconds per generation."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._t0 = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        dt = time.perf_counter() - self._t0
        g = min(int(info.get("generation", 2)), 2)
        self.collections[g] += 1
        self.seconds[g] += dt
        self.longest = max(self.longest, dt)

    def install(self) -> "GcPauses":
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def stats(self) -> dict[str, float | int]:
        """For /info's stats (numbers, so the calibrator reports them per step)."""
        return {
            "gcFullCollections": self.collections[2],
            "gcFullPauseSeconds": round(self.seconds[2], 4),
            "gcPauseSeconds": round(sum(self.seconds), 4),
            "maxGcPauseMs": round(1000 * self.longest, 1),
            "gcFrozenObjects": gc.get_freeze_count(),
        }


def freeze_alive() -> int:
    """Collect what the warm-up left, then freeze every object alive: the model, the compiler's
    state. Returns how many objects no later collection will walk."""
    gc.collect()
    gc.freeze()
    n = gc.get_freeze_count()
    log.info("gc: %d objects frozen after the warm-up (no later collection walks them)", n)
    return n
