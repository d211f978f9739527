"""Text-to-image: Stable Diffusion 2.1. The runner: request validation, loading, image encoding.

On ``cuda``, ``triton`` and ``cpu`` the continuous-batching engine (``diffusion_engine.py``) runs
the denoising steps; on ``neuron`` optimum-neuron's compiled pipeline serves micro-batches
(``hwai_models/neuron/diffusion.py``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import backends
from ..config import Backend, Settings, Task
from ..hub import resolve_model_path
from .base import BatchedRunner, InputError
from .diffusion_engine import DiffusionEngine, DiffusionJob

log = logging.getLogger("hwai_models.text_to_image")


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=2000)
    negative_prompt: str | None = Field(default=None, max_length=2000)
    num_inference_steps: int | None = Field(default=None, ge=1, le=150)
    guidance_scale: float = Field(default=7.5, ge=0.0, le=30.0)
    height: int | None = Field(default=None, ge=16, le=1024, multiple_of=8)
    width: int | None = Field(default=None, ge=16, le=1024, multiple_of=8)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    output_format: Literal["png", "jpeg", "webp"] = "png"


def encode_image(arr: Any, fmt: str) -> str:
    from PIL import Image

    buf = io.BytesIO()
    im = Image.fromarray(arr)
    if fmt == "jpeg":
        im.save(buf, format="JPEG", quality=90)
    elif fmt == "webp":
        im.save(buf, format="WEBP", quality=90, method=2)
    else:
        im.save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class TextToImageRunner(BatchedRunner):
    """The engine on cuda/triton/cpu; on neuron, the batcher of ``BatchedRunner`` over the
    compiled pipeline, one call at a time."""

    task = Task.TEXT_TO_IMAGE
    route = "/v1/text-to-image"
    request_model = ImageRequest
    batch_name = "sd-neuron"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.engine: DiffusionEngine | None = None
        self.batch_concurrency = 1
        self.pipe: Any = None
        self.components: dict[str, Any] = {}

    def load(self) -> None:
        s = self.settings
        self.model_path = path = resolve_model_path(s)
        if s.backend == Backend.NEURON:
            from ..neuron.diffusion import NeuronStableDiffusion

            self.pipe = NeuronStableDiffusion(path, s)
            self.max_batch = min(s.max_batch_size, self.pipe.batch_size)
            return
        import torch
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import AutoTokenizer, CLIPTextModel

        torch.set_grad_enabled(False)
        backends.configure_torch(s)
        dtype = backends.torch_dtype(s)
        dev = s.torch_device

        def variant(sub: str, name: str) -> str | None:
            base, ext = os.path.splitext(name)
            return "fp16" if dtype == torch.float16 and os.path.exists(os.path.join(path, sub, f"{base}.fp16{ext}")) else None

        tokenizer = AutoTokenizer.from_pretrained(path, subfolder="tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype, variant=variant("text_encoder", "model.safetensors")).to(dev).eval()
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=dtype, variant=variant("unet", "diffusion_pytorch_model.safetensors")).to(dev).eval()
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=dtype, variant=variant("vae", "diffusion_pytorch_model.safetensors")).to(dev).eval()
        scheduler = DDIMScheduler.from_pretrained(path, subfolder="scheduler")
        if dev == "cuda":
            if s.channels_last == "on" or (s.channels_last == "auto" and s.backend == Backend.CUDA):
                unet = unet.to(memory_format=torch.channels_last)
                vae = vae.to(memory_format=torch.channels_last)
            if s.fuse_qkv:
                unet.fuse_qkv_projections()
            if s.fp8 and s.backend == Backend.TRITON:
                backends.float8_linears(unet)
        self.components = {"unet": unet, "vae": vae, "text_encoder": text_encoder}
        self.engine = DiffusionEngine(tokenizer, text_encoder, unet, vae, scheduler, s, dev, dtype, s.max_batch_size)

    async def start(self) -> None:
        if self.engine is not None:
            self.engine.start()
        else:
            await super().start()

    async def stop(self) -> None:
        if self.engine is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.engine.stop)
        await super().stop()

    def run_batch(self, items: list[tuple[ImageRequest, int]]) -> list[Any]:  # pragma: no cover - Neuron only
        return self.pipe.run(items)

    def info(self) -> dict[str, Any]:
        return self.engine.info() if self.engine is not None else super().info()

    def failure(self) -> str | None:
        return self.engine.failure if self.engine is not None else super().failure()

    def warmed(self) -> None:
        if self.engine is not None:
            self.engine.admission.forget()
        super().warmed()

    def _check(self, req: ImageRequest) -> int:
        s = self.settings
        steps = req.num_inference_steps or s.default_steps
        if steps > s.max_steps:
            raise InputError("num_inference_steps", f"at most {s.max_steps} on this server")
        for name in ("height", "width"):
            v = getattr(req, name)
            if v is not None and v != s.image_size:
                raise InputError(name, f"this server renders {s.image_size}x{s.image_size} only")
        return steps

    async def infer(self, req: ImageRequest) -> dict[str, Any]:
        steps = self._check(req)
        loop = asyncio.get_running_loop()
        if self.engine is not None:
            arr, timings = await self._generate(self.engine, DiffusionJob(req.prompt, req.negative_prompt, steps, req.guidance_scale, req.seed))
        else:
            arr, timings = await self.submit((req, steps))
        t0 = time.perf_counter()
        image = await loop.run_in_executor(None, encode_image, arr, req.output_format)
        timings = {**timings, "encode_ms": round(1000 * (time.perf_counter() - t0), 2)}
        return {"image": image, "format": req.output_format, "width": int(arr.shape[1]), "height": int(arr.shape[0]), "steps": steps, "timings": timings}

    @staticmethod
    async def _generate(engine: DiffusionEngine, job: DiffusionJob) -> Any:
        """The job's result; if the caller is cancelled (client gone, time-out), so is the job."""
        fut = engine.submit(job)
        try:
            return await asyncio.wrap_future(fut)  # cancelling this cancels a job still queued
        except asyncio.CancelledError:
            engine.cancel(job)
            raise

    def warmup_requests(self) -> list[BaseModel]:
        # A first request alone, then a concurrent burst: under torch.compile the burst compiles
        # the graph for a batch > 1 (dynamic batch dimension) before the first real request.
        n = max(1, min(self.settings.max_batch_size, 4))
        if self.settings.backend == Backend.NEURON:
            n = min(self.settings.max_batch_size, self.pipe.batch_size)  # one call at the compiled batch
        return [ImageRequest(prompt="warm-up", seed=0)] + [ImageRequest(prompt=f"warm-up {i}", seed=i) for i in range(n)]
