"""The ``neuron`` backend: serving optimum-neuron compiled artifacts on Inferentia2 / Trainium.

A Neuron artifact is compiled for static shapes: a batch size, a sequence length, an image size.
The runtime refuses any other shape, so every call the server makes is fitted to the artifact's
own compiled sizes, read from the artifact (never from the checkpoint's ``config.json``):

- text generation: right padding (optimum-neuron refuses left), at most the compiled batch per
  ``generate``, prompts truncated so that prompt + new tokens fit the compiled ``sequence_length``;
- encoders: at most the compiled batch, truncation at the compiled sequence length (optimum-neuron
  pads shorter inputs itself), only the inputs the graph was compiled with;
- vision: images resized to the compiled height x width;
- Stable Diffusion (:mod:`.diffusion`): every call padded to the compiled batch.

A raw checkpoint is refused at load with a message that says how to compile it
(``scripts/neuron-compile.sh``, ``optimum-cli export neuron`` on an inf2/trn1 machine).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Task

log = logging.getLogger("hwai_models.neuron")

COMPILE_HINT = (
    "compile it on an inf2/trn1 machine with model-servers/scripts/neuron-compile.sh "
    "(optimum-cli export neuron) and point HWAI_MODEL_ID / HWAI_MODEL_DIR at the result"
)


class NotCompiled(ValueError):
    """The model given to the neuron backend is not an optimum-neuron compiled artifact."""


def optimum_neuron() -> Any:
    """optimum.neuron, imported only for the neuron backend (it exists only on the NeuronX image
    and in the neuron test environment)."""
    try:
        import optimum.neuron as on  # type: ignore[import-not-found]
    except ImportError as e:
        raise ImportError("backend 'neuron' needs optimum-neuron and the Neuron SDK (use the NeuronX image)") from e
    return on


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise NotCompiled(f"{path}: unreadable ({e}); {COMPILE_HINT}") from None
    if not isinstance(data, dict):
        raise NotCompiled(f"{path}: not a JSON object; {COMPILE_HINT}")
    return data


def _traced(folder: Path, what: str) -> None:
    """One optimum-neuron traced model: a ``*.neuron`` file and a config.json with a ``neuron`` section."""
    graphs = sorted(folder.glob("*.neuron"))
    if not graphs:
        raise NotCompiled(f"{what} at {folder} has no compiled graph (*.neuron): it is a raw checkpoint; {COMPILE_HINT}")
    cfg = folder / "config.json"
    if not cfg.is_file() or not isinstance(_json(cfg).get("neuron"), dict):
        raise NotCompiled(f"{what} at {folder}: config.json has no 'neuron' section (compiled shapes); {COMPILE_HINT}")


SD_COMPONENTS = ("text_encoder", "unet", "vae_decoder")


def require_compiled(path: str, task: Task) -> None:
    """Raise :class:`NotCompiled`, naming what is missing, unless ``path`` holds a compiled artifact."""
    root = Path(path)
    if not root.is_dir():
        raise NotCompiled(f"{path} is not a directory; {COMPILE_HINT}")
    if task == Task.TEXT_GENERATION:
        if not (root / "neuron_config.json").is_file() or not (root / "model.pt").is_file():
            raise NotCompiled(
                f"{path} has no neuron_config.json and model.pt: it is a raw checkpoint, not an optimum-neuron "
                f"compiled causal LM; {COMPILE_HINT}"
            )
        return
    if task == Task.TEXT_TO_IMAGE:
        if not (root / "model_index.json").is_file():
            raise NotCompiled(f"{path} has no model_index.json: not a diffusion pipeline; {COMPILE_HINT}")
        for sub in SD_COMPONENTS:
            _traced(root / sub, sub)
        return
    _traced(root, "the model")


# ------------------------------------------------------------------------------ compiled sizes


@dataclass(frozen=True)
class DecoderShapes:
    batch_size: int  # requests per generate call
    sequence_length: int  # prompt + generated tokens (the KV cache size)
    max_context_length: int  # longest prompt the prefill graph takes

    def prompt_budget(self, new_tokens: int) -> int:
        """Longest prompt (tokens) that leaves room for ``new_tokens`` in the compiled sequence."""
        return max(1, min(self.max_context_length, self.sequence_length - new_tokens))


def decoder_shapes(model: Any) -> DecoderShapes:
    nc = model.neuron_config
    return DecoderShapes(int(nc.batch_size), int(nc.sequence_length), int(getattr(nc, "max_context_length", None) or nc.sequence_length))


def static_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Input name -> compiled shape, as optimum-neuron derives them from the artifact's config."""
    return {name: tuple(int(d) for d in shape) for name, shape in model.input_static_shapes.items()}


def static_batch(model: Any) -> int:
    return int(model.neuron_config.batch_size)


# ------------------------------------------------------------------------------ loading


def load_causal_lm(path: str, tokenizer: Any) -> tuple[Any, DecoderShapes]:
    """A compiled causal LM and its shapes; sets the tokenizer to right padding (optimum-neuron's
    generate raises on left padding)."""
    require_compiled(path, Task.TEXT_GENERATION)
    model = optimum_neuron().NeuronModelForCausalLM.from_pretrained(path)
    tokenizer.padding_side = "right"
    shapes = decoder_shapes(model)
    log.info("neuron causal LM: batch %d, sequence_length %d, max_context_length %d", shapes.batch_size, shapes.sequence_length, shapes.max_context_length)
    return model, shapes


def load_traced(class_name: str, path: str, task: Task) -> Any:
    """A compiled encoder/vision model (``NeuronModelFor...``)."""
    require_compiled(path, task)
    model = getattr(optimum_neuron(), class_name).from_pretrained(path)
    log.info("neuron %s: compiled inputs %s", class_name, static_shapes(model))
    return model


def compiled_inputs(model: Any, enc: Any) -> dict[str, Any]:
    """Only the inputs the graph was compiled with (a tokenizer may add token_type_ids the graph
    does not take; optimum-neuron fails on an input it has no compiled shape for)."""
    shapes = model.input_static_shapes
    return {k: v for k, v in enc.items() if k in shapes}


def sequence_length(model: Any) -> int:
    """The compiled token length of an encoder (inputs are truncated to it, optimum-neuron pads)."""
    return int(static_shapes(model)["input_ids"][1])


def image_size(model: Any) -> tuple[int, int]:
    """The compiled (height, width) of a vision model's pixel_values."""
    shape = static_shapes(model)["pixel_values"]
    return int(shape[2]), int(shape[3])


def fit_image_processor(processor: Any, model: Any) -> None:
    """Make the processor resize every image to the compiled size: YOLOS' processor keeps the
    aspect ratio (shortest edge 800, longest 1333) and pads, a shape no static graph takes. The
    boxes come back relative to the image, so scaling them to the original size stays right."""
    h, w = image_size(model)
    processor.size = {"height": h, "width": w}
    if hasattr(processor, "do_pad"):
        processor.do_pad = False
