"""Text-to-image on ``neuron``: optimum-neuron's compiled pipeline (static shapes) serves
micro-batches of requests (see ``TextToImageRunner``, which batches them with a ``MicroBatcher``
of concurrency 1: one NeuronCore group runs one pipeline call at a time)."""

from __future__ import annotations

import time
from typing import Any

from .. import backends


def load_pipeline(path: str) -> Any:
    """The compiled Stable Diffusion pipeline at ``path``."""
    return backends.neuron().NeuronStableDiffusionPipeline.from_pretrained(path)


def run_batch(pipe: Any, items: list[tuple[Any, int]]) -> list[Any]:  # pragma: no cover - Neuron only
    """One pipeline call per (step count, guidance scale) group of ``(ImageRequest, steps)`` items;
    one ``(uint8 HxWx3 image, timings)`` per item."""
    import numpy as np

    results: list[Any] = [None] * len(items)
    groups: dict[tuple[int, float], list[int]] = {}
    for i, (r, steps) in enumerate(items):
        groups.setdefault((steps, r.guidance_scale), []).append(i)
    for (steps, g), idx in groups.items():
        t0 = time.perf_counter()
        out = pipe(
            prompt=[items[i][0].prompt for i in idx],
            negative_prompt=[items[i][0].negative_prompt or "" for i in idx],
            num_inference_steps=steps,
            guidance_scale=g,
            output_type="np",
        ).images
        ms = round((time.perf_counter() - t0) * 1000, 2)
        for k, i in enumerate(idx):
            results[i] = ((np.clip(out[k], 0, 1) * 255).round().astype("uint8"), {"total_ms": ms, "max_batch": len(idx)})
    return results
