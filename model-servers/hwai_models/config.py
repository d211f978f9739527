"""Server configuration, read from environment variables (prefix ``HWAI_``) and validated.

Every setting has a default except where a deployment must say what it is. A bad value stops the
process at start-up with a message naming the variable, never at the first request.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Task(str, Enum):
    TEXT_TO_IMAGE = "text-to-image"
    TEXT_GENERATION = "text-generation"
    SENTIMENT = "sentiment"
    IMAGE_CLASSIFICATION = "image-classification"
    OBJECT_DETECTION = "object-detection"
    # A deterministic service time and no model: the calibrator's own test target.
    SLEEP = "sleep"


class Backend(str, Enum):
    CUDA = "cuda"  # eager PyTorch on an NVIDIA GPU
    TRITON = "triton"  # torch.compile with Inductor (OpenAI Triton kernels) on an NVIDIA GPU
    NEURON = "neuron"  # optimum-neuron compiled artifacts on Inferentia2 / Trainium
    CPU = "cpu"


# Default Hugging Face repositories per task (the seed's models).
DEFAULT_MODEL_IDS: dict[Task, str] = {
    Task.TEXT_TO_IMAGE: "stabilityai/stable-diffusion-2-1",
    Task.TEXT_GENERATION: "meta-llama/Llama-3.2-1B-Instruct",
    Task.SENTIMENT: "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
    Task.IMAGE_CLASSIFICATION: "google/vit-base-patch16-224",
    Task.OBJECT_DETECTION: "hustvl/yolos-small",
    Task.SLEEP: "",
}


class Settings(BaseModel):
    """All of the server's configuration. Build it with :func:`load_settings`."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    task: Task
    backend: Backend = Backend.CPU
    # Metric dimensions: what the controller and KEDA select on.
    service: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    unit: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

    # Where the model comes from: a local directory wins; else a hub repository (cache first).
    model_id: str = ""
    model_dir: str | None = None
    revision: str | None = None
    cache_dir: str | None = None
    offline: bool = False

    dtype: str = Field(default="auto", pattern=r"^(auto|float32|float16|bfloat16)$")
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)

    # Concurrency and batching.
    max_batch_size: int = Field(default=8, ge=1, le=256)
    batch_wait_ms: float = Field(default=5.0, ge=0.0, le=1000.0)
    max_concurrency: int = Field(default=1, ge=1, le=64)  # model calls in flight at once
    # The queue's bound follows from the latency budget: a request that would wait longer than
    # max_wait_s for a slot (estimated from the measured service time) is refused at once with
    # 503 and Retry-After, instead of waiting into a time-out. max_queue is only a hard cap.
    max_wait_s: float = Field(default=2.0, gt=0.0, le=3600.0)
    max_queue: int = Field(default=256, ge=1, le=100_000)
    request_timeout_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    drain_seconds: float = Field(default=15.0, ge=0.0, le=600.0)

    # Text-to-image.
    image_size: int = Field(default=512, ge=16, le=1024, multiple_of=8)
    default_steps: int = Field(default=25, ge=1, le=150)
    max_steps: int = Field(default=50, ge=1, le=150)
    # Text generation.
    max_new_tokens: int = Field(default=256, ge=1, le=8192)
    max_input_chars: int = Field(default=8000, ge=1, le=1_000_000)
    # Images in requests.
    max_image_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=4096 * 4096, ge=64)

    # torch.compile options for the triton backend.
    compile_mode: str = Field(default="default", pattern=r"^(default|reduce-overhead|max-autotune|max-autotune-no-cudagraphs)$")
    compile_dynamic: bool = True
    # Inductor's own options for every torch.compile (triton), "name=value,...": e.g.
    # conv_1x1_as_mm=true,coordinate_descent_tuning=true. A name Inductor lacks fails at start-up.
    inductor_options: str = Field(default="", pattern=r"^\s*([A-Za-z_][\w.]*\s*=\s*[\w.+-]+\s*(,\s*[A-Za-z_][\w.]*\s*=\s*[\w.+-]+\s*)*)?$")
    # cuda/triton: cuDNN times its algorithms for each convolution shape and keeps the fastest
    # (torch.backends.cudnn.benchmark), instead of choosing by heuristics.
    cudnn_benchmark: bool = False
    # GPU levers for the diffusion engine (measured on the H200: benchmarks/h200/README.md).
    # channels_last "auto": on for eager cuda, off for triton (Inductor's UNet step at 4 images:
    # 20.7 ms contiguous, 25.8 ms channels-last).
    channels_last: str = Field(default="auto", pattern=r"^(auto|on|off)$")
    fuse_qkv: bool = True  # one projection matrix for attention's Q, K and V (cuda and triton)
    compile_vae: bool = True  # triton: the VAE decoder compiled too (8 ms instead of 27 per image)
    fp8: bool = False  # triton: the UNet's linear layers in float8 (torchao); drift in the README
    # The diffusion engine's denoising step captured as one CUDA graph per batch size and replayed
    # (cuda and triton): the host's per-step work (Python, dynamo's guards, hundreds of kernel
    # launches) left the H200 idle a third of the time at small batches. Replaces
    # HWAI_COMPILE_MODE=reduce-overhead's CUDA graph trees for text-to-image.
    step_graphs: bool = True
    # Text-to-image: a queued job joins the running batch only if that pushes no job that would
    # finish within this many seconds past it (batch_bound.py); 0: no bound but max_batch_size.
    latency_target_s: float = Field(default=0.0, ge=0.0, le=3600.0)
    # Batch sizes that get a step graph of their own ("2,4,8": a batch of 3 runs padded to 4);
    # empty: every size from 1 to HWAI_MAX_BATCH_SIZE. With HWAI_COMPILE_DYNAMIC=false each bucket
    # is one static-shape compilation.
    step_buckets: str = Field(default="", pattern=r"^\s*(\d+\s*(,\s*\d+\s*)*)?$")

    # After the warm-up, freeze every object alive (the model, the compiler's graphs) out of the
    # garbage collector's reach: a full collection walking them would hold the GIL, and so the
    # server, 0.2-0.4 s (the CI machine, a tiny model: gc_pauses.py), though serving rarely
    # triggers one. /info's stats count the collections' pauses either way.
    gc_freeze: bool = True

    # Warm-up: inferences run before /readiness says yes.
    warmup_runs: int = Field(default=1, ge=1, le=100)

    # Task "sleep": a deterministic service time per request (the calibrator's test server).
    sleep_ms: float = Field(default=50.0, ge=0.0, le=60_000.0)

    @field_validator("model_dir")
    @classmethod
    def _dir_exists(cls, v: str | None) -> str | None:
        if v is not None and v != "" and not os.path.isdir(v):
            raise ValueError(f"directory {v!r} does not exist")
        return v or None

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if not self.model_id and not self.model_dir:
            if self.backend == Backend.NEURON and self.task != Task.SLEEP:
                # The defaults are raw hub checkpoints; the neuron backend serves compiled artifacts only.
                raise ValueError(
                    "HWAI_MODEL_ID or HWAI_MODEL_DIR must name an optimum-neuron compiled artifact on the neuron "
                    "backend (no default: compile one with scripts/neuron-compile.sh)"
                )
            object.__setattr__(self, "model_id", DEFAULT_MODEL_IDS[self.task])
        if self.step_graphs and self.task == Task.TEXT_TO_IMAGE and self.compile_mode in ("reduce-overhead", "max-autotune"):
            raise ValueError(
                f"step_graphs: the diffusion step is already captured as a CUDA graph; HWAI_COMPILE_MODE={self.compile_mode} "
                "would capture inside that capture (use default or max-autotune-no-cudagraphs, or HWAI_STEP_GRAPHS=false)"
            )
        sizes = self.step_bucket_sizes
        if sizes and (sizes[0] < 1 or sizes[-1] < self.max_batch_size):
            raise ValueError(f"step_buckets: the sizes must be at least 1 and the largest must hold HWAI_MAX_BATCH_SIZE={self.max_batch_size}; got {self.step_buckets!r}")
        if self.default_steps > self.max_steps:
            raise ValueError("default_steps must not exceed max_steps")
        if self.backend in (Backend.CUDA, Backend.TRITON, Backend.NEURON) and self.task == Task.SLEEP:
            pass  # allowed: the sleep task ignores the backend
        return self

    @property
    def step_bucket_sizes(self) -> list[int]:
        return sorted({int(v) for v in self.step_buckets.split(",") if v.strip()})

    @property
    def torch_device(self) -> str:
        return "cuda" if self.backend in (Backend.CUDA, Backend.TRITON) else "cpu"


_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False, "": False}


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read ``HWAI_*`` variables (and ``HF_HUB_OFFLINE``) from ``env`` and validate them."""
    env = os.environ if env is None else env
    raw: dict[str, object] = {}
    for name in Settings.model_fields:
        key = f"HWAI_{name.upper()}"
        if key in env:
            raw[name] = env[key]
    if "offline" not in raw and env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raw["offline"] = True
    for k in ("offline", "compile_dynamic", "fuse_qkv", "compile_vae", "fp8", "step_graphs", "cudnn_benchmark", "gc_freeze"):
        if isinstance(raw.get(k), str):
            s = str(raw[k]).strip().lower()
            if s not in _BOOL:
                raise ConfigError(f"HWAI_{k.upper()}: expected a boolean (true/false), got {raw[k]!r}")
            raw[k] = _BOOL[s]
    raw.update(overrides)
    try:
        return Settings(**raw)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            var = f"HWAI_{loc.upper()}" if loc in Settings.model_fields else loc
            msgs.append(f"{var}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(msgs)) from None
