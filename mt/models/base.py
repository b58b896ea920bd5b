"""The interface every model implements, so that search, scoring and plots are written once.

A model encodes the source once, then produces the target one token at a time::

    memory = model.encode(src, src_mask)                    # (B, S, D)
    state = model.init_state(memory, src_mask)
    log_probs, state, attention = model.decode_step(prev_tokens, state)
    # log_probs: (B, V) float32, attention: (B, L, H, S) (RNNs: L = H = 1)

Training uses ``model.features(src, src_mask, tgt_in) -> (B, T, D)``, the teacher-forced decoder
outputs that the output layer ``model.output`` (V x D, no bias) turns into logits; ``model(src,
src_mask, tgt_in)`` gives those logits (B, T, V). They must agree with running ``decode_step``
over the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mt.tokenizer import PAD_ID


@dataclass
class DecoderState:
    """Whatever a decoder carries from one step to the next; every tensor has the batch as dim 0.

    Tensors named in ``static`` depend on the source sentence only (memory, masks, projected
    keys) and hold one row per sentence. The others hold one row per hypothesis: ``beams``
    consecutive rows per sentence (1 in greedy search and at beam search's first step), so a
    model attends from all hypotheses of a sentence to its source at once, without a copy of the
    source per hypothesis. Beam search reorders and shrinks states with ``select``/``reorder``
    without knowing what is inside.

    Tensors named in ``growing`` (a Transformer's self-attention caches) gain a position at
    every step; ``reorder`` leaves them as they are and keeps the hypotheses' rows of them in
    ``rows`` (None: all, in order), which the model applies as it extends them
    (``append_step``): one copy of a cache per step instead of two.
    """

    tensors: dict[str, torch.Tensor]
    step: int = 0
    static: frozenset[str] = frozenset()
    beams: int = 1
    growing: frozenset[str] = frozenset()
    rows: torch.Tensor | None = None

    def select(self, index: torch.Tensor) -> "DecoderState":
        """Rows ``index`` (int64, (B',)) of every tensor, one hypothesis per sentence: drops finished sentences."""
        return self.reorder(index, index, beams=1)

    def reorder(self, index: torch.Tensor, sentences: torch.Tensor | None, beams: int) -> "DecoderState":
        """Rows ``index`` (B' * ``beams``,) of the hypothesis tensors, rows ``sentences`` (B',) of the
        static ones (left as they are when None: the same sentences, in the same order); the
        ``growing`` ones stay as they are, ``index`` composed into ``rows``."""
        tensors = {}
        for name, tensor in self.tensors.items():
            rows = None if name in self.growing else sentences if name in self.static else index
            tensors[name] = tensor if rows is None else tensor.index_select(0, rows)
        rows = None if not self.growing else index if self.rows is None else self.rows.index_select(0, index)
        return DecoderState(tensors, self.step, self.static, beams, self.growing, rows)

    def advance(self, tensors: dict[str, torch.Tensor]) -> "DecoderState":
        """The state after one more step, holding ``tensors``, its ``growing`` ones extended
        (``append_step``) to the hypotheses' rows."""
        return DecoderState(tensors, self.step + 1, self.static, self.beams, self.growing)


def append_step(cache: torch.Tensor | None, step: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """Rows ``rows`` (N',) of ``cache`` (N, H, t, D/H) (all, in order, when None) with ``step``
    (N', H, 1, D/H) appended: (N', H, t + 1, D/H), in one copy (``index_select`` then ``cat``
    copies the cache twice: 1.6-2x the time for (1,000, 4, 10, 64) fp32 on one core); ``step``
    itself when there is no cache yet (the first step)."""
    if cache is None:
        return step
    length = cache.size(2)
    extended = cache.new_empty(step.size(0), cache.size(1), length + 1, cache.size(3))
    if rows is None:
        extended[:, :, :length].copy_(cache)
    else:
        torch.index_select(cache, 0, rows, out=extended[:, :, :length])
    extended[:, :, length:].copy_(step)
    return extended


def shares_embeddings(config) -> bool:
    """Whether source and target use one embedding matrix: only with a joint vocabulary
    (``ModelConfig.joint_vocab``) and ``tie_embeddings`` (Press & Wolf, 2017)."""
    return config.tie_embeddings and config.joint_vocab and config.src_vocab_size == config.tgt_vocab_size


def init_embedding(embedding: nn.Embedding) -> nn.Embedding:
    """Draw token embeddings (V, E) from N(0, 1/E) rather than N(0, 1), so that tied output logits
    start small; PAD's row is zero. Returns ``embedding``."""
    nn.init.normal_(embedding.weight, mean=0.0, std=embedding.embedding_dim**-0.5)
    with torch.no_grad():
        embedding.weight[PAD_ID].zero_()
    return embedding


class EncoderDecoder(nn.Module):
    """Base class of the sequence-to-sequence models (Transformer, RNN)."""

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """``src``: (B, S) int64, ``src_mask``: (B, S) bool -> memory (B, S, D)."""
        raise NotImplementedError

    def init_state(self, memory: torch.Tensor, src_mask: torch.Tensor) -> DecoderState:
        """The decoder state before the first step, from memory (B, S, D) and ``src_mask`` (B, S)."""
        raise NotImplementedError

    def decode_step(
        self, prev_tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """``prev_tokens``: (B,) int64 -> log-probs (B, V) float32, next state, attention (B, L, H, S)."""
        raise NotImplementedError

    def features(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced decoder outputs (B, T, D) for decoder inputs ``tgt_in`` (B, T), before the
        output layer ``self.output`` (``mt.loss`` applies it a chunk of rows at a time)."""
        raise NotImplementedError

    def policy_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What a part trained by REINFORCE adds to the training loss after ``features(...)``
        (B, T, D) for ``labels`` (B, T): a surrogate whose gradient is the policy gradient
        (``mt.models.attention.HardAttention``); 0 for every other model."""
        return features.new_zeros((), dtype=torch.float32)

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for decoder inputs ``tgt_in`` (B, T)."""
        return self.output(self.features(src, src_mask, tgt_in))
