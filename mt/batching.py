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

from mt.store import TokenizedCorpus
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


def collate(indices: Sequence[int], src_rows: Sequence[list[int]], tgt_rows: Sequence[list[int]] | None) -> Batch:
    """Pad sentences into a ``Batch`` (source + EOS; target BOS/EOS shifted). ``src_rows[k]`` (and
    ``tgt_rows[k]``) is the sentence numbered ``indices[k]``."""
    src = _pad([row + [EOS_ID] for row in src_rows])
    tgt_in = tgt_out = None
    n_tgt = 0
    if tgt_rows is not None:
        tgt_in = _pad([[BOS_ID] + row for row in tgt_rows])
        tgt_out = _pad([row + [EOS_ID] for row in tgt_rows])
        n_tgt = int((tgt_out != PAD_ID).sum())
    src_mask = src != PAD_ID
    return Batch(src, src_mask, tgt_in, tgt_out, list(map(int, indices)), int(src_mask.sum()), n_tgt)


@dataclass
class Update:
    """The batches of one optimizer update that this process computes (``accum_steps`` of them),
    and the label tokens of the whole update, over every process: the loss is divided by it."""

    batches: list[Batch]
    n_tgt_tokens: int

    @classmethod
    def of(cls, batch: Batch) -> "Update":
        """An update of one batch (one process, no accumulation)."""
        return cls([batch], batch.n_tgt_tokens)


class TrainingBatches:
    """The token batches of a tokenized parallel corpus, reshuffled each epoch from ``seed + epoch``.

    ``weights`` (N,) float, one per pair, oversample or undersample pairs: an epoch draws pair i
    ``floor(w_i)`` times, and once more with probability ``w_i - floor(w_i)`` (a new draw every
    epoch). Deterministic given (seed, epoch), so a resumed run can skip to the batch it stopped
    at, and every process of a distributed run plans the same batches and takes its own share.
    """

    def __init__(self, corpus: TokenizedCorpus, batch_tokens: int, seed: int, weights: np.ndarray | None = None):
        self.corpus, self.weights = corpus, weights
        self.src_lengths, self.tgt_lengths = corpus.src_lengths + 1, corpus.tgt_lengths + 1  # EOS / BOS
        self.batch_tokens, self.seed = batch_tokens, seed

    def __len__(self) -> int:
        return len(self.corpus)

    def plan(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed + epoch)
        if self.weights is None:
            return plan_batches(self.src_lengths, self.tgt_lengths, self.batch_tokens, rng)
        whole = np.floor(self.weights)
        draws = np.repeat(np.arange(len(self.weights)), (whole + (rng.random(len(self.weights)) < self.weights - whole)).astype(np.int64))
        return [draws[batch] for batch in plan_batches(self.src_lengths[draws], self.tgt_lengths[draws], self.batch_tokens, rng)]

    def _collate(self, indices: np.ndarray) -> Batch:
        return collate(indices, *self.corpus.rows(indices))

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[Batch]:
        """Yield the batches of ``epoch`` (0-based), skipping the first ``skip`` of them."""
        for indices in self.plan(epoch)[skip:]:
            yield self._collate(indices)

    def updates(self, epoch: int, skip: int = 0, accum_steps: int = 1, world_size: int = 1, rank: int = 0) -> Iterator[Update]:
        """Yield the updates of ``epoch`` for process ``rank`` of ``world_size``, after the first
        ``skip`` batches. Each update takes ``accum_steps * world_size`` consecutive batches of the
        plan; process ``rank`` computes the ``rank``-th run of ``accum_steps`` of them. The few
        batches left over at the end of an epoch are not used (none with one process and no
        accumulation), so every process makes the same number of updates."""
        group = accum_steps * world_size
        plan = self.plan(epoch)
        for start in range(skip, len(plan) - group + 1, group):
            members = plan[start: start + group]
            own = members[rank * accum_steps: (rank + 1) * accum_steps]
            tokens = int(sum(self.tgt_lengths[indices].sum() for indices in members))
            yield Update([self._collate(indices) for indices in own], tokens)

    def updates_per_epoch(self, epoch: int, accum_steps: int = 1, world_size: int = 1) -> int:
        return len(self.plan(epoch)) // (accum_steps * world_size)

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
        yield collate(indices, [src_ids[i] for i in indices], None)
