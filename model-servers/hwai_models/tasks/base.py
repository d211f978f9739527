"""What every task's runner provides to the app."""

from __future__ import annotations

import base64
import binascii
import io
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel

from ..batching import MicroBatcher
from ..config import Settings, Task


class InputError(ValueError):
    """A request that is well-formed JSON but cannot be served as asked: HTTP 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Runner(ABC):
    task: ClassVar[Task]
    route: ClassVar[str]
    request_model: ClassVar[type[BaseModel]]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_path: str | None = None

    @abstractmethod
    def load(self) -> None:
        """Blocking: fetch (only what is needed) and load the model. Runs in a worker thread."""

    @abstractmethod
    async def start(self) -> None:
        """On the event loop, after load: start batchers/engines."""

    async def stop(self) -> None:
        """Stop batchers/engines; in-flight work is allowed to finish where possible."""

    @abstractmethod
    async def infer(self, req: Any) -> dict[str, Any]:
        """Serve one validated request."""

    @abstractmethod
    def warmup_requests(self) -> list[BaseModel]:
        """Requests run (concurrently) before the server reports ready."""

    def info(self) -> dict[str, Any]:
        return {}

    def failure(self) -> str | None:
        """Why this runner can serve nothing more (its engine died), or None. ``/health`` fails
        while this is set, so Kubernetes restarts the pod."""
        return None

    def warmed(self) -> None:
        """The warm-up is done: forget what it measured (its first calls compile and load
        kernels, and would make the admission estimate far too pessimistic)."""


class BatchedRunner(Runner):
    """A runner whose model calls go through one ``MicroBatcher`` of ``run_batch`` calls: its
    start, stop, statistics and health written once."""

    batch_name: str = "model"  # names the worker threads

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.batcher: MicroBatcher[Any, Any] | None = None
        self.max_batch = settings.max_batch_size
        self.batch_concurrency = settings.max_concurrency

    def run_batch(self, items: list[Any]) -> list[Any]:
        """Blocking: one model call for ``items``, one result (or exception) per item."""
        raise NotImplementedError

    async def start(self) -> None:
        s = self.settings
        self.batcher = MicroBatcher(self.run_batch, self.max_batch, s.batch_wait_ms, self.batch_concurrency, s.max_queue, self.batch_name, s.max_wait_s)
        self.batcher.start()

    async def stop(self) -> None:
        if self.batcher:
            await self.batcher.stop()

    async def submit(self, item: Any) -> Any:
        assert self.batcher, "submit before start"
        return await self.batcher.submit(item)

    def info(self) -> dict[str, Any]:
        return self.batcher.info() if self.batcher else {}

    def failure(self) -> str | None:
        return self.batcher.failure if self.batcher else None

    def warmed(self) -> None:
        if self.batcher:
            self.batcher.admission.forget()


def decode_image(data: str, field: str, settings: Settings) -> Any:
    """Base64 (optionally a data: URL) -> RGB PIL image, with size limits; InputError otherwise."""
    from PIL import Image, UnidentifiedImageError

    if data.startswith("data:"):
        _, _, data = data.partition(",")
    if len(data) > (settings.max_image_bytes * 4) // 3 + 8:
        raise InputError(field, f"image larger than {settings.max_image_bytes} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(field, "not valid base64") from None
    if len(raw) > settings.max_image_bytes:
        raise InputError(field, f"image larger than {settings.max_image_bytes} bytes")
    try:
        img = Image.open(io.BytesIO(raw))
        w, h = img.size
        if w * h > settings.max_image_pixels:
            raise InputError(field, f"image of {w}x{h} pixels exceeds {settings.max_image_pixels} pixels")
        img.load()
        return img.convert("RGB")
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InputError(field, "not a decodable image (PNG, JPEG, ...)") from None
