"""Stand-in for the compiled graph of an optimum-neuron causal LM (NxD backend): ``model.pt``.

On an inf2, ``model.pt`` is a TorchScript module whose forward runs the NEFF of the context
encoding (prefill) or token generation graph, each compiled for static shapes, with the KV cache
on the device. This stand-in is loaded by optimum-neuron's own ``torch.jit.load`` and called by its
own wrappers; it enforces what the runtime enforces:

- weights must have been loaded (``nxd_model.initialize``) before the first call;
- prefill: exactly (ctx_batch_size, max_context_length) int32 inputs;
- decode: exactly (batch_size, 1), at a position inside the compiled ``sequence_length``
  (the KV cache has no slot past it).

Its "language model" is a rule a test can check: the next token is the last real token's id + 1
(cycling over the word ids, never a special token). With right padding the last real token of a
row is where its position ids peak, as in the real graph.
"""

from __future__ import annotations

from typing import Dict, List

import torch


class _NxdModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("loaded", torch.zeros(1))

    @torch.jit.export
    def initialize(self, weights: List[Dict[str, torch.Tensor]], start_rank: torch.Tensor) -> None:
        if len(weights) == 0:
            raise RuntimeError("Neuron runtime stand-in: no weight shards given to initialize")
        self.loaded.fill_(1.0)


class CompiledDecoder(torch.nn.Module):
    def __init__(self, batch_size: int, ctx_batch_size: int, max_context_length: int, sequence_length: int, vocab_size: int, first_word: int, on_device_sampling: bool) -> None:
        super().__init__()
        self.nxd_model = _NxdModel()
        self.batch_size = batch_size
        self.ctx_batch_size = ctx_batch_size
        self.max_context_length = max_context_length
        self.sequence_length = sequence_length
        self.vocab_size = vocab_size
        self.first_word = first_word
        self.on_device_sampling = on_device_sampling

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, seq_ids: torch.Tensor, sampling_params: torch.Tensor) -> torch.Tensor:
        if float(self.nxd_model.loaded[0]) == 0.0:
            raise RuntimeError("Neuron runtime stand-in: the model's weights are not loaded (nxd_model.initialize)")
        if input_ids.dtype != torch.int32 or position_ids.dtype != torch.int32:
            raise RuntimeError("Neuron runtime stand-in: input_ids and position_ids must be int32 as compiled")
        b = input_ids.size(0)
        n = input_ids.size(1)
        if n > 1:
            if b != self.ctx_batch_size or n != self.max_context_length:
                raise RuntimeError(
                    "Neuron runtime stand-in: context encoding got input_ids {}, compiled for [{}, {}]".format(
                        input_ids.size(), self.ctx_batch_size, self.max_context_length
                    )
                )
            at = torch.argmax(position_ids, dim=1).unsqueeze(1)
            last = input_ids.gather(1, at).squeeze(1)
            pos = position_ids.gather(1, at).squeeze(1)
        else:
            if b != self.batch_size:
                raise RuntimeError(
                    "Neuron runtime stand-in: token generation got input_ids {}, compiled for [{}, 1]".format(input_ids.size(), self.batch_size)
                )
            last = input_ids[:, 0]
            pos = position_ids[:, 0]
        if int(pos.max()) >= self.sequence_length:
            raise RuntimeError(
                "Neuron runtime stand-in: position {} is past the compiled sequence_length {} (no KV cache slot)".format(
                    int(pos.max()), self.sequence_length
                )
            )
        words = self.vocab_size - self.first_word
        nxt = self.first_word + torch.remainder(last.long() - self.first_word + 1, words)
        if self.on_device_sampling:
            return nxt
        logits = torch.full((b, 1, self.vocab_size), -1.0e4)
        return logits.scatter(2, nxt.view(b, 1, 1), 0.0)


def next_tokens(last: int, count: int, vocab_size: int, first_word: int) -> list[int]:
    """What the stand-in generates after a prompt whose last real token is ``last``."""
    out, t = [], last
    for _ in range(count):
        t = first_word + (t - first_word + 1) % (vocab_size - first_word)
        out.append(t)
    return out
