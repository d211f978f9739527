"""Text generation: Mistral-7B-Instruct v0.3, Llama 3.2 1B (any causal LM).

Concurrent requests are micro-batched into one ``generate`` call (left padding; right padding and
the compiled batch and sequence length on ``neuron``, see :mod:`hwai_models.neuron`); requests
with different sampling settings go in separate groups of the same batch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import backends
from ..config import Backend, Task
from ..hub import resolve_model_path
from .base import BatchedRunner, InputError


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)
    messages: list[Message] | None = Field(default=None, min_length=1, max_length=64)
    max_new_tokens: int = Field(default=64, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    ignore_eos: bool = False  # generate exactly max_new_tokens (benchmarks)

    @model_validator(mode="after")
    def _one_input(self) -> "GenerateRequest":
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        return self


class TextGenerationRunner(BatchedRunner):
    task = Task.TEXT_GENERATION
    route = "/v1/generate"
    request_model = GenerateRequest
    batch_name = "generate"

    def load(self) -> None:
        from transformers import AutoTokenizer

        s = self.settings
        self.model_path = resolve_model_path(s)
        tok = AutoTokenizer.from_pretrained(self.model_path)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        self.tokenizer = tok
        self.max_new_tokens = s.max_new_tokens
        if s.backend == Backend.NEURON:
            from .. import neuron

            self.model, shapes = neuron.load_causal_lm(self.model_path, tok)  # right padding
            self.max_batch = min(self.max_batch, shapes.batch_size)
            self.max_new_tokens = min(s.max_new_tokens, shapes.sequence_length - 1)
            self.prompt_budget = shapes.prompt_budget
            return
        else:
            import torch
            from transformers import AutoModelForCausalLM

            m = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=backends.torch_dtype(s))
            m = m.to(s.torch_device).eval()
            torch.set_grad_enabled(False)
            backends.configure_torch(s)
            if s.backend == Backend.TRITON:
                m.forward = torch.compile(m.forward, mode=s.compile_mode, dynamic=True)
            self.model = m
        cfg = self.model.config
        context = int(getattr(cfg, "max_position_embeddings", 4096) or 4096)
        self.prompt_budget = lambda new_tokens: max(1, context - new_tokens)

    def _text(self, req: GenerateRequest) -> str:
        if req.prompt is not None:
            return req.prompt
        msgs = [m.model_dump() for m in req.messages or []]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return "\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\nassistant:"

    async def infer(self, req: GenerateRequest) -> dict[str, Any]:
        s = self.settings
        if req.max_new_tokens > self.max_new_tokens:
            raise InputError("max_new_tokens", f"at most {self.max_new_tokens} on this server")
        text = self._text(req)
        if len(text) > s.max_input_chars:
            raise InputError("messages" if req.messages else "prompt", f"longer than {s.max_input_chars} characters")
        return await self.submit((text, req))

    def run_batch(self, items: list[tuple[str, GenerateRequest]]) -> list[Any]:
        import torch

        groups: dict[tuple[bool, float, float, bool], list[int]] = {}
        for i, (_, r) in enumerate(items):
            key = (r.temperature > 0, r.temperature, r.top_p, r.ignore_eos)
            groups.setdefault(key, []).append(i)
        results: list[Any] = [None] * len(items)
        with torch.inference_mode():
            for (sample, temp, top_p, ignore_eos), idx in groups.items():
                texts = [items[i][0] for i in idx]
                want = [items[i][1].max_new_tokens for i in idx]
                n_new = max(want)
                enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.prompt_budget(n_new))
                if self.settings.backend == Backend.NEURON:
                    enc = {k: enc[k] for k in ("input_ids", "attention_mask")}
                else:
                    enc = {k: v.to(self.settings.torch_device) for k, v in enc.items()}
                kw: dict[str, Any] = {"max_new_tokens": n_new, "pad_token_id": self.tokenizer.pad_token_id, "do_sample": sample}
                if sample:
                    kw.update(temperature=temp, top_p=top_p)
                if ignore_eos:
                    kw["min_new_tokens"] = n_new
                out = self.model.generate(**enc, **kw)
                prompt_len = enc["input_ids"].shape[1]
                for j, i in enumerate(idx):
                    new = out[j, prompt_len : prompt_len + want[j]].tolist()
                    eos = self.tokenizer.eos_token_id
                    finish = "length"
                    if not ignore_eos and eos is not None and eos in new:
                        new = new[: new.index(eos)]
                        finish = "stop"
                    results[i] = {
                        "text": self.tokenizer.decode(new, skip_special_tokens=True),
                        "prompt_tokens": int(enc["attention_mask"][j].sum()),
                        "completion_tokens": len(new),
                        "finish_reason": finish,
                    }
        return results

    def warmup_requests(self) -> list[BaseModel]:
        return [GenerateRequest(prompt="Warm-up.", max_new_tokens=4, ignore_eos=True)]
