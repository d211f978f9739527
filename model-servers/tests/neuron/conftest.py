"""Compiled artifacts for the neuron tests, made the way the compile script makes them.

Encoders, ViT, YOLOS and SD are compiled by scripts/neuron-compile.sh, i.e. optimum-neuron's own
``optimum-cli export neuron``; the
stand-in ``torch_neuronx.trace`` (tests/neuron/stubs) turns each graph into a TorchScript module that
enforces its compiled shapes. The causal LM's NxD export needs the Neuron compiler, so its artifact
is assembled here: optimum-neuron's own neuron config for the model class, the checkpoint's
config and tokenizer, pre-sharded weights, and the stand-in ``model.pt`` (nxd_standin.py).

Serving an NxD model also probes the host for a Neuron device (instance type, core count, device
memory); ``inf2_host`` answers those probes as an inf2.xlarge would (2 NeuronCores).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

from hwai_models import tiny

from .nxd_standin import CompiledDecoder

BIN = Path(sys.executable).parent

# The compiled sizes of the test artifacts (small, and different from the models' own defaults, so a
# size read from the wrong place shows).
ENCODER = dict(batch_size=2, sequence_length=16)
VIT = dict(batch_size=2)
YOLOS = dict(batch_size=1)  # optimum-neuron 0.4.5 compiles ViT-family models at config.image_size
SD = dict(batch_size=2, height=32, width=32)  # SD_SIZE: square
LLM = dict(batch_size=2, sequence_length=32)


COMPILE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "neuron-compile.sh"


def run_compile_script(out: Path, name: str, **env: Any) -> subprocess.CompletedProcess[str]:
    """scripts/neuron-compile.sh, the script an inf2/trn1 machine runs, on a tiny checkpoint and
    small sizes (its *_MODEL and size variables); the hub compile cache is off (no hub here)."""
    full = {**os.environ, **{k: str(v) for k, v in env.items()}, "NEURON_EXPORT_FLAGS": "--disable_neuron_cache", "NEURON_INSTANCE_TYPE": "inf2"}
    full["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(["bash", str(COMPILE_SCRIPT), str(out), name], env=full, capture_output=True, text=True)


def neuron_compile(out: Path, name: str, **env: Any) -> Path:
    proc = run_compile_script(out, name, **env)
    if proc.returncode != 0:
        raise RuntimeError(f"neuron-compile.sh {name} failed:\n{proc.stderr[-4000:]}")
    return out / name


def compile_llm(model: Path, out: Path, batch_size: int, sequence_length: int, tp_degree: int = 2) -> Path:
    from optimum.neuron.models.inference.llama.modeling_llama import LlamaNxDModelForCausalLM
    from safetensors.torch import save_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model)
    neuron_config = LlamaNxDModelForCausalLM._get_neuron_config(
        checkpoint_id=None,
        checkpoint_revision=None,
        instance_type="inf2",
        batch_size=batch_size,
        sequence_length=sequence_length,
        tensor_parallel_size=tp_degree,
        dtype=torch.bfloat16,
    )
    out.mkdir(parents=True)
    neuron_config.save_pretrained(out)
    for f in model.iterdir():
        if f.suffix in (".json", ".jinja") and f.is_file():
            shutil.copy(f, out / f.name)
    graph = CompiledDecoder(
        batch_size=neuron_config.tkg_batch_size,
        ctx_batch_size=neuron_config.ctx_batch_size,
        max_context_length=neuron_config.max_context_length,
        sequence_length=neuron_config.sequence_length,
        vocab_size=config.vocab_size,
        first_word=FIRST_WORD,
        on_device_sampling=bool(neuron_config.on_device_sampling),
    )
    torch.jit.save(torch.jit.script(graph), str(out / "model.pt"))
    weights = out / "checkpoint" / "weights"
    weights.mkdir(parents=True)
    for rank in range(tp_degree):
        save_file({"embed_tokens.weight": torch.zeros(config.vocab_size, 1)}, str(weights / f"tp{rank}_sharded_checkpoint.safetensors"))
    return out


FIRST_WORD = 4  # the tiny LLM tokenizer's specials are ids 0-3 (tiny.word_tokenizer "llm")


@pytest.fixture(scope="session")
def raw(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("raw")
    out = {task: build(root / task) for task, build in tiny.BUILDERS.items()}
    # hustvl/yolos-small's own preprocessing: shortest edge 800, longest 1333, aspect kept.
    pre = out["object-detection"] / "preprocessor_config.json"
    cfg = json.loads(pre.read_text())
    cfg["size"] = {"shortest_edge": 800, "longest_edge": 1333}
    pre.write_text(json.dumps(cfg))
    return out


@pytest.fixture(scope="session")
def compiled(raw: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """task -> compiled artifact folder, each compiled on first use."""
    root = tmp_path_factory.mktemp("compiled")
    made: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in made:
            if task == "sentiment":
                made[task] = neuron_compile(root, "distilbert", DISTILBERT_MODEL=raw[task], ENCODER_BATCH=ENCODER["batch_size"], ENCODER_SEQUENCE=ENCODER["sequence_length"])
            elif task == "image-classification":
                made[task] = neuron_compile(root, "vit", VIT_MODEL=raw[task], ENCODER_BATCH=VIT["batch_size"])
            elif task == "object-detection":
                made[task] = neuron_compile(root, "yolos", YOLOS_MODEL=raw[task], YOLOS_BATCH=YOLOS["batch_size"])
            elif task == "text-to-image":
                made[task] = neuron_compile(root, "sd21", SD_MODEL=raw[task], SD_BATCH=SD["batch_size"], SD_SIZE=SD["height"])
            elif task == "text-generation":
                made[task] = compile_llm(raw[task], root / "llm", **LLM)
            else:
                raise KeyError(task)
        return made[task]

    return get


class _DeviceMemory:
    def __str__(self) -> str:
        return "inf2.xlarge stand-in: 2 NeuronCores, 32 GiB device memory"


@pytest.fixture(scope="session")
def inf2_host() -> Iterator[None]:
    """The host probes optimum-neuron's NxD loader makes, answered as on an inf2.xlarge."""
    from optimum.neuron.models.inference.backend import pretrained_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pretrained_model, "current_instance_type", lambda: "inf2")
        mp.setattr(pretrained_model, "get_available_cores", lambda: 2)
        mp.setattr(pretrained_model, "get_neuron_device_memory", _DeviceMemory)
        yield
