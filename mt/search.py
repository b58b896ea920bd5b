"""Decoding over the ``EncoderDecoder`` interface: one loop, three ways to choose the next token.

``decode`` runs the steps for every strategy; what differs is a ``Selection`` (after
OpenNMT-py's ``DecodeStrategy``): ``Greedy`` takes each hypothesis' most probable token,
``Sampling`` draws it (temperature, top-k, top-p), and ``Beam`` keeps the K best extensions of
each sentence's K hypotheses (Wu et al., 2016, length penalty). ``no_repeat_ngram_size`` applies to
all three.

The loop runs all sentences of a batch (and all their hypotheses) as one tensor. A sentence that
is finished leaves the batch; with one hypothesis per sentence (greedy, sampling) it leaves only
once an eighth of the batch has finished, since the rows of a step otherwise never move, and
every removal copies the whole decoder state. Python loops run per step and per finished
hypothesis, never per token of the batch or beam.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mt.config import DecodeConfig
from mt.models.base import EncoderDecoder
from mt.tokenizer import BOS_ID, EOS_ID

COMPACT_EVERY = 8  # one-hypothesis strategies drop finished sentences once they are 1/8 of the batch


@dataclass
class Hypothesis:
    """One output: ``tokens`` without BOS/EOS, its ``score`` (summed log-probability, divided by the
    length penalty in beam search) and, if asked for, the attention the decoder used to write
    each token, (T, L, H, S): T = ``len(tokens) + 1`` when EOS was produced (its row last), else
    ``len(tokens)``; S is the width of the source batch. An incomplete hypothesis ranks below
    every complete one."""

    tokens: list[int]
    score: float
    attention: torch.Tensor | None = None
    complete: bool = True  # False: it ended at the length limit without what the selection requires (a glossary term)


def length_penalty(length: int, alpha: float) -> float:
    """lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al., 2016, eq. 14). ``length`` counts EOS."""
    return ((5.0 + length) / 6.0) ** alpha


def best_extensions(log_probs: torch.Tensor, scores: torch.Tensor, k: int, block: int = 64
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k best extensions of each group's hypotheses, exactly, best first: for log-probs
    (G * W, V) of G groups of W hypotheses and their scores so far (G, W), the k largest
    ``scores[g, w] + log_probs[g * W + w, v]`` of each group, as (values (G, k), hypothesis w
    (G, k), token v (G, k)); what ``log_probs.add_(scores).view(G, W * V).topk(k)`` gives,
    without writing the (G * W, V) sum.

    The k best entries of a group lie in the k blocks (of ``block`` tokens of one hypothesis)
    with the highest maxima, and a block's maximum plus its hypothesis' score is the maximum of
    the sums (rounding is monotonic). On CPU torch's topk (and max with indices) is not
    vectorised but a plain max is, so this takes every block's maximum, the k best blocks of each
    group, and the k best of their k * block sums. In microbenchmarks on 2 AVX2 cores, fp32:
    (315, 8000), k = 1 took 0.43 ms instead of 1.63 ms for topk (1.24 ms for ``max``); (63, 5 *
    8000), k = 10 took 0.59 ms instead of 1.74 ms. A group needs k finite entries.
    """
    groups, width = scores.shape
    vocab = log_probs.size(1)
    if log_probs.is_cuda or vocab <= k * block:  # a group's k best are among its hypotheses' own k best
        top, tokens = log_probs.topk(min(k, vocab), dim=-1)  # (G * W, k')
        values, index = (top + scores.view(-1, 1)).view(groups, -1).topk(k, dim=-1)
        return values, index // top.size(1), tokens.view(groups, -1).gather(1, index)
    if vocab % block:
        log_probs = F.pad(log_probs, (0, block - vocab % block), value=float("-inf"))
    blocks = log_probs.view(groups * width, -1, block)  # (G * W, blocks per hypothesis, block)
    per_row = blocks.size(1)
    maxima = blocks.amax(dim=-1).add_(scores.view(-1, 1)).view(groups, width * per_row)
    best = maxima.topk(k, dim=-1).indices  # (G, k): hypothesis * per_row + block
    hypothesis = best // per_row
    rows = torch.arange(groups, device=best.device)[:, None] * width + hypothesis
    sums = blocks[rows, best % per_row] + scores.gather(1, hypothesis)[..., None]  # (G, k, block)
    values, within = sums.view(groups, k * block).topk(k, dim=-1)
    chosen = best.gather(1, within // block)
    return values, chosen // per_row, (chosen % per_row) * block + within % block


def max_output_lengths(src_mask: torch.Tensor, config: DecodeConfig) -> torch.Tensor:
    """Per-sentence cap on output tokens (EOS included): ratio * source length + offset, at most ``max_length``."""
    src_lengths = src_mask.sum(dim=1).float()
    return (src_lengths * config.max_length_ratio + config.max_length_offset).long().clamp(1, config.max_length)


def ban_repeated_ngrams(log_probs: torch.Tensor, history: torch.Tensor, n: int) -> None:
    """Set to -inf, in place, the log-probability (R, V) of every token that would complete an
    n-gram already in its row of ``history`` (R, t) (fairseq's and OpenNMT-py's
    ``no_repeat_ngram_size``)."""
    length = history.size(1)
    if length < n - 1 or length == 0:
        return
    if n == 1:
        log_probs.scatter_(1, history, float("-inf"))
        return
    prefix = history[:, length - n + 1 :]  # (R, n-1): the n-gram each row would complete
    windows = history.unfold(1, n - 1, 1)[:, : length - n + 1]  # (R, t-n+1, n-1), each followed by a token
    rows, starts = (windows == prefix[:, None]).all(dim=-1).nonzero(as_tuple=True)
    log_probs[rows, history[rows, starts + n - 1]] = float("-inf")


class Selection:
    """How the next tokens are chosen, the part of decoding that differs between strategies.

    ``select`` gets the step's log-probabilities (G * W, V) of G groups (sentences, or copies of
    a sentence) of W hypotheses each, and their scores so far (G, W); it returns C >= ``width``
    candidates per group, best first, as (scores (G, C), the hypothesis 0..W-1 each extends
    (G, C), its token (G, C)). ``decode`` keeps the ``width`` best that do not end and finishes a
    group once ``width`` of its candidates ranked below ``width`` have ended; it then tells
    ``advance`` which candidates it kept, for a selection that keeps state per hypothesis.
    """

    width = 1
    length_normalized = False  # divide final scores by the length penalty

    def select(self, log_probs: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def advance(self, groups: torch.Tensor | None, keep: torch.Tensor) -> None:
        """The candidates of the last ``select`` that go on: ``keep`` (G', width) indexes the
        candidates of the groups ``groups`` (G',) (None: every group, in place)."""

    def complete(self) -> torch.Tensor | None:
        """Which candidates of the last ``select`` (G, C) may end as they are; None: all."""
        return None


class Greedy(Selection):
    """The most probable next token of every hypothesis."""

    def select(self, log_probs, scores):
        return best_extensions(log_probs, scores, 1)


class Sampling(Selection):
    """A next token drawn from softmax(log p / ``temperature``), restricted to the ``top_k`` most
    probable tokens (0 = all) and to the smallest set whose probability reaches ``top_p``
    (nucleus sampling, Holtzman et al., 2020, section 3.1; 1.0 = all). Scores are the model's own
    log-probabilities of the drawn tokens. ``generator`` makes the draws reproducible."""

    def __init__(self, temperature: float, top_k: int, top_p: float, generator: torch.Generator):
        self.temperature, self.top_k, self.top_p, self.generator = temperature, top_k, top_p, generator

    def select(self, log_probs, scores):
        logits = log_probs / self.temperature
        if 0 < self.top_k < logits.size(-1):
            kth = logits.topk(self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = logits.sort(dim=-1, descending=True)
            probabilities = sorted_logits.softmax(dim=-1)
            outside = probabilities.cumsum(dim=-1) - probabilities >= self.top_p  # the most probable always stays
            logits = logits.scatter(1, order, sorted_logits.masked_fill(outside, float("-inf")))
        words = torch.multinomial(logits.float().softmax(dim=-1), 1, generator=self.generator)
        return scores + log_probs.gather(1, words), torch.zeros_like(words), words


class Beam(Selection):
    """The 2K best extensions of each sentence's K hypotheses (K = ``width``): the ones among the
    best K that end are finished, the K best that do not end continue."""

    length_normalized = True

    def __init__(self, width: int):
        self.width = width

    def select(self, log_probs, scores):
        return best_extensions(log_probs, scores, 2 * self.width)


def selection_for(config: DecodeConfig, device: torch.device) -> Selection:
    """The ``Selection`` that ``config`` asks for: ``Sampling`` when ``config.sampling``, else
    ``Greedy`` for beam size 1 and ``Beam`` above."""
    if config.sampling:
        generator = torch.Generator(device=device).manual_seed(config.seed)
        return Sampling(config.temperature, config.top_k, config.top_p, generator)
    return Greedy() if config.beam_size == 1 else Beam(config.beam_size)


def _append(history: torch.Tensor | None, attention: torch.Tensor) -> torch.Tensor:
    """(N, t, L, H, S) history + (N, L, H, S) this step -> (N, t+1, L, H, S)."""
    attention = attention[:, None]
    return attention if history is None else torch.cat([history, attention], dim=1)


@torch.no_grad()
def decode(
    model: EncoderDecoder, src: torch.Tensor, src_mask: torch.Tensor, config: DecodeConfig, selection: Selection,
    return_attention: bool = False, copies: int = 1,
) -> list[list[Hypothesis]]:
    """Decode the sentences ``src``/``src_mask`` (B, S) with ``selection``; returns
    ``config.n_best`` hypotheses per sentence (at most ``width`` * ``copies``), best first.

    Each sentence runs as ``copies`` independent groups (sampling draws n samples that way) of
    ``selection.width`` hypotheses; a group is done when ``width`` of its hypotheses have ended
    (EOS, or the sentence's maximum length, ``max_output_lengths``).
    """
    batch, device = src.size(0), src.device
    state = model.init_state(model.encode(src, src_mask), src_mask)
    if copies > 1:
        rows = torch.arange(batch, device=device).repeat_interleave(copies)
        state = state.reorder(rows, rows, beams=1)
    groups = batch * copies
    group_ids = torch.arange(groups)  # the group of each alive row of ``scores``, cpu
    max_lengths = max_output_lengths(src_mask, config).cpu().repeat_interleave(copies)
    scores = torch.zeros(groups, 1, device=device)  # (alive groups, hypotheses of each): 1 at the first step
    tokens = torch.full((groups,), BOS_ID, dtype=torch.long, device=device)
    history = tokens.new_empty(groups, 0)
    attention_history = None
    results: list[list[Hypothesis]] = [[] for _ in range(groups)]
    finished_counts = torch.zeros(groups, dtype=torch.long)  # per alive group, cpu
    dead = torch.zeros(groups, dtype=torch.bool)  # done, but left in the batch until the next compaction
    width = selection.width
    step = 0
    while len(group_ids):
        alive, current_width = scores.shape
        log_probs, state, attention = model.decode_step(tokens, state)
        if config.no_repeat_ngram_size:
            ban_repeated_ngrams(log_probs, history, config.no_repeat_ngram_size)
        top_scores, origin, words = selection.select(log_probs, scores)
        rank = torch.arange(words.size(1), device=device)
        step += 1
        at_max = (step >= max_lengths).to(device)
        ends = (words == EOS_ID) | at_max[:, None]
        rows = torch.arange(alive, device=device)[:, None] * current_width + origin  # (alive, C) rows of the state
        if return_attention:
            step_history = _append(attention_history, attention)
        finishing = ends & (rank < width) & ~dead.to(device)[:, None]
        finished = finishing.nonzero().tolist()
        complete = selection.complete() if finished else None
        for i, j in finished:
            group = int(group_ids[i])
            if len(results[group]) >= width:
                continue
            row, word = int(rows[i, j]), int(words[i, j])
            output = history[row].tolist() + ([] if word == EOS_ID else [word])
            score = float(top_scores[i, j])
            if selection.length_normalized:
                score /= length_penalty(step, config.length_penalty)
            weights = step_history[row].float().cpu() if return_attention else None
            results[group].append(Hypothesis(output, score, weights, complete is None or bool(complete[i, j])))
        finished_counts = finished_counts + finishing.sum(dim=1).cpu()
        done = (finished_counts >= width) | at_max.cpu() | dead
        if done.all():
            break
        # The ``width`` best candidates that do not end continue (EOS takes at most ``width`` of the places).
        if words.size(1) == 1:  # one candidate per group (greedy, sampling): it is the one kept
            keep = torch.zeros_like(words)
        else:
            keep = torch.where(ends, rank + words.size(1), rank).argsort(dim=1)[:, :width]
        if width == 1 and int(done.sum()) * COMPACT_EVERY < alive:
            dead = done  # every row stays where it is: no state to move
            tokens, scores = words.gather(1, keep).flatten(), top_scores.gather(1, keep)
            selection.advance(None, keep)
            history = torch.cat([history, tokens[:, None]], dim=1)
            if return_attention:
                attention_history = step_history
            continue
        kept = (~done).nonzero().flatten()
        kept_device = kept.to(device)
        keep = keep[kept_device]
        selection.advance(kept_device, keep)
        next_rows = rows[kept_device].gather(1, keep).flatten()
        tokens = words[kept_device].gather(1, keep).flatten()
        scores = top_scores[kept_device].gather(1, keep)
        history = torch.cat([history[next_rows], tokens[:, None]], dim=1)
        if return_attention:
            attention_history = step_history[next_rows]
        # the static tensors (one row per group) change only when groups leave
        state = state.reorder(next_rows, kept_device if len(kept) < alive else None, width)
        group_ids, max_lengths, finished_counts, dead = group_ids[kept], max_lengths[kept], finished_counts[kept], dead[kept]
    return [sorted((h for group in range(sentence * copies, (sentence + 1) * copies) for h in results[group]),
                   key=lambda h: (h.complete, h.score), reverse=True)[: config.n_best] for sentence in range(batch)]


def search(
    model: EncoderDecoder, src: torch.Tensor, src_mask: torch.Tensor, config: DecodeConfig, return_attention: bool = False,
    selection: Selection | None = None,
) -> list[list[Hypothesis]]:
    """Decode as ``config`` says (``selection_for``): greedy, beam, or ``config.n_best`` samples per
    sentence; or with ``selection`` (one group per sentence), e.g. a ``ConstrainedBeam``."""
    copies = config.n_best if config.sampling else 1
    return decode(model, src, src_mask, config, selection or selection_for(config, src.device), return_attention, copies)


def greedy_search(model: EncoderDecoder, src: torch.Tensor, src_mask: torch.Tensor, config: DecodeConfig,
                  return_attention: bool = False) -> list[list[Hypothesis]]:
    """The most probable next token at every step; one hypothesis per sentence (``decode`` with ``Greedy``)."""
    return decode(model, src, src_mask, config, Greedy(), return_attention)


def beam_search(model: EncoderDecoder, src: torch.Tensor, src_mask: torch.Tensor, config: DecodeConfig,
                return_attention: bool = False) -> list[list[Hypothesis]]:
    """Beam search of width ``config.beam_size`` with the length penalty of Wu et al. (2016): a
    sentence is done when it has K finished hypotheses or reaches its maximum length; returns
    ``config.n_best`` hypotheses per sentence ranked by score / lp(length)."""
    return decode(model, src, src_mask, config, Beam(config.beam_size), return_attention)
