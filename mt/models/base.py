"""The interface every model implements, so that search, scoring and plots are written once.

A model encodes the source once, then produces the target one token at a time::

    memory = model.encode(src, src_mask)                    # (B, S, D)
    state = model.init_state(memory, src_mask)              # a DecoderState
    log_probs, state, attention = model.decode_step(prev_tokens, state)
    # log_probs: (B, V) float32, attention: (B, L, H, S) (RNNs: L = H = 1)
    state = state.reorder(index, sentences, beams)          # search: the hypotheses kept

Training uses ``model.features(src, src_mask, tgt_in) -> (B, T, D)``, the teacher-forced decoder
outputs that the output layer ``model.output`` (V x D, no bias) turns into logits; ``model(src,
src_mask, tgt_in)`` gives those logits (B, T, V). They must agree with running ``decode_step``
over the same tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from mt.tokenizer import PAD_ID


class DecoderState:
    """Whatever a decoder carries from one step to the next, as search sees it: something to reorder.

    Each model keeps its own kind (``mt.models.rnn.RecurrentState``,
    ``mt.models.transformer.DecoderCache``, ``mt.ensemble.EnsembleState``). What depends on the
    source sentence only (memory, masks, projected keys) holds one row per sentence; the rest one
    row per hypothesis: ``beams`` consecutive rows per sentence (1 in greedy search and at beam
    search's first step), so a model attends from all hypotheses of a sentence to its source at
    once, without a copy of the source per hypothesis. Beam search reorders and shrinks states
    with ``reorder`` without knowing what is inside.
    """

    def reorder(self, index: torch.Tensor, sentences: torch.Tensor | None, beams: int) -> "DecoderState":
        """The state of the hypotheses in rows ``index`` (B' * ``beams``,) of the present ones, for the
        sentences in rows ``sentences`` (B',) of the present ones (None: the same sentences, in the
        same order)."""
        raise NotImplementedError


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


def embed_source(src: torch.Tensor, src_embedding: nn.Embedding, tgt_embedding: nn.Embedding) -> torch.Tensor:
    """Source ids (B, S) -> embeddings (B, S, E). Ids from ``V_src`` (``src_embedding``'s rows) on
    are target pieces ``id - V_src``, embedded by ``tgt_embedding``: the target terms that
    ``mt.terminology`` writes into a source after the source terms they translate (Dinu et al.,
    2019, "append"), so that the encoder sees a term as the decoder will write it. Both lookups
    run on every position (no host sync, one graph under ``torch.compile``)."""
    size = src_embedding.num_embeddings
    source = src_embedding(src.clamp(max=size - 1))
    target = tgt_embedding((src - size).clamp(min=0))
    return torch.where((src < size)[..., None], source, target)


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
