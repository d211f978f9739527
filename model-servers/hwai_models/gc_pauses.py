"""Python's garbage collector and the latency tail: a guard and a gauge.

A loaded and compiled model server holds hundreds of thousands of Python objects (the model's
modules, dynamo's guards, Inductor's graphs, one set per compiled batch size). A full (generation
2) collection walks all of them holding the GIL: 0.2-0.4 s on the CI machine for the tiny UNet
compiled for 1..7 batch sizes (``benchmarks/gc_pause.py``), during which the diffusion engine
cannot queue a step and every request in flight waits. Serving rarely triggers one (none in
1,200 requests through the tiny server: ``gc_pause.py --serve``), but a process that allocates
more per request would.

``freeze_alive()`` after the warm-up moves everything alive into a permanent generation, which no
later collection walks; ``GcPauses`` times every collection so that /info shows what happens.
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
