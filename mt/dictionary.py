"""A bilingual dictionary as training data: CC-CEDICT entries -> English->Simplified Chinese pairs.

A CC-CEDICT line is ``Traditional Simplified [pin1 yin1] /gloss 1/gloss 2/.../``. Each gloss (and
each ``;``-separated part of one) that is a translation becomes a pair ``gloss<TAB>Simplified``.
What is not a translation is dropped and counted by reason: measure words (``CL:...``),
cross-references (``see ...``, ``variant of ...``, ``abbr. for ...``, glosses quoting Chinese or
pinyin), surnames, and definitions longer than ``max_words`` words. Notes in parentheses
(``(slang)``, ``(Tw)``) are removed from a gloss, as is the infinitive ``to`` of a verb
("to love" -> "love"), so that the English side reads like the words of a sentence.
Entries whose headword is not Chinese (``3C``, ``AA制``) are dropped.

Dictionary words alone do not carry into sentences (a model trained on them translates "deep
learning" alone but not inside "I love deep learning"), so ``terms_in_context`` also puts the
dictionary's multi-word terms into the sentences of a parallel corpus: where a sentence pair holds a
one-word dictionary noun on both sides ("I love music." / "我爱音乐。"), the noun is replaced by a
term on both sides ("I love deep learning." / "我爱深度学习。"). This is the substitution
augmentation of Fadaee et al. (2017), "Data Augmentation for Low-Resource Neural Machine
Translation", with the dictionary as the source of the aligned words.

Source: CC-CEDICT (MDBG), CC BY-SA 4.0; a model trained on these pairs is a derived work.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple

ENTRY = re.compile(r"(?P<traditional>\S+) (?P<simplified>\S+) \[(?P<pinyin>[^\]]*)\] /(?P<glosses>.*)/\s*$")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
PARENTHESES = re.compile(r"\([^()]*\)")
# A gloss that points elsewhere instead of translating (matched at its start, lowercased).
CROSS_REFERENCES = ("see ", "see also ", "variant of ", "old variant of ", "archaic variant of ", "erhua variant of ",
                    "japanese variant of ", "also written ", "also pr. ", "abbr. for ", "abbr. of ", "used in ",
                    "euphemistic variant of ", "same as ", "equivalent to ")


WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
# Words after which the next word is a noun often enough to be a slot for a noun term.
DETERMINERS = frozenset("a an the my your his her its our their this that these those some any every no".split())


class Pair(NamedTuple):
    """One dictionary pair; ``verb`` when the gloss was an infinitive ("to love" -> "love")."""

    english: str
    chinese: str
    verb: bool


@dataclass
class Report:
    """What ``dictionary_pairs`` kept and dropped: entries and glosses, by reason."""

    entries: int = 0
    entries_kept: int = 0
    entries_dropped: Counter = field(default_factory=Counter)
    glosses_kept: int = 0
    glosses_dropped: Counter = field(default_factory=Counter)


def _gloss_verdict(gloss: str, max_words: int) -> tuple[str | None, str]:
    """(the English side of a pair, or None) and the reason: "kept" or why it was dropped; the
    English side of a verb keeps its ``to `` here (``dictionary_pairs`` removes it)."""
    lowered = gloss.lower()
    if lowered.startswith("cl:"):
        return None, "measure word (CL:)"
    if re.search(r"\bsurname\b", lowered):
        return None, "surname"
    if lowered.startswith(CROSS_REFERENCES):
        return None, "cross-reference (see / variant of / abbr. for ...)"
    text = " ".join(PARENTHESES.sub(" ", gloss).split())
    if HAN.search(text) or "[" in text:
        return None, "quotes Chinese or pinyin"
    text = text.strip(" ,.;:")
    if not text:
        return None, "only a note in parentheses"
    if len(re.sub(r"^to (?=\w)", "", text).split()) > max_words:
        return None, f"longer than {max_words} words"
    return text, "kept"


def dictionary_pairs(lines: Iterable[str], max_words: int = 4, per_entry: int = 2,
                     report: Report | None = None) -> Iterator[Pair]:
    """Yield (English, Simplified Chinese, verb) pairs from CC-CEDICT lines, at most ``per_entry`` per
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
            verb = english is not None and english.startswith("to ") and len(english) > 3
            english = english[3:] if verb else english
            if english is None or kept == per_entry or (english, simplified) in seen:
                report.glosses_dropped[reason if english is None else
                                       "over the per-entry limit" if kept == per_entry else "duplicate"] += 1
                continue
            seen.add((english, simplified))
            kept += 1
            report.glosses_kept += 1
            yield Pair(english, simplified, verb)
        if kept:
            report.entries_kept += 1
        else:
            report.entries_dropped["no gloss is a translation"] += 1


@dataclass
class ContextReport:
    """What ``terms_in_context`` found: frames (sentence pairs with a noun slot), terms, pairs made."""

    sentences: int = 0
    frames: int = 0
    terms: int = 0
    pairs: int = 0


def _slots(pairs: Iterable[Pair]) -> dict[str, set[str]]:
    """One-word English nouns (not verbs) -> their Chinese translations of two or more characters."""
    slots: dict[str, set[str]] = {}
    for pair in pairs:
        if not pair.verb and len(pair.chinese) >= 2 and WORD.fullmatch(pair.english) and pair.english.islower():
            slots.setdefault(pair.english, set()).add(pair.chinese)
    return slots


def _frame(english: str, chinese: str, slots: dict[str, set[str]]) -> tuple[str, str] | None:
    """The first (English word, Chinese word) slot of a sentence pair: a dictionary noun after a
    determiner, once in the English sentence, with exactly one of its translations once in the Chinese."""
    words = [word.lower() for word in WORD.findall(english)]
    for before, word in zip(words, words[1:]):
        if before not in DETERMINERS or words.count(word) != 1 or word not in slots:
            continue
        found = [c for c in slots[word] if chinese.count(c) == 1]
        if len(found) == 1:
            return word, found[0]
    return None


def terms_in_context(pairs: list[Pair], sentences: Iterable[tuple[str, str]], per_term: int = 1, seed: int = 0,
                     report: ContextReport | None = None) -> Iterator[tuple[str, str]]:
    """Yield (English, Chinese) sentence pairs with a dictionary term substituted for a noun.

    ``pairs``: dictionary pairs (``dictionary_pairs``); the terms are those of two or more English
    words (letters only: no commas, digits or hyphens) that are not verbs, with two or more Chinese
    characters. ``sentences``: a parallel corpus
    (English, Chinese). A sentence is a frame when it holds a one-word dictionary noun after a
    determiner ("the", "my", ...) once on the English side and exactly one of its translations
    once on the Chinese side. Each term goes into ``per_term`` frames drawn at random (``seed``); a capitalised slot
    word gives a capitalised term. Deterministic for a given input and seed.
    """
    report = report if report is not None else ContextReport()
    slots = _slots(pairs)
    frames = []
    for english, chinese in sentences:
        report.sentences += 1
        slot = _frame(english, chinese, slots)
        if slot is not None:
            frames.append((english, chinese) + slot)
    report.frames = len(frames)
    terms = [pair for pair in pairs if not pair.verb and len(pair.english.split()) >= 2 and len(pair.chinese) >= 2
             and all(WORD.fullmatch(word) for word in pair.english.split())]
    report.terms = len(terms)
    if not frames:
        return
    rng = random.Random(seed)
    for term in terms:
        for english, chinese, word, translation in rng.sample(frames, min(per_term, len(frames))):
            report.pairs += 1
            yield _substitute(english, word, term.english), chinese.replace(translation, term.chinese, 1)


def _substitute(sentence: str, word: str, term: str) -> str:
    """``sentence`` with its whole word ``word`` (any case) replaced by ``term``, capitalised like it."""
    def replace(match: re.Match) -> str:
        return term[0].upper() + term[1:] if match.group(0)[0].isupper() else term
    return re.sub(rf"\b{re.escape(word)}\b", replace, sentence, count=1, flags=re.IGNORECASE)
