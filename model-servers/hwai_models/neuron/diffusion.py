"""Stable Diffusion on Neuron: optimum-neuron's compiled pipeline, every call at the compiled batch.

The text encoder, UNet and VAE decoder are compiled for one batch of prompts (the UNet for twice
that, classifier-free guidance doubling it, split over the NeuronCores). A call with fewer prompts
is padded with copies of its first one and the extra images dropped; more prompts are never sent
(the micro-batcher's batch is the compiled one). Guidance must stay above 1: without it the
pipeline skips the doubled UNet batch, a shape the artifact was not compiled for.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..config import Settings, Task
from ..tasks.base import InputError
from . import optimum_neuron, require_compiled, static_batch

log = logging.getLogger("hwai_models.neuron.diffusion")


class NeuronStableDiffusion:
    def __init__(self, path: str, settings: Settings) -> None:
        require_compiled(path, Task.TEXT_TO_IMAGE)
        self.pipe = optimum_neuron().NeuronStableDiffusionPipeline.from_pretrained(path)
        self.batch_size = static_batch(self.pipe.text_encoder)
        unet = self.pipe.unet.config.neuron
        self.image_size = int(unet["static_height"]) * int(unet["static_vae_scale_factor"])
        if settings.image_size != self.image_size:
            raise ValueError(
                f"HWAI_IMAGE_SIZE: {settings.image_size}, but the artifact at {path} is compiled for "
                f"{self.image_size}x{self.image_size} images"
            )
        log.info("neuron SD: batch %d, %dx%d", self.batch_size, self.image_size, self.image_size)

    def run(self, items: list[tuple[Any, int]]) -> list[Any]:
        """(request, steps) pairs -> (uint8 HxWx3 image, timings) or an exception, per item.
        One pipeline call per (steps, guidance) group and per compiled batch of it."""
        import numpy as np
        import torch

        results: list[Any] = [None] * len(items)
        groups: dict[tuple[int, float], list[int]] = {}
        for i, (req, steps) in enumerate(items):
            if req.guidance_scale <= 1.0:
                results[i] = InputError("guidance_scale", "must be above 1 on the neuron backend (the UNet is compiled for the guided batch)")
                continue
            groups.setdefault((steps, req.guidance_scale), []).append(i)
        for (steps, guidance), idx in groups.items():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                reqs = [items[i][0] for i in chunk]
                pad = self.batch_size - len(reqs)
                reqs = reqs + [reqs[0]] * pad
                seeds = [r.seed if r.seed is not None else int(torch.randint(0, 2**32 - 1, ())) for r in reqs]
                t0 = time.perf_counter()
                images = self.pipe(
                    prompt=[r.prompt for r in reqs],
                    negative_prompt=[r.negative_prompt or "" for r in reqs],
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    height=self.image_size,
                    width=self.image_size,
                    generator=[torch.Generator().manual_seed(s) for s in seeds],
                    output_type="np",
                ).images
                ms = round((time.perf_counter() - t0) * 1000, 2)
                for k, i in enumerate(chunk):
                    arr = (np.clip(images[k], 0, 1) * 255).round().astype("uint8")
                    results[i] = (arr, {"total_ms": ms, "max_batch": len(chunk), "padded_to": self.batch_size})
        return results
