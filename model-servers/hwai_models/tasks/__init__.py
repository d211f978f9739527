"""Task runners, chosen by ``HWAI_TASK``. Modules import torch/transformers/diffusers lazily."""

from __future__ import annotations

from ..config import Settings, Task
from .base import InputError, Runner


def runner_for(settings: Settings) -> Runner:
    if settings.task == Task.TEXT_TO_IMAGE:
        from .text_to_image import TextToImageRunner

        return TextToImageRunner(settings)
    if settings.task == Task.TEXT_GENERATION:
        from .text_generation import TextGenerationRunner

        return TextGenerationRunner(settings)
    if settings.task == Task.SENTIMENT:
        from .encoders import SentimentRunner

        return SentimentRunner(settings)
    if settings.task == Task.IMAGE_CLASSIFICATION:
        from .encoders import ImageClassificationRunner

        return ImageClassificationRunner(settings)
    if settings.task == Task.OBJECT_DETECTION:
        from .encoders import ObjectDetectionRunner

        return ObjectDetectionRunner(settings)
    if settings.task == Task.SLEEP:
        from .sleep import SleepRunner

        return SleepRunner(settings)
    raise ValueError(f"unknown task {settings.task}")  # pragma: no cover


__all__ = ["InputError", "Runner", "runner_for"]
