"""Task runners, chosen by ``HWAI_TASK``. Modules import torch/transformers/diffusers lazily."""

from __future__ import annotations

from importlib import import_module

from ..config import Settings, Task
from .base import InputError, Runner


# Each task's runner, as (module, class): imported only when chosen, so a server loads only the
# libraries its task needs.
_RUNNERS: dict[Task, tuple[str, str]] = {
    Task.TEXT_TO_IMAGE: ("text_to_image", "TextToImageRunner"),
    Task.TEXT_GENERATION: ("text_generation", "TextGenerationRunner"),
    Task.SENTIMENT: ("encoders", "SentimentRunner"),
    Task.IMAGE_CLASSIFICATION: ("encoders", "ImageClassificationRunner"),
    Task.OBJECT_DETECTION: ("encoders", "ObjectDetectionRunner"),
    Task.SLEEP: ("sleep", "SleepRunner"),
}


def runner_for(settings: Settings) -> Runner:
    module, cls = _RUNNERS[settings.task]
    runner: type[Runner] = getattr(import_module(f".{module}", __package__), cls)
    return runner(settings)
