"""Configuration validation, allow-patterns, and loading fully offline from a hub cache."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from hwai_models.config import Backend, ConfigError, Task, load_settings
from hwai_models.hub import allow_patterns, resolve_model_path, select

from .conftest import settings_for


def test_settings_from_env() -> None:
    s = load_settings({"HWAI_TASK": "text-to-image", "HWAI_BACKEND": "triton", "HWAI_SERVICE": "sd21", "HWAI_UNIT": "sd21-g5-triton", "HWAI_MAX_BATCH_SIZE": "12", "HWAI_COMPILE_DYNAMIC": "false", "HF_HUB_OFFLINE": "1"})
    assert s.task == Task.TEXT_TO_IMAGE and s.backend == Backend.TRITON and s.max_batch_size == 12
    assert s.compile_dynamic is False and s.offline is True
    assert s.model_id == "stabilityai/stable-diffusion-2-1" and s.torch_device == "cuda"


@pytest.mark.parametrize(
    "env, var",
    [
        ({"HWAI_BACKEND": "cpu", "HWAI_SERVICE": "s", "HWAI_UNIT": "u"}, "HWAI_TASK"),
        ({"HWAI_TASK": "painting", "HWAI_SERVICE": "s", "HWAI_UNIT": "u"}, "HWAI_TASK"),
        ({"HWAI_TASK": "sentiment", "HWAI_BACKEND": "tpu", "HWAI_SERVICE": "s", "HWAI_UNIT": "u"}, "HWAI_BACKEND"),
        ({"HWAI_TASK": "sentiment", "HWAI_UNIT": "u"}, "HWAI_SERVICE"),
        ({"HWAI_TASK": "sentiment", "HWAI_SERVICE": "s", "HWAI_UNIT": "bad unit!"}, "HWAI_UNIT"),
        ({"HWAI_TASK": "sentiment", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_PORT": "99999"}, "HWAI_PORT"),
        ({"HWAI_TASK": "sentiment", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_MAX_BATCH_SIZE": "0"}, "HWAI_MAX_BATCH_SIZE"),
        ({"HWAI_TASK": "sentiment", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_IMAGE_SIZE": "100"}, "HWAI_IMAGE_SIZE"),
        ({"HWAI_TASK": "sentiment", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_MODEL_DIR": "/no/such/dir"}, "HWAI_MODEL_DIR"),
        ({"HWAI_TASK": "sentiment", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_OFFLINE": "maybe"}, "HWAI_OFFLINE"),
        ({"HWAI_TASK": "sentiment", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_DTYPE": "int3"}, "HWAI_DTYPE"),
        ({"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_CHANNELS_LAST": "sometimes"}, "HWAI_CHANNELS_LAST"),
        ({"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_FUSE_QKV": "perhaps"}, "HWAI_FUSE_QKV"),
        ({"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_COMPILE_VAE": "2"}, "HWAI_COMPILE_VAE"),
        ({"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_FP8": "fp8"}, "HWAI_FP8"),
        ({"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_STEP_GRAPHS": "twice"}, "HWAI_STEP_GRAPHS"),
        ({"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_STEP_BUCKETS": "2;4"}, "HWAI_STEP_BUCKETS"),
        ({"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_STEP_BUCKETS": "2,4", "HWAI_MAX_BATCH_SIZE": "8"}, "HWAI_MAX_BATCH_SIZE=8"),
        # CUDA graph trees inside the captured step would be a capture within a capture
        ({"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "s", "HWAI_UNIT": "u", "HWAI_COMPILE_MODE": "reduce-overhead"}, "HWAI_STEP_GRAPHS=false"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], var: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env)
    assert var in str(e.value)


SD21_REPO = [
    ".gitattributes", "README.md", "model_index.json", "v2-1_768-ema-pruned.ckpt", "v2-1_768-ema-pruned.safetensors",
    "feature_extractor/preprocessor_config.json", "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors", "text_encoder/pytorch_model.bin", "text_encoder/flax_model.msgpack",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin", "unet/diffusion_flax_model.msgpack",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.bin",
]
MISTRAL_REPO = [
    "config.json", "generation_config.json", "consolidated.safetensors", "params.json", "tokenizer.model.v3",
    "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
    "model.safetensors.index.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
]
LLAMA_REPO = ["config.json", "generation_config.json", "model.safetensors", "original/consolidated.00.pth", "original/params.json", "original/tokenizer.model", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]


def test_only_needed_files_are_fetched() -> None:
    half = set(select(SD21_REPO, allow_patterns(Task.TEXT_TO_IMAGE, Backend.TRITON, half=True)))
    assert half == {
        "model_index.json", "scheduler/scheduler_config.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
        "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors",
    }
    full = set(select(SD21_REPO, allow_patterns(Task.TEXT_TO_IMAGE, Backend.CPU)))
    assert "unet/diffusion_pytorch_model.safetensors" in full and not any(f.endswith((".bin", ".ckpt", ".msgpack")) or "fp16" in f for f in full)
    mistral = set(select(MISTRAL_REPO, allow_patterns(Task.TEXT_GENERATION, Backend.CUDA)))
    assert "consolidated.safetensors" not in mistral and "model-00002-of-00003.safetensors" in mistral and "tokenizer.json" in mistral
    llama = set(select(LLAMA_REPO, allow_patterns(Task.TEXT_GENERATION, Backend.CUDA)))
    assert not any(f.startswith("original/") for f in llama) and "model.safetensors" in llama


def fake_hub_cache(cache: Path, repo_id: str, files_from: Path, commit: str = "0123456789abcdef0123456789abcdef01234567") -> None:
    """The layout huggingface_hub writes: models--ORG--NAME/{refs/main, snapshots/COMMIT/...}."""
    base = cache / ("models--" + repo_id.replace("/", "--"))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    shutil.copytree(files_from, base / "snapshots" / commit)


def test_offline_loads_from_the_cache(models: dict[str, Any], tmp_path: Path, live: Any) -> None:
    fake_hub_cache(tmp_path, "hwai-test/tiny-sentiment", models["sentiment"])
    s = settings_for("sentiment", None, model_id="hwai-test/tiny-sentiment", cache_dir=str(tmp_path), offline=True)
    path = resolve_model_path(s)
    assert Path(path).is_relative_to(tmp_path) and (Path(path) / "config.json").exists()
    srv = live(s)
    srv.wait_ready()
    assert httpx.post(srv.url + srv.route, json={"text": "good"}).status_code == 200


def test_offline_without_the_model_fails_health(tmp_path: Path, live: Any) -> None:
    s = settings_for("sentiment", None, model_id="hwai-test/absent", cache_dir=str(tmp_path), offline=True)
    srv = live(s)
    with pytest.raises(RuntimeError):
        srv.wait_ready(timeout=30)
    h = httpx.get(srv.url + "/health")
    assert h.status_code == 503 and h.json()["status"] == "failed" and "absent" in h.json()["error"]
    assert httpx.get(srv.url + "/readiness").status_code == 503


def test_oversized_body_is_413(models: dict[str, Any], live: Any) -> None:
    srv = live(settings_for("image-classification", models["image-classification"], max_image_bytes=2048))
    srv.wait_ready()
    r = httpx.post(srv.url + srv.route, json={"image": "A" * 400_000})
    assert r.status_code == 413 and r.json()["field"] == "body"
    r = httpx.post(srv.url + srv.route, json={"image": "A" * 4000})
    assert r.status_code == 422 and r.json()["field"] == "image"
