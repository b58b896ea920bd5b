"""Glossaries: source term -> target term, read from a file or a request, matched in source text.

A glossary is what DeepL, Google and Amazon Translate accept: two columns, source term and target
term, as TSV (a ``.tsv`` or ``.txt`` file) or CSV (``.csv``), UTF-8, with an optional header row
of language codes (``en<TAB>zh``). ``Glossary.match`` finds the entries that occur in a sentence:
case-insensitive, at word boundaries, the longest entry first, no two matches overlapping.
Decoding then makes every matched target term appear in the output (``mt.constraints``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from mt.data import check_regular_file, clean_text
from mt.errors import DataError

LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")  # en, zh, zh-CN, zh_Hans, pt-BR
WORD = re.compile(r"\w+|[^\w\s]")  # the units a term must start and end on: words and single symbols
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class GlossaryEntry:
    """One line of a glossary: ``source`` term -> ``target`` term; ``origin`` says where it was
    written ("glossary.tsv, line 3"), for error messages."""

    source: str
    target: str
    origin: str = ""


@dataclass(frozen=True)
class TermMatch:
    """An entry found in a sentence: its characters ``start:end`` of the sentence (as the user
    wrote them, ``text``) and the ``target`` term the translation must contain."""

    start: int
    end: int
    text: str
    target: str


def _words(text: str) -> list[re.Match]:
    return list(WORD.finditer(text))


def term_key(text: str) -> tuple[str, ...]:
    """A term's words, case-folded: what ``Glossary`` keys its entries by."""
    return tuple(match.group().casefold() for match in _words(text))


def keyed(entry: GlossaryEntry) -> tuple[tuple[str, ...], GlossaryEntry]:
    """``entry`` with its terms cleaned (``mt.data.clean_text``), and its key (``term_key``).
    Raises ``DataError`` naming the entry's origin for an empty term on either side or a source
    term without a word."""
    source, target = clean_text(entry.source), clean_text(entry.target)
    if not source or not target:
        raise DataError(f"{entry.origin}: a glossary entry needs a source term and a target term, "
                        f"got {entry.source!r} -> {entry.target!r}")
    key = term_key(source)
    if not key:
        raise DataError(f"{entry.origin}: the source term {entry.source!r} has no word in it")
    return key, GlossaryEntry(source, target, entry.origin)


class Glossary:
    """Entries keyed by their source term's words, case-folded (``"Machine  learning"`` and
    ``"machine learning"`` are one key). Raises ``DataError`` for an empty term on either side, a
    source term without a word, or one source term given two different targets (naming both
    places)."""

    def __init__(self, entries: Iterable[GlossaryEntry]):
        self.entries: dict[tuple[str, ...], GlossaryEntry] = {}
        for key, entry in map(keyed, entries):
            earlier = self.entries.get(key)
            if earlier and earlier.target != entry.target:
                raise DataError(f"{entry.origin}: {entry.source!r} -> {entry.target!r}, but {earlier.origin} gives it "
                                f"{earlier.target!r}: keep one target per source term")
            self.entries[key] = entry
        self.longest = max((len(key) for key in self.entries), default=0)

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def from_pairs(cls, pairs: Sequence[Sequence[str]], name: str = "glossary") -> "Glossary":
        """A glossary from ``[source, target]`` pairs (an API request's); ``name`` starts the error
        messages ("glossary entry 2: ..."). Raises ``DataError`` for a pair that is not two strings
        and as ``Glossary`` does."""
        entries = []
        for number, pair in enumerate(pairs, start=1):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(term, str) for term in pair)):
                raise DataError(f"{name} entry {number}: expected [source term, target term], got {pair!r}")
            entries.append(GlossaryEntry(pair[0], pair[1], f"{name} entry {number}"))
        return cls(entries)

    def merged(self, other: "Glossary") -> "Glossary":
        """This glossary with ``other``'s entries added; where both have a source term, ``other``'s target wins."""
        merged = Glossary([])
        merged.entries = {**self.entries, **other.entries}
        merged.longest = max(self.longest, other.longest)
        return merged

    def match(self, sentence: str) -> list[TermMatch]:
        """The entries that occur in ``sentence``, in sentence order: whole words, case-insensitive;
        where two occurrences overlap, the one with more characters wins (then the earlier one).
        A target term is listed once however often its source term occurs."""
        found = occurrences(sentence, lambda key: (entry.target if (entry := self.entries.get(key)) else None), self.longest)
        return unique_targets(found)


def occurrences(sentence: str, lookup: Callable[[tuple[str, ...]], str | None], longest: int) -> list[TermMatch]:
    """The terms of ``sentence``: each run of at most ``longest`` whole words whose case-folded
    words ``lookup`` gives a target term for, in sentence order; where two overlap, the one with
    more characters wins (then the earlier one). ``Glossary.match`` and the training annotation
    of ``mt.terminology`` (which looks up the target a pair's reference holds) share it."""
    words = _words(sentence)
    keys = [word.group().casefold() for word in words]
    found = []
    for first in range(len(words)):
        for last in range(first, min(first + longest, len(words))):
            target = lookup(tuple(keys[first : last + 1]))
            if target:
                start, end = words[first].start(), words[last].end()
                found.append(TermMatch(start, end, sentence[start:end], target))
    taken: list[TermMatch] = []
    for candidate in sorted(found, key=lambda match: (match.start - match.end, match.start)):
        if all(candidate.end <= match.start or match.end <= candidate.start for match in taken):
            taken.append(candidate)
    return sorted(taken, key=lambda match: match.start)


def unique_targets(matches: Iterable[TermMatch]) -> list[TermMatch]:
    """``matches`` without those whose target term an earlier one already has."""
    seen: set[str] = set()
    unique = []
    for match in matches:
        if match.target not in seen:
            seen.add(match.target)
            unique.append(match)
    return unique


def _is_header(cells: list[str]) -> bool:
    return len(cells) == 2 and all(LANGUAGE_CODE.fullmatch(cell.strip()) for cell in cells)


def read_glossary(path: Path) -> Glossary:
    """A ``Glossary`` of a two-column glossary file (``read_entries``). Raises ``DataError`` as
    ``read_entries`` and ``Glossary`` do."""
    return Glossary(read_entries(path))


def read_entries(path: Path, max_entries: int = MAX_ENTRIES) -> list[GlossaryEntry]:
    """Read the rows of a two-column glossary file: TSV (tab-separated; ``.tsv``, ``.txt`` or any other
    name) or CSV (``.csv``, comma-separated, quotes as in RFC 4180), UTF-8 with or without a BOM.
    A first row of two language codes (``en<TAB>zh``) is a header and skipped; blank lines are
    skipped. Raises ``DataError`` naming the file and line for a missing or unreadable file,
    invalid UTF-8, a row without exactly two cells, and more than ``max_entries`` rows."""
    path = Path(path)
    check_regular_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not valid UTF-8 (save the glossary as UTF-8)") from None
    except OSError as error:
        raise DataError(f"cannot read the glossary {path}: {error.strerror}") from None
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = next(csv.reader([line], delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE))
        if number == 1 and _is_header(cells):
            continue
        if len(cells) != 2:
            separator = "comma" if delimiter == "," else "tab"
            raise DataError(f"{path}, line {number}: expected 2 {separator}-separated columns (source term, target "
                            f"term), found {len(cells)}: {line[:80]!r}")
        entries.append(GlossaryEntry(cells[0], cells[1], f"{path}, line {number}"))
        if len(entries) > max_entries:
            raise DataError(f"{path}: more than {max_entries:,} entries; a glossary is for terms, not a corpus")
    return entries
