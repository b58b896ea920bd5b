"""Token-based batches from length-sorted sentences: little padding, a fixed budget of tokens.

Sentences are sorted by length (ties broken at random each epoch), cut into batches whose
padded size ``rows * longest side`` stays within ``batch_tokens``, and the batches are shuffled.
The source gets EOS appended; the target becomes ``BOS y`` (decoder input) and ``y EOS`` (labels).

With shape buckets (``choose_shapes``), every training batch is instead padded to one of a few
fixed ``Shape``s chosen from the corpus' length histogram, so that a compiled training step
(``mt.step``) is built once per shape and reused, and oneDNN's cache of compiled products holds
every product training meets.
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
    ``tgt_in``/``tgt_out``: (B, T) int64 or None when decoding, ``indices``: positions of the
    rows in the original sentence list, ``n_tgt_tokens``: real label tokens (EOS included). A batch
    padded to a ``Shape`` may end in filler rows past ``len(indices)``: an empty source (EOS alone,
    so that attention has a key) and no labels, so they add nothing to the loss or its gradient.
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


@dataclass(frozen=True)
class Shape:
    """A bucket's padded batch: ``rows`` sentences, ``src_len`` source tokens (EOS included) and
    ``tgt_len`` target tokens (BOS or EOS included) each."""

    rows: int
    src_len: int
    tgt_len: int


def _pad(rows: list[list[int]], shape: tuple[int, int] | None = None) -> torch.Tensor:
    """(rows, width) int64, PAD after each row; ``shape`` (rows, width) pads to at least that size."""
    count, width = shape or (0, 0)
    padded = np.full((max(count, len(rows)), max([width] + [len(row) for row in rows])), PAD_ID, dtype=np.int64)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    return torch.from_numpy(padded)


def collate(indices: Sequence[int], src_rows: Sequence[list[int]], tgt_rows: Sequence[list[int]] | None,
            shape: Shape | None = None) -> Batch:
    """Pad sentences into a ``Batch`` (source + EOS; target BOS/EOS shifted). ``src_rows[k]`` (and
    ``tgt_rows[k]``) is the sentence numbered ``indices[k]``. With a ``shape``, pad to it, filler
    rows included (see ``Batch``)."""
    fillers = shape.rows - len(src_rows) if shape else 0
    src = _pad([row + [EOS_ID] for row in src_rows] + [[EOS_ID]] * fillers, shape and (shape.rows, shape.src_len))
    tgt_in = tgt_out = None
    n_tgt = 0
    if tgt_rows is not None:
        tgt_in = _pad([[BOS_ID] + row for row in tgt_rows] + [[BOS_ID]] * fillers, shape and (shape.rows, shape.tgt_len))
        tgt_out = _pad([row + [EOS_ID] for row in tgt_rows], shape and (shape.rows, shape.tgt_len))
        n_tgt = int((tgt_out != PAD_ID).sum())
    src_mask = src != PAD_ID
    return Batch(src, src_mask, tgt_in, tgt_out, list(map(int, indices)), int(src_mask.sum()) - fillers, n_tgt)


def choose_shapes(src_lengths: np.ndarray, tgt_lengths: np.ndarray, batch_tokens: int, count: int,
                  weights: np.ndarray | None = None) -> tuple[list[Shape], np.ndarray]:
    """At most ``count`` batch shapes for sentences of these lengths (EOS/BOS included), and each
    sentence's bucket (N,) int64: the shapes that pad least. A bucket holds the sentences whose
    longer side falls in a range of lengths; its shape is as long as its longest source and its
    longest target, and has ``batch_tokens // longer of the two`` rows (at least 1), so that a batch
    stays within the token budget as ``plan_batches``' do. The ranges minimise the padded positions
    of the corpus (each sentence counted ``weights`` times), found exactly by dynamic programming
    over the distinct lengths."""
    longest = np.maximum(src_lengths, tgt_lengths)
    values, inverse = np.unique(longest, return_inverse=True)
    sentences = np.bincount(inverse, weights=weights, minlength=len(values)).astype(np.float64)
    src_max = np.zeros(len(values), dtype=np.int64)
    tgt_max = np.zeros(len(values), dtype=np.int64)
    np.maximum.at(src_max, inverse, src_lengths)
    np.maximum.at(tgt_max, inverse, tgt_lengths)
    # cost[a, b]: padded positions of a bucket of the lengths values[a..b] (inf where b < a)
    distinct = len(values)
    cost = np.full((distinct, distinct), np.inf)
    for first in range(distinct):
        cost[first, first:] = np.cumsum(sentences[first:]) * (np.maximum.accumulate(src_max[first:])
                                                                + np.maximum.accumulate(tgt_max[first:]))
    best = cost[0].copy()  # best[b]: least cost of values[0..b] in the buckets so far
    starts = [np.zeros(distinct, dtype=np.int64)]  # per bucket count, where the last bucket begins
    for _ in range(1, min(count, distinct)):
        options = np.concatenate([cost[:1], best[:-1, None] + cost[1:]])  # options[a, b]: last bucket a..b
        starts.append(options.argmin(axis=0))
        best = options.min(axis=0)
    ranges, end = [], distinct - 1
    for start_of in reversed(starts):
        start = int(start_of[end])
        ranges.append((start, end))
        if start == 0:
            break
        end = start - 1
    ranges.reverse()
    shapes, bucket_of_value = [], np.zeros(distinct, dtype=np.int64)
    for number, (start, end) in enumerate(ranges):
        src_len, tgt_len = int(src_max[start:end + 1].max()), int(tgt_max[start:end + 1].max())
        shapes.append(Shape(max(1, batch_tokens // max(src_len, tgt_len)), src_len, tgt_len))
        bucket_of_value[start:end + 1] = number
    return shapes, bucket_of_value[inverse]


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
    With ``shapes`` > 0, batches come in at most that many fixed shapes (``choose_shapes``; the
    ``shapes`` attribute lists them): each epoch a bucket's sentences are shuffled and cut into
    batches of its rows, the last one completed by filler rows.
    """

    def __init__(self, corpus: TokenizedCorpus, batch_tokens: int, seed: int, weights: np.ndarray | None = None,
                 shapes: int = 0):
        self.corpus, self.weights = corpus, weights
        self.src_lengths, self.tgt_lengths = corpus.src_lengths + 1, corpus.tgt_lengths + 1  # EOS / BOS
        self.batch_tokens, self.seed = batch_tokens, seed
        self.shapes: list[Shape] = []
        if shapes and len(corpus):
            self.shapes, self.bucket_of = choose_shapes(self.src_lengths, self.tgt_lengths, batch_tokens, shapes, weights)

    def __len__(self) -> int:
        return len(self.corpus)

    def plan(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed + epoch)
        if self.weights is None and not self.shapes:
            return plan_batches(self.src_lengths, self.tgt_lengths, self.batch_tokens, rng)
        draws = np.arange(len(self))
        if self.weights is not None:
            whole = np.floor(self.weights)
            draws = np.repeat(draws, (whole + (rng.random(len(self.weights)) < self.weights - whole)).astype(np.int64))
        if self.shapes:
            return self._plan_shapes(draws, rng)
        return [draws[batch] for batch in plan_batches(self.src_lengths[draws], self.tgt_lengths[draws], self.batch_tokens, rng)]

    def _plan_shapes(self, draws: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        batches = []
        for number, shape in enumerate(self.shapes):
            members = rng.permutation(draws[self.bucket_of[draws] == number])
            batches += [members[start:start + shape.rows] for start in range(0, len(members), shape.rows)]
        rng.shuffle(batches)
        return batches

    def shape(self, indices: np.ndarray) -> Shape | None:
        """The shape the batch of these sentences is padded to (None without shape buckets)."""
        return self.shapes[self.bucket_of[indices[0]]] if self.shapes else None

    def batch(self, indices: np.ndarray) -> Batch:
        """The batch of the sentences ``indices`` (one entry of ``plan``), padded to its shape."""
        return collate(indices, *self.corpus.rows(indices), shape=self.shape(indices))

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[Batch]:
        """Yield the batches of ``epoch`` (0-based), skipping the first ``skip`` of them."""
        for indices in self.plan(epoch)[skip:]:
            yield self.batch(indices)

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
            yield Update([self.batch(indices) for indices in own], tokens)

    def updates_per_epoch(self, epoch: int, accum_steps: int = 1, world_size: int = 1) -> int:
        return len(self.plan(epoch)) // (accum_steps * world_size)

    def padding_fraction(self, epoch: int = 0) -> float:
        """Share of padded positions among all positions of an epoch's batches (both sides; filler
        rows of shape buckets count as padding)."""
        real = padded = 0
        for indices in self.plan(epoch):
            real += int(self.src_lengths[indices].sum() + self.tgt_lengths[indices].sum())
            shape = self.shape(indices)
            padded += (shape.rows * (shape.src_len + shape.tgt_len) if shape else
                       len(indices) * int(self.src_lengths[indices].max() + self.tgt_lengths[indices].max()))
        return 1.0 - real / padded


def decoding_batches(src_ids: Sequence[list[int]], batch_tokens: int) -> Iterator[Batch]:
    """Batches for translation: sorted by source length; ``Batch.indices`` restores input order."""
    lengths = np.fromiter((len(s) + 1 for s in src_ids), dtype=np.int64, count=len(src_ids))
    for indices in plan_batches(lengths, None, batch_tokens, rng=None):
        yield collate(indices, [src_ids[i] for i in indices], None)
