"""Lexically constrained beam search: every target term of a sentence appears in its translation.

``ConstrainedBeam`` is a ``mt.search.Selection``, so constrained decoding runs in the one
``mt.search.decode`` loop. It is dynamic beam allocation (Post & Vilar, 2018, section 3): the
candidates of a step are each sentence's 2K best extensions, each hypothesis' best token, and
for each hypothesis and each term it has not yet produced the best token that advances that term;
they are grouped in banks by how many characters of the terms they have produced, and the K
places of the beam go to the banks in turn, best candidate of the fullest bank first. Taking
them in turn is the vectorised form of Hu et al. (2019, section 4): every candidate's rank within
its bank is computed for the whole batch at once. A hypothesis that still lacks a term cannot end
(its EOS is banned) until the sentence's length limit.

Subwords: a term may come out in other pieces than it is encoded in alone (``▁机器`` + ``学习`` or
``机`` + ``器学习``), so progress is not counted in pieces. It is counted in characters of the
output text, by a Knuth-Morris-Pratt automaton per term run over each piece's text
(``TermAutomaton``): a term is met when the output text contains it, however it was cut.
A sentence without a term decodes exactly as ``Beam`` decodes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from mt.search import Beam, best_extensions
from mt.tokenizer import EOS_ID, Tokenizer

WORD_BOUNDARY = "\u2581"  # SentencePiece's ▁, a space in the detokenized text
NOT_TEXT = "\x00"  # the text of BOS/EOS/PAD/UNK: no term contains it, so it breaks any partial match


class TargetVocabulary:
    """``texts[v]``: the text target piece v adds to an output (``▁`` -> space; ``NOT_TEXT`` for
    BOS/EOS/PAD/UNK), and which pieces contain each character, so that a term's automaton looks
    only at the pieces that can affect it."""

    def __init__(self, texts: Sequence[str]):
        self.texts, self.size = list(texts), len(texts)
        self.ids = {text: token for token, text in enumerate(self.texts)}
        self.containing: dict[str, list[int]] = {}
        for token, text in enumerate(self.texts):
            for character in set(text):
                self.containing.setdefault(character, []).append(token)

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> "TargetVocabulary":
        """The target side of ``tokenizer``."""
        processor = tokenizer.tgt
        special = [processor.is_control(v) or processor.is_unknown(v) or processor.is_unused(v)
                   for v in range(processor.get_piece_size())]
        return cls([NOT_TEXT if special[v] else processor.id_to_piece(v).replace(WORD_BOUNDARY, " ")
                    for v in range(len(special))])


def _failure(term: str) -> list[int]:
    """KMP failure function: for each prefix term[:i+1], the length of its longest proper border."""
    failure, border = [0] * len(term), 0
    for i in range(1, len(term)):
        while border and term[i] != term[border]:
            border = failure[border - 1]
        if term[i] == term[border]:
            border += 1
        failure[i] = border
    return failure


@dataclass
class TermAutomaton:
    """A target term's progress automaton over the target pieces.

    ``table`` (n, V) int16, n = ``len(term)`` characters: ``table[q, v]`` is how many characters
    of the term an output has matched after piece v, if before it its longest suffix that starts
    the term had q characters; n when the piece completes the term (anywhere inside the piece).
    ``advancing`` (n, A) int64: for each state q the pieces v with ``table[q, v] > q``, padded
    with -1. Raises ``ValueError`` for an empty term.
    """

    term: str
    table: torch.Tensor
    advancing: torch.Tensor

    @classmethod
    def build(cls, term: str, vocabulary: TargetVocabulary) -> "TermAutomaton":
        if not term:
            raise ValueError("an empty term has no automaton")
        length, failure = len(term), _failure(term)

        def run(state: int, text: str) -> int:
            for character in text:
                while state and term[state] != character:
                    state = failure[state - 1]
                if term[state] == character:
                    state += 1
                if state == length:
                    return length
            return state

        # Only a piece that holds the term's first character, or that is a piece of the term, can
        # leave a state above 0 (any other piece's characters cannot start a match).
        candidates = set(vocabulary.containing.get(term[0], []))
        candidates.update(vocabulary.ids[term[i:j]] for i in range(length) for j in range(i + 1, length + 1)
                          if term[i:j] in vocabulary.ids)
        table = torch.zeros(length, vocabulary.size, dtype=torch.int16)  # a term's length fits; a quarter of int64's memory
        advancing: list[list[int]] = [[] for _ in range(length)]
        for token in sorted(candidates):
            text = vocabulary.texts[token]
            for state in range(length):
                after = run(state, text)
                table[state, token] = after
                if after > state:
                    advancing[state].append(token)
        width = max(len(tokens) for tokens in advancing)
        padded = torch.full((length, max(width, 1)), -1, dtype=torch.long)
        for state, tokens in enumerate(advancing):
            padded[state, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        return cls(term, table, padded)


class ConstrainedBeam(Beam):
    """Beam search of width K in which sentence b's output must contain each of ``terms[b]``
    (its ``TermAutomaton``s; an empty list leaves the sentence unconstrained). For the batch of
    ``decode``: one group per sentence (no copies).

    State, per group g, hypothesis w and term slot c (C = most terms of a sentence):
    ``progress`` (G, W, C) characters matched, equal to the term's length once met (and from
    then on). Unused slots have length 0, so they are met from the start.
    """

    def __init__(self, width: int, terms: Sequence[Sequence[TermAutomaton]], device: torch.device):
        super().__init__(width)
        self.length_normalized = width > 1  # at width 1 a sentence without terms scores as greedy search does
        automata = list({id(a): a for sentence in terms for a in sentence}.values())
        offsets, offset = {}, 0
        for automaton in automata:
            offsets[id(automaton)] = offset
            offset += len(automaton.term)
        slots = max(1, max(len(sentence) for sentence in terms))
        base = torch.zeros(len(terms), slots, dtype=torch.long)
        length = torch.zeros(len(terms), slots, dtype=torch.long)
        for group, sentence in enumerate(terms):
            for slot, automaton in enumerate(sentence):
                base[group, slot], length[group, slot] = offsets[id(automaton)], len(automaton.term)
        self.vocab = automata[0].table.size(1) if automata else 0
        advancing_width = max((a.advancing.size(1) for a in automata), default=1)
        self.table = torch.cat([a.table for a in automata]).to(device) if automata else None
        self.advancing = torch.cat([torch.nn.functional.pad(a.advancing, (0, advancing_width - a.advancing.size(1)), value=-1)
                                    for a in automata]).to(device) if automata else None
        self.base, self.length = base.to(device), length.to(device)
        self.progress = torch.zeros(len(terms), 1, slots, dtype=torch.long, device=device)
        self.candidate_progress: torch.Tensor | None = None

    def _lookup(self, progress: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Progress (G, N, C) after appending ``tokens`` (G, N) to hypotheses whose progress was ``progress``."""
        met = progress >= self.length[:, None]
        row = self.base[:, None] + torch.where(met, 0, progress)
        after = self.table.view(-1)[row * self.vocab + tokens[..., None]].long()
        return torch.where(met, progress, after)

    def select(self, log_probs, scores):
        groups, width = scores.shape
        vocab = log_probs.size(1)
        constrained = (self.length > 0).any(dim=1)  # (G,)
        if self.table is None or not bool(constrained.any()):
            values, origin, tokens = best_extensions(log_probs, scores, 2 * self.width)
            self.candidate_progress = self.progress.new_zeros(groups, values.size(1), self.length.size(1))
            return values, origin, tokens
        unmet = self.progress < self.length[:, None]  # (G, W, C)
        lp = log_probs.view(groups, width, vocab)
        lp[..., EOS_ID] = lp[..., EOS_ID].masked_fill(unmet.any(dim=2), float("-inf"))  # lacking a term: no end yet
        values, origin, tokens = best_extensions(log_probs, scores, 2 * self.width)
        hypotheses = torch.arange(width, device=scores.device).expand(groups, width)
        # each hypothesis' own best token (G, W), by best_extensions' block maxima (torch's max is slow on CPU)
        own_values, _, own_tokens = best_extensions(log_probs, scores.reshape(-1, 1), 1)
        own_values, own_tokens = own_values.view(groups, width), own_tokens.view(groups, width)
        # each hypothesis' best token that advances each term it lacks (G, W, C)
        row = self.base[:, None] + torch.where(unmet, self.progress, 0)
        advancing = self.advancing[row]  # (G, W, C, A)
        term_lp = lp.gather(2, advancing.clamp(min=0).flatten(2)).view(advancing.shape)
        term_lp = term_lp.masked_fill((advancing < 0) | ~unmet[..., None], float("-inf"))
        term_values, choice = term_lp.max(dim=-1)
        term_tokens = advancing.gather(3, choice[..., None]).squeeze(3).clamp(min=0)
        slots = unmet.size(2)
        all_values = torch.cat([values, own_values, (scores[..., None] + term_values).flatten(1)], dim=1)
        all_origin = torch.cat([origin, hypotheses, hypotheses[..., None].expand(-1, -1, slots).flatten(1)], dim=1)
        all_tokens = torch.cat([tokens, own_tokens, term_tokens.flatten(1)], dim=1)
        # unconstrained groups keep Beam's candidates, in Beam's order, ahead of unusable extras
        extra = torch.arange(all_values.size(1), device=scores.device) >= values.size(1)
        all_values = all_values.masked_fill(~constrained[:, None] & extra, float("-inf"))
        previous = self.progress.gather(1, all_origin[..., None].expand(-1, -1, slots))
        progress = self._lookup(previous, all_tokens)  # (G, N, C)
        order = self._allocate(all_values, all_origin * vocab + all_tokens, progress.sum(dim=2), constrained)
        self.candidate_progress = progress.gather(1, order[..., None].expand(-1, -1, slots))
        return all_values.gather(1, order), all_origin.gather(1, order), all_tokens.gather(1, order)

    @staticmethod
    def _allocate(values: torch.Tensor, identity: torch.Tensor, progress: torch.Tensor, constrained: torch.Tensor
                  ) -> torch.Tensor:
        """The order (G, N) in which candidates take the beam's places: banks by ``progress`` (G, N)
        in turn, fullest first, each bank's best first (Post & Vilar's allocation, Hu et al.'s
        vectorised form); a candidate that repeats an earlier one's ``identity`` (hypothesis,
        token), or scores -inf, goes last. Unconstrained groups keep their order."""
        count = values.size(1)
        earlier = torch.ones(count, count, dtype=torch.bool, device=values.device).tril(-1)  # [j, i]: i before j
        duplicate = ((identity[:, :, None] == identity[:, None, :]) & earlier).any(dim=2)
        usable = ~duplicate & torch.isfinite(values)
        better = (values[:, None, :] > values[:, :, None]) | ((values[:, None, :] == values[:, :, None]) & earlier)
        same_bank = progress[:, None, :] == progress[:, :, None]
        rank = (better & same_bank & usable[:, None, :]).sum(dim=2)  # (G, N): rank within its bank
        banks = int(progress.max()) + 1
        key = rank * banks + (banks - 1 - progress)
        key = torch.where(usable, key, count * banks + torch.arange(count, device=values.device))
        key = torch.where(constrained[:, None], key, torch.arange(count, device=values.device))
        return key.argsort(dim=1, stable=True)

    def complete(self):
        return (self.candidate_progress >= self.length[:, None]).all(dim=2)

    def advance(self, groups, keep):
        progress = self.candidate_progress if groups is None else self.candidate_progress[groups]
        self.progress = progress.gather(1, keep[..., None].expand(-1, -1, progress.size(2)))
        if groups is not None:
            self.base, self.length = self.base[groups], self.length[groups]
