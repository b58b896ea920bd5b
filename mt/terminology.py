"""Training-time terminology (Dinu et al., 2019, "Training Neural Machine Translation to Apply
Terminology Constraints", the "append" method): a source term is followed in the source by the
target term it must become, and the model learns to write what it is shown.

Without it, a glossary can only force a term into the output (``mt.constraints``), and the model
puts it where its own reading of the sentence allows: the shipped model reads "love machine
learning" as 爱学机 ("love learning machines"), so forcing 机器学习 gives 我爱学机器学习. Trained
with annotations, the model also knows where the term goes.

An annotated source is the source's pieces with a marker (``TERM_START``) before each annotated
source term and, after its last piece, the target term's *target* pieces as ids shifted by
``V_src`` (the source vocabulary's size): ``I love ▶ machine learning 〈机器〉 〈学习〉``. The marker
and the target pieces together say which source words the term stands for (what Dinu et al.'s
source factors say). ``embed_source`` (``mt.models.base``) embeds the shifted ids with the target
embedding, so the encoder sees 机器学习 as the decoder writes it, no source vocabulary needs
Chinese pieces, and the model needs no new parameter (the marker is BOS's embedding row, which a
source never used).

Training (``data.terminology``, a ``TermDictionary``; ``training_terms``): in each training pair,
every dictionary term found in the source one of whose targets the reference holds is annotated
with probability ``data.terminology_rate``, and ``data.terminology_substitute`` of those get
another target of the term swapped in, in the source and the reference; every draw comes from a
hash of the pair, so the same pairs are annotated on every run.
Translation: a model trained so (its ``data.terminology`` is set) has every matched glossary term
annotated (``mt.translate.translate_chunk``), and the constraints still make sure the term is written.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

from mt.glossary import WORD, Glossary, GlossaryEntry, TermMatch, keyed, occurrences, read_entries, term_key, unique_targets
from mt.tokenizer import BOS_ID, Tokenizer

WORD_BOUNDARY = "\u2581"  # SentencePiece's ▁
TERM_START = BOS_ID  # opens an annotated source term: a source never holds BOS otherwise (the batcher adds only EOS)
TERM_START_SHOWN = "▶"  # how views show it (source_pieces); this and 〈〉 are glyphs of the plots' CJK font
MAX_DICTIONARY_ENTRIES = 5_000_000
ANNOTATION = ("〈", "〉")  # around an annotation's piece in the pieces a view shows (source_pieces)


def _characters(text: str) -> int:
    """Characters of ``text`` as SentencePiece counts them in its pieces: after NFKC, without spaces."""
    return sum(not character.isspace() for character in unicodedata.normalize("NFKC", text))


def annotate(tokenizer: Tokenizer, sentence: str, src_ids: list[int], matches: Sequence[TermMatch]) -> list[int]:
    """``src_ids``, the pieces of ``sentence``, with each match marked: ``TERM_START`` before the
    piece where its source term starts, and its target term (as target pieces, shifted by
    ``V_src``) after the piece where it ends, so the model sees which source words the target term
    stands for (the part of Dinu et al.'s source factors that says "source term"). Piece
    boundaries are found by counting characters (``_characters``), so the source keeps the pieces
    it has without annotation. Returns ``src_ids`` itself when there is no match."""
    if not matches:
        return src_ids
    ends, count = [], 0
    for piece in tokenizer.src.encode(sentence, out_type=str):  # as written: an unknown piece is "," here, "<unk>" by id
        count += len(piece.replace(WORD_BOUNDARY, ""))
        ends.append(count)

    def piece_at(characters: int) -> int:  # the piece that holds the character after the first ``characters``
        return next((i for i, end in enumerate(ends) if end > characters), len(ends) - 1)

    targets = [_term_pieces(tokenizer, ids) for ids in tokenizer.encode_tgt([match.target for match in matches])]
    before: dict[int, list[int]] = {}
    after: dict[int, list[int]] = {}
    for match, target in zip(matches, targets):
        before.setdefault(piece_at(_characters(sentence[: match.start])), []).append(TERM_START)
        after.setdefault(piece_at(_characters(sentence[: match.end]) - 1), []).extend(
            tokenizer.src_vocab_size + token for token in target)
    annotated = []
    for position, token in enumerate(src_ids):
        annotated.extend(before.get(position, ()))
        annotated.append(token)
        annotated.extend(after.get(position, ()))
    return annotated


def _term_pieces(tokenizer: Tokenizer, ids: list[int]) -> list[int]:
    """A target term's ids without the lone ``▁`` that SentencePiece's dummy prefix may put first
    (it carries no character of the term)."""
    return ids[1:] if ids and tokenizer.tgt.id_to_piece(ids[0]) == WORD_BOUNDARY else ids


def uniform(*parts: str) -> float:
    """A number in [0, 1) drawn from a hash of ``parts``: the same for the same training pair on
    every run, in every process."""
    digest = hashlib.blake2b("\t".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class TermDictionary:
    """Source terms -> the target terms each may have (several, unlike a ``Glossary``): what
    training annotates. ``targets[key]``: a source term's targets, longest first (then in the
    order given), under its key (``mt.glossary.term_key``). Raises ``DataError`` as
    ``mt.glossary.keyed`` does."""

    def __init__(self, entries: Iterable[GlossaryEntry]):
        targets: dict[tuple[str, ...], list[str]] = {}
        for key, entry in map(keyed, entries):
            if entry.target not in targets.setdefault(key, []):
                targets[key].append(entry.target)
        self.targets = {key: sorted(terms, key=len, reverse=True) for key, terms in targets.items()}
        self.longest = max((len(key) for key in self.targets), default=0)

    def __len__(self) -> int:
        return len(self.targets)

    def fingerprint(self) -> str:
        """A SHA-256 of the entries, for cache keys."""
        return hashlib.sha256(json.dumps(sorted(self.targets.items()), ensure_ascii=False).encode()).hexdigest()


def read_term_dictionary(path: Path) -> TermDictionary:
    """A ``TermDictionary`` of a two-column file in a glossary's formats (``mt.glossary.read_entries``),
    in which a source term may come back with other targets, of up to ``MAX_DICTIONARY_ENTRIES``
    rows (a whole dictionary). Raises ``DataError`` naming the file and line."""
    return TermDictionary(read_entries(path, MAX_DICTIONARY_ENTRIES))


def training_terms(dictionary: TermDictionary, source: str, target: str, rate: float, substitute: float
                   ) -> tuple[list[TermMatch], str]:
    """The terms of the training pair ``source``/``target`` to annotate, and the target to train on.

    A dictionary source term found in ``source`` (``mt.glossary.occurrences``) whose target
    ``target`` holds (the longest, where it holds several) is annotated with probability ``rate``.
    Of those, a share ``substitute`` have another target of the same source term put in its place,
    in the annotation and in the training target (Dinu et al.'s annotations mostly repeat what the
    model would write anyway; a swapped one can only be learned from the annotation). Every draw
    comes from a hash of the pair (``uniform``)."""
    def in_reference(key: tuple[str, ...]) -> str | None:
        return next((term for term in dictionary.targets.get(key, ()) if term in target), None)

    terms, trained = [], target
    for match in unique_targets(occurrences(source, in_reference, dictionary.longest)):
        if uniform(source, target, match.target) >= rate or match.target not in trained:
            continue
        others = [term for term in dictionary.targets[term_key(match.text)] if term != match.target and term not in trained]
        if others and uniform(source, target, match.target, "substitute") < substitute:
            other = others[int(uniform(source, target, match.target, "which") * len(others))]
            trained = trained.replace(match.target, other, 1)
            match = dataclasses.replace(match, target=other)
        terms.append(match)
    return terms, trained


def dictionary_terms(dictionary: Path) -> dict[tuple[str, ...], set[str]]:
    """The term pairs of ``dictionary`` (English<TAB>Chinese TSV, e.g. ``scripts/cedict_pairs.py``'s
    output) that a glossary could hold: the English side 4 letters or more, 1-4 words of letters;
    the Chinese side 2 characters or more. Keyed by the English term's case-folded words."""
    targets: dict[tuple[str, ...], set[str]] = collections.defaultdict(set)
    with dictionary.open(encoding="utf-8") as handle:
        for line in handle:
            english, chinese = line.rstrip("\n").split("\t")[:2]
            key = tuple(word.casefold() for word in WORD.findall(english))
            if len(english) >= 4 and len(chinese) >= 2 and 1 <= len(key) <= 4 and english.replace(" ", "").isalpha():
                targets[key].add(chinese)
    return targets


def attested_glossary(dictionary: Path, pairs: Iterable[tuple[str, str]], name: str = "attested glossary") -> Glossary:
    """The entries of ``dictionary_terms`` seen in ``pairs`` (source, target): the English term in
    a source and the Chinese term in that pair's target; an English term seen with several Chinese
    terms keeps the most frequent (ties: the one seen first). The dev glossary of
    ``scripts/bench_glossary.py``, built from dev sets."""
    targets = dictionary_terms(dictionary)
    found: dict[tuple[str, ...], collections.Counter] = collections.defaultdict(collections.Counter)
    for source, reference in pairs:
        words = [word.casefold() for word in WORD.findall(source)]
        for first in range(len(words)):
            for last in range(first + 1, min(first + 4, len(words)) + 1):
                key = tuple(words[first:last])
                for chinese in sorted(targets.get(key, ())):  # sorted: the same glossary in every process
                    if chinese in reference:
                        found[key][chinese] += 1
    return Glossary(GlossaryEntry(" ".join(key), counts.most_common(1)[0][0], name) for key, counts in found.items())


def is_annotation(piece: str) -> bool:
    """Whether a piece of ``source_pieces`` (or a word made of it) is an annotation's: a term's
    opening ``▶`` or a target piece ``〈机器〉``."""
    text = piece.lstrip(WORD_BOUNDARY)
    return text == TERM_START_SHOWN or (len(text) > 2 and text[0] == ANNOTATION[0] and text[-1] == ANNOTATION[1])


def source_pieces(tokenizer: Tokenizer, src_ids: Sequence[int]) -> list[str]:
    """Display pieces of (possibly annotated) source ids: a term's opening as ``▶``, an
    annotation's target pieces in brackets, ``〈机器〉``, so that a view tells them from the words
    the user wrote."""
    size, (opening, closing) = tokenizer.src_vocab_size, ANNOTATION
    if TERM_START not in src_ids and max(src_ids, default=0) < size:  # not annotated: one call for the sentence
        return tokenizer.src.id_to_piece(list(src_ids))

    def shown(token: int) -> str:
        if token == TERM_START:
            return WORD_BOUNDARY + TERM_START_SHOWN
        if token < size:
            return tokenizer.src.id_to_piece(token)
        return f"{WORD_BOUNDARY}{opening}{tokenizer.tgt.id_to_piece(token - size).replace(WORD_BOUNDARY, '')}{closing}"

    return [shown(token) for token in src_ids]
