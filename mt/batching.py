"""Token-based batches from length-sorted sentences: little padding, a fixed budget of tokens.

Sentences are sorted by length (ties broken at random each epoch), cut into batches whose
padded size ``rows * longest side`` stays within ``batch_tokens``, and the batches are shuffled.
The source gets EOS appended; the target becomes ``BOS y`` (decoder input) and ``y EOS`` (labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from mt.tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    """Padded tensors for one batch.

    ``src``: (B, S) int64, ``src_mask``: (B, S) bool (True = real token),
    ``tgt_in``/``tgt_out``: (B, T) int64 or None when decoding, ``indices``: (B,) positions of the
    rows in the original sentence list, ``n_tgt_tokens``: real label tokens (EOS included).
    """

    src: torch.Tensor
    src_mask: torch.Tensor
    tgt_in: torch.Tensor | None
    tgt_out: torch.Tensor | None
    indices: list[int]
    n_src_tokens: int
    n_tgt_tokens: int

    def to(self, device: torch.device) -> "Batch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.src), move(self.src_mask), move(self.tgt_in), move(self.tgt_out),
                     self.indices, self.n_src_tokens, self.n_tgt_tokens)


def plan_batches(
    src_lengths: np.ndarray, tgt_lengths: np.ndarray | None, batch_tokens: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Group sentence indices into batches of at most ``batch_tokens`` padded tokens.

    Lengths include the EOS/BOS token added later. Sorted by (source, target) length; with an
    ``rng`` ties are broken at random and the batch order is shuffled, otherwise the order is
    deterministic (for decoding). A sentence longer than ``batch_tokens`` gets a batch of its own.
    """
    if len(src_lengths) == 0:
        return []
    longest = src_lengths if tgt_lengths is None else np.maximum(src_lengths, tgt_lengths)
    tie_break = rng.random(len(src_lengths)) if rng is not None else np.arange(len(src_lengths))
    keys = (tie_break, src_lengths) if tgt_lengths is None else (tie_break, tgt_lengths, src_lengths)
    order = np.lexsort(keys)
    batches, start, widest = [], 0, 0
    for position, index in enumerate(order):
        width = max(widest, int(longest[index]))
        if position > start and width * (position - start + 1) > batch_tokens:
            batches.append(order[start:position])
            start, width = position, int(longest[index])
        widest = width
    batches.append(order[start:])
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(row) for row in rows)
    padded = np.full((len(rows), width), PAD_ID, dtype=np.int64)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    return torch.from_numpy(padded)


def collate(indices: Sequence[int], src_ids: Sequence[list[int]], tgt_ids: Sequence[list[int]] | None) -> Batch:
    """Pad the sentences at ``indices`` into a ``Batch`` (source + EOS; target BOS/EOS shifted)."""
    src = _pad([src_ids[i] + [EOS_ID] for i in indices])
    tgt_in = tgt_out = None
    n_tgt = 0
    if tgt_ids is not None:
        tgt_in = _pad([[BOS_ID] + tgt_ids[i] for i in indices])
        tgt_out = _pad([tgt_ids[i] + [EOS_ID] for i in indices])
        n_tgt = int((tgt_out != PAD_ID).sum())
    src_mask = src != PAD_ID
    return Batch(src, src_mask, tgt_in, tgt_out, list(map(int, indices)), int(src_mask.sum()), n_tgt)


class TrainingBatches:
    """The token batches of a tokenized parallel corpus, reshuffled each epoch from ``seed + epoch``.

    Deterministic given (seed, epoch), so a resumed run can skip to the batch it stopped at.
    """

    def __init__(self, src_ids: list[list[int]], tgt_ids: list[list[int]], batch_tokens: int, seed: int):
        self.src_ids, self.tgt_ids = src_ids, tgt_ids
        self.src_lengths = np.fromiter((len(s) + 1 for s in src_ids), dtype=np.int64, count=len(src_ids))
        self.tgt_lengths = np.fromiter((len(t) + 1 for t in tgt_ids), dtype=np.int64, count=len(tgt_ids))
        self.batch_tokens, self.seed = batch_tokens, seed

    def plan(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed + epoch)
        return plan_batches(self.src_lengths, self.tgt_lengths, self.batch_tokens, rng)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[Batch]:
        """Yield the batches of ``epoch`` (0-based), skipping the first ``skip`` of them."""
        for indices in self.plan(epoch)[skip:]:
            yield collate(indices, self.src_ids, self.tgt_ids)

    def padding_fraction(self, epoch: int = 0) -> float:
        """Share of padded positions among all positions of an epoch's batches (both sides)."""
        real = padded = 0
        for indices in self.plan(epoch):
            real += int(self.src_lengths[indices].sum() + self.tgt_lengths[indices].sum())
            padded += len(indices) * int(self.src_lengths[indices].max() + self.tgt_lengths[indices].max())
        return 1.0 - real / padded


def decoding_batches(src_ids: Sequence[list[int]], batch_tokens: int) -> Iterator[Batch]:
    """Batches for translation: sorted by source length; ``Batch.indices`` restores input order."""
    lengths = np.fromiter((len(s) + 1 for s in src_ids), dtype=np.int64, count=len(src_ids))
    for indices in plan_batches(lengths, None, batch_tokens, rng=None):
        yield collate(indices, src_ids, None)
