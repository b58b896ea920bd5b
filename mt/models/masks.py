"""Attention masks, built here and nowhere else (after the Annotated Transformer's ``subsequent_mask``).

A mask is bool and True where attention is allowed: an attention sets the scores it blocks, the
False positions, to -inf before its softmax, so their weights are exactly 0. Every row of a mask
needs one True position.

- the padding mask ``src_mask``: (B, S), True at the real source tokens, False at PAD
  (``src != PAD_ID``). A batch carries it (``mt.batching.collate`` makes it) and every model
  takes it; the forms below are views of it, built once per batch.
- ``heads_mask(src_mask)``: (B, 1, 1, S), the padding mask for multi-head scores (B, H, T, S):
  the same source positions for every head and every target position.
- ``queries_mask(src_mask)``: (B, 1, S), the padding mask for scores (B, T, S) of T queries per
  sentence: a recurrent attention's, whose queries are a sentence's hypotheses at one step.
- ``causal_mask(length)``: (T, T), True where target position t may see position s, s <= t: the
  decoder's self-attention must not see the tokens it is about to predict (Vaswani et al., 2017,
  section 3.2.3).
- ``combine(first, second)``: where both masks allow attention.
"""

from __future__ import annotations

import torch


def heads_mask(src_mask: torch.Tensor) -> torch.Tensor:
    """The padding mask (B, S) -> (B, 1, 1, S), broadcast over heads and target positions."""
    return src_mask[:, None, None, :]


def queries_mask(src_mask: torch.Tensor) -> torch.Tensor:
    """The padding mask (B, S) -> (B, 1, S), broadcast over the queries of a sentence."""
    return src_mask[:, None, :]


def causal_mask(length: int, device: torch.device | None = None) -> torch.Tensor:
    """(T, T) bool, T = ``length``: lower triangular, row t True at positions 0..t."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def combine(first: torch.Tensor | None, second: torch.Tensor | None) -> torch.Tensor | None:
    """Attention allowed where both masks allow it (broadcast); one mask if the other is None."""
    if first is None or second is None:
        return second if first is None else first
    return first & second
