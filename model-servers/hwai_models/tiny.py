"""Models with random weights built from configs, and tokenizers built locally: no hub access.

- ``tiny_*``: small versions of every task's architecture, for the CPU tests (seconds to build).
- ``random_sd21`` / ``random_llm``: the real architectures (configs in ``configs/``) with random
  weights, for the GPU benchmarks. Timing does not depend on the weights' values.

The tokenizers are word-level (``tokenizers`` library) with the right special tokens and the
model's vocabulary size, saved in the standard ``tokenizer.json`` form the server loads.

``python -m hwai_models.tiny TASK DIR`` writes one of them (see ``--help``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).parent / "configs"

WORDS = (
    "a an the of to in on at for with and or not is are was be this that it good bad great terrible "
    "fine day night cat dog photo painting astronaut riding horse mountain lake city street red blue "
    "green light dark happy sad love hate movie film book story very really quite warm up hello world "
    "what how why who when where write tell me about you i we they he she model image text"
).split()


def word_tokenizer(vocab_size: int, kind: str, model_max_length: int) -> Any:
    """A word-level fast tokenizer of exactly ``vocab_size`` tokens. kind: bert | clip | llm."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if kind == "bert":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        names = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        template, pair = "[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1"
    elif kind == "clip":
        specials = ["<|startoftext|>", "!", "<|endoftext|>", "<unk>"]
        names = dict(bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="!", unk_token="<unk>")
        template, pair = "<|startoftext|> $A <|endoftext|>", "<|startoftext|> $A $B <|endoftext|>"
    elif kind == "llm":
        specials = ["<unk>", "<s>", "</s>", "<pad>"]
        names = dict(unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>")
        template, pair = "<s> $A", "<s> $A $B"
    else:
        raise ValueError(kind)
    vocab: dict[str, int] = {}
    for w in specials + WORDS:
        vocab.setdefault(w, len(vocab))
    i = 0
    while len(vocab) < vocab_size:
        vocab.setdefault(f"w{i}", len(vocab))
        i += 1
    if len(vocab) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} smaller than the base vocabulary ({len(vocab)})")
    tok = Tokenizer(models.WordLevel(vocab, unk_token=names["unk_token"]))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=template, pair=pair, special_tokens=[(t, vocab[t]) for t in specials if t in template or t in pair]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length, **names)
    if kind == "llm":
        fast.chat_template = (
            "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} \n{% endfor %}"
            "{% if add_generation_prompt %}assistant : {% endif %}"
        )
    return fast


def _save(model: Any, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)


# ------------------------------------------------------------------------------ text-to-image


def _save_sd(out: Path, unet: Any, vae: Any, text_encoder: Any, vocab_size: int) -> Path:
    """Writes a diffusers SD pipeline folder: the three models, a CLIP-style tokenizer, the scheduler."""
    _save(unet, out / "unet")
    _save(vae, out / "vae")
    _save(text_encoder, out / "text_encoder")
    word_tokenizer(vocab_size, "clip", 77).save_pretrained(str(out / "tokenizer"))
    _sd_scheduler(out)
    return out


def _sd_scheduler(out: Path) -> None:
    (out / "scheduler").mkdir(parents=True, exist_ok=True)
    (out / "scheduler" / "scheduler_config.json").write_text((CONFIGS / "sd21" / "scheduler" / "scheduler_config.json").read_text())
    (out / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "StableDiffusionPipeline",
                "scheduler": ["diffusers", "DDIMScheduler"],
                "text_encoder": ["transformers", "CLIPTextModel"],
                "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
                "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"],
                "safety_checker": [None, None],
                "feature_extractor": [None, None],
                "requires_safety_checker": False,
            },
            indent=2,
        )
    )


def tiny_sd(out: str | Path, seed: int = 0) -> Path:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    out = Path(out)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 32),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
        sample_size=32,
    )
    te = CLIPTextModel(
        CLIPTextConfig(vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    )
    return _save_sd(out, unet, vae, te, vocab_size=1000)


def random_sd21(out: str | Path, device: str = "cuda", dtype: str = "float16", seed: int = 0) -> Path:
    """SD 2.1's real UNet, VAE and text encoder (configs/sd21) with random weights."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    out = Path(out)
    torch.manual_seed(seed)
    dt = getattr(torch, dtype)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(CONFIGS / "sd21" / "unet"))).to(dt)
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(CONFIGS / "sd21" / "vae"))).to(dt)
        te = CLIPTextModel(CLIPTextConfig.from_pretrained(str(CONFIGS / "sd21" / "text_encoder"))).to(dt)
    return _save_sd(out, unet, vae, te, vocab_size=49408)


# ------------------------------------------------------------------------------ text generation


def tiny_llm(out: str | Path, arch: str = "llama", seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    out = Path(out)
    torch.manual_seed(seed)
    common = dict(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif arch == "mistral":
        model = MistralForCausalLM(MistralConfig(**common, sliding_window=None))
    else:
        raise ValueError(arch)
    _save(model, out)
    word_tokenizer(512, "llm", 256).save_pretrained(str(out))
    return out


def random_llm(out: str | Path, name: str = "llama-3.2-1b", device: str = "cuda", dtype: str = "bfloat16", seed: int = 0) -> Path:
    """An LLM's real architecture (configs/NAME/config.json) with random weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = Path(out)
    torch.manual_seed(seed)
    cfg = AutoConfig.from_pretrained(str(CONFIGS / name))
    cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = 1, 2, 3
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
    _save(model, out)
    word_tokenizer(cfg.vocab_size, "llm", 8192).save_pretrained(str(out))
    return out


# ------------------------------------------------------------------------------ encoders


def tiny_distilbert(out: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    out = Path(out)
    torch.manual_seed(seed)
    cfg = DistilBertConfig(vocab_size=500, dim=32, hidden_dim=64, n_layers=2, n_heads=4, max_position_embeddings=128, pad_token_id=0, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    _save(DistilBertForSequenceClassification(cfg), out)
    word_tokenizer(500, "bert", 128).save_pretrained(str(out))
    return out


def tiny_vit(out: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    out = Path(out)
    torch.manual_seed(seed)
    labels = {i: name for i, name in enumerate(["cat", "dog", "horse", "astronaut", "mountain"])}
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, id2label=labels, label2id={v: k for k, v in labels.items()})
    _save(ViTForImageClassification(cfg), out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(out))
    return out


def tiny_yolos(out: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    out = Path(out)
    torch.manual_seed(seed)
    labels = {0: "person", 1: "car", 2: "dog"}
    cfg = YolosConfig(image_size=[64, 64], patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, num_detection_tokens=5, id2label=labels, label2id={v: k for k, v in labels.items()})
    _save(YolosForObjectDetection(cfg), out)
    YolosImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}).save_pretrained(str(out))
    return out


BUILDERS = {
    "text-to-image": tiny_sd,
    "text-generation": tiny_llm,
    "sentiment": tiny_distilbert,
    "image-classification": tiny_vit,
    "object-detection": tiny_yolos,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hwai_models.tiny", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=sorted(BUILDERS) + ["sd21", "llama-3.2-1b", "mistral-7b-instruct-v0.3"])
    p.add_argument("out")
    p.add_argument("--device", default="cuda")
    a = p.parse_args(argv)
    if a.what == "sd21":
        random_sd21(a.out, device=a.device)
    elif a.what in ("llama-3.2-1b", "mistral-7b-instruct-v0.3"):
        random_llm(a.out, a.what, device=a.device)
    else:
        BUILDERS[a.what](a.out)
    print(os.path.abspath(a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
