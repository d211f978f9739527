"""Text-to-image on ``neuron``: optimum-neuron's compiled pipeline (static shapes) serves
micro-batches of requests. ``TextToImageRunner`` batches them with its ``MicroBatcher`` of
concurrency 1 (one NeuronCore group runs one pipeline call at a time), at most ``batch_size`` per
call. The interface (``NeuronStableDiffusion(path, settings)``, ``.batch_size``, ``.run(items)``)
is the one of ``hwai_models.neuron.diffusion`` on the neuron branch, which replaces this module."""

from __future__ import annotations

import time
from typing import Any

from .. import backends
from ..config import Settings


class NeuronStableDiffusion:
    def __init__(self, path: str, settings: Settings) -> None:
        self.pipe = backends.neuron().NeuronStableDiffusionPipeline.from_pretrained(path)
        self.batch_size = settings.max_batch_size

    def run(self, items: list[tuple[Any, int]]) -> list[Any]:  # pragma: no cover - Neuron only
        """(ImageRequest, steps) pairs -> (uint8 HxWx3 image, timings) per item: one pipeline call
        per (step count, guidance scale) group."""
        import numpy as np

        results: list[Any] = [None] * len(items)
        groups: dict[tuple[int, float], list[int]] = {}
        for i, (r, steps) in enumerate(items):
            groups.setdefault((steps, r.guidance_scale), []).append(i)
        for (steps, g), idx in groups.items():
            t0 = time.perf_counter()
            out = self.pipe(
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
