"""Where a model's files come from: a local directory, the Hugging Face cache, or the hub.

Only the files a pipeline needs are fetched (``allow_patterns``): no safety checker, no duplicate
``.bin``/``consolidated`` weights, no ``original/`` checkpoints, no ONNX/Flax/TF exports. With
``HF_HUB_OFFLINE=1`` (or ``HWAI_OFFLINE=true``) nothing is fetched and the cache must hold them.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from typing import Iterable

from .config import Backend, Settings, Task

log = logging.getLogger("hwai_models.hub")

_TOKENIZER = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
]


def allow_patterns(task: Task, backend: Backend, half: bool = False) -> list[str]:
    """The files one pipeline needs, as hub allow-patterns (fnmatch; ``*`` crosses folders)."""
    if backend == Backend.NEURON:
        # optimum-neuron compiled repositories: configs, compiled graphs, tokenizers, and the
        # checkpoint weights that neuron LLM artifacts load beside their NEFFs.
        return [
            "*.json",
            "*.neuron",
            "*.neff",
            "*.pt",
            "*.txt",
            "*.model",
            "*.jinja",
            "*model*.safetensors",
            "compiled/*",
            "checkpoint/*",
        ]
    if task == Task.TEXT_TO_IMAGE:
        w = "{}/diffusion_pytorch_model.fp16.safetensors" if half else "{}/diffusion_pytorch_model.safetensors"
        te = "text_encoder/model.fp16.safetensors" if half else "text_encoder/model.safetensors"
        return [
            "model_index.json",
            "scheduler/scheduler_config.json",
            "tokenizer/*",
            "text_encoder/config.json",
            te,
            "unet/config.json",
            w.format("unet"),
            "vae/config.json",
            w.format("vae"),
        ]
    if task == Task.TEXT_GENERATION:
        return ["config.json", "generation_config.json", "model.safetensors", "model-*.safetensors", "model.safetensors.index.json", *_TOKENIZER]
    if task == Task.SENTIMENT:
        return ["config.json", "model.safetensors", *_TOKENIZER]
    if task in (Task.IMAGE_CLASSIFICATION, Task.OBJECT_DETECTION):
        return ["config.json", "model.safetensors", "preprocessor_config.json"]
    return []


def select(files: Iterable[str], patterns: list[str]) -> list[str]:
    """Which of a repository's files the patterns take (the hub's own rule: fnmatch)."""
    return [f for f in files if any(fnmatch.fnmatch(f, p) for p in patterns)]


def resolve_model_path(settings: Settings) -> str:
    """A local directory holding the model's files, fetching only what the pipeline needs."""
    if settings.model_dir:
        return settings.model_dir
    if os.path.isdir(settings.model_id):
        return settings.model_id
    if not settings.model_id:
        raise ValueError("no model: set HWAI_MODEL_DIR or HWAI_MODEL_ID")
    from huggingface_hub import snapshot_download

    half = settings.dtype in ("float16", "auto") and settings.backend in (Backend.CUDA, Backend.TRITON)
    patterns = allow_patterns(settings.task, settings.backend, half=half)
    offline = settings.offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    log.info("model %s: %s, patterns %s", settings.model_id, "cache only" if offline else "cache or hub", patterns)
    try:
        path = snapshot_download(
            repo_id=settings.model_id,
            revision=settings.revision,
            cache_dir=settings.cache_dir,
            allow_patterns=patterns,
            local_files_only=offline,
        )
    except Exception as e:  # noqa: BLE001 - name the model in the start-up failure
        where = "in the local cache (offline)" if offline else "in the cache or on the hub"
        raise RuntimeError(f"model {settings.model_id!r} not found {where}: {type(e).__name__}: {e}") from e
    if half and settings.task == Task.TEXT_TO_IMAGE and not os.path.exists(os.path.join(path, "unet", "diffusion_pytorch_model.fp16.safetensors")):
        # The repository has no fp16 variant: take the full-precision files and cast at load.
        path = snapshot_download(
            repo_id=settings.model_id,
            revision=settings.revision,
            cache_dir=settings.cache_dir,
            allow_patterns=allow_patterns(settings.task, settings.backend, half=False),
            local_files_only=offline,
        )
    return path
