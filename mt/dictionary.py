"""A bilingual dictionary as training data: CC-CEDICT entries -> English->Simplified Chinese pairs.

A CC-CEDICT line is ``Traditional Simplified [pin1 yin1] /gloss 1/gloss 2/.../``. Each gloss (and
each ``;``-separated part of one) that is a translation becomes a pair ``gloss<TAB>Simplified``.
What is not a translation is dropped and counted by reason: measure words (``CL:...``),
cross-references (``see ...``, ``variant of ...``, ``abbr. for ...``, glosses quoting Chinese or
pinyin), surnames, and definitions longer than ``max_words`` words. Notes in parentheses
(``(slang)``, ``(Tw)``) are removed from a gloss, as is the infinitive ``to`` of a verb
("to love" -> "love"), so that the English side reads like the words of a sentence.
Entries whose headword is not Chinese (``3C``, ``AA制``) are dropped.

Source: CC-CEDICT (MDBG), CC BY-SA 4.0; a model trained on these pairs is a derived work.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

ENTRY = re.compile(r"(?P<traditional>\S+) (?P<simplified>\S+) \[(?P<pinyin>[^\]]*)\] /(?P<glosses>.*)/\s*$")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
PARENTHESES = re.compile(r"\([^()]*\)")
# A gloss that points elsewhere instead of translating (matched at its start, lowercased).
CROSS_REFERENCES = ("see ", "see also ", "variant of ", "old variant of ", "archaic variant of ", "erhua variant of ",
                    "japanese variant of ", "also written ", "also pr. ", "abbr. for ", "abbr. of ", "used in ",
                    "euphemistic variant of ", "same as ", "equivalent to ")


@dataclass
class Report:
    """What ``dictionary_pairs`` kept and dropped: entries and glosses, by reason."""

    entries: int = 0
    entries_kept: int = 0
    entries_dropped: Counter = field(default_factory=Counter)
    glosses_kept: int = 0
    glosses_dropped: Counter = field(default_factory=Counter)


def _gloss_verdict(gloss: str, max_words: int) -> tuple[str | None, str]:
    """(the English side of a pair, or None) and the reason: "kept" or why it was dropped."""
    lowered = gloss.lower()
    if lowered.startswith("cl:"):
        return None, "measure word (CL:)"
    if lowered.startswith("surname "):
        return None, "surname"
    if lowered.startswith(CROSS_REFERENCES):
        return None, "cross-reference (see / variant of / abbr. for ...)"
    text = " ".join(PARENTHESES.sub(" ", gloss).split())
    if HAN.search(text) or "[" in text:
        return None, "quotes Chinese or pinyin"
    text = re.sub(r"^to (?=\w)", "", text).strip(" ,.;:")
    if not text:
        return None, "only a note in parentheses"
    if len(text.split()) > max_words:
        return None, f"longer than {max_words} words"
    return text, "kept"


def dictionary_pairs(lines: Iterable[str], max_words: int = 4, per_entry: int = 2,
                     report: Report | None = None) -> Iterator[tuple[str, str]]:
    """Yield (English, Simplified Chinese) pairs from CC-CEDICT lines, at most ``per_entry`` per
    entry (its first glosses that are translations), each distinct pair once; count what was kept
    and dropped into ``report``."""
    report = report if report is not None else Report()
    seen: set[tuple[str, str]] = set()
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        report.entries += 1
        match = ENTRY.match(line)
        if match is None:
            report.entries_dropped["not an entry line"] += 1
            continue
        simplified = match["simplified"]
        if not all(HAN.match(character) or character in "·，" for character in simplified):
            report.entries_dropped["headword not all Chinese characters"] += 1
            continue
        kept = 0
        for gloss in (part.strip() for whole in match["glosses"].split("/") for part in whole.split(";")):
            if not gloss:
                continue
            english, reason = _gloss_verdict(gloss, max_words)
            if english is None or kept == per_entry or (english, simplified) in seen:
                report.glosses_dropped[reason if english is None else
                                       "over the per-entry limit" if kept == per_entry else "duplicate"] += 1
                continue
            seen.add((english, simplified))
            kept += 1
            report.glosses_kept += 1
            yield english, simplified
        if kept:
            report.entries_kept += 1
        else:
            report.entries_dropped["no gloss is a translation"] += 1
