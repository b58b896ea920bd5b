"""Evaluation: a test set -> translations (or a hypothesis file) -> sacrebleu scores, as an ``EvalReport``.

``read_test_set`` reads the pairs (empty ones kept, so that line N of the translations is pair N)
and says what a reader should know about them; ``evaluate`` translates and scores them. The report
holds everything ``mt eval`` shows or writes as JSON (``EvalReport.to_json``); nothing is printed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from mt.config import DecodeConfig
from mt.data import ParallelCorpus, read_corpus, read_lines
from mt.errors import ConfigError, DataError
from mt.files import atomic_output, check_output
from mt.glossary import TermMatch, read_glossary
from mt.metrics import Score, check_tokenize, corpus_scores, default_tokenize, lc_tok_bleu
from mt.translate import TranslationEngine

SHOWN_EMPTY_PAIRS = 10  # the note on empty pairs names this many of them


@dataclass
class TestSet:
    """A test corpus read for evaluation, in the languages ``src``->``tgt``, and the notes a
    reader should see before it is translated (a skipped header row, pairs with an empty side)."""

    corpus: ParallelCorpus
    src: str
    tgt: str
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.corpus)


@dataclass
class GlossaryUse:
    """How a glossary was honoured: per sentence, the terms found in its source whose target term
    is in the translation (``applied``) and those whose target term is not (``missed``)."""

    file: str
    applied: list[list[TermMatch]]
    missed: list[list[TermMatch]]

    @property
    def terms_found(self) -> int:
        """Glossary terms found in the sources, all sentences together."""
        return self.terms_used + sum(map(len, self.missed))

    @property
    def terms_used(self) -> int:
        """Found terms whose target term is in the translation."""
        return sum(map(len, self.applied))


@dataclass
class EvalReport:
    """What one evaluation computed: ``scores`` (BLEU, chrF, TER, and lc+tok BLEU when asked for,
    each with its sacrebleu signature) of ``hypotheses`` against the references of ``test``.
    ``seconds`` (translating, wall clock), ``decode`` and ``threads`` are None when the
    hypotheses were read from ``hypotheses_file``."""

    test: str
    sentences: int
    checkpoint: str
    scores: list[Score]
    hypotheses: list[str]
    inputs: list[Path]  # the files read: the corpus', the hypotheses', the tokenized references
    hypotheses_file: str | None = None
    seconds: float | None = None
    decode: DecodeConfig | None = None
    threads: int | None = None
    glossary: GlossaryUse | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def sentences_per_s(self) -> float | None:
        """Translation speed, sentences per second of wall clock; None without translating."""
        return self.sentences / self.seconds if self.seconds else None

    def to_json(self) -> dict:
        """The report as ``mt eval --json`` writes it: test, sentences, checkpoint, hypotheses and
        scores; seconds, sentences_per_s, beam_size and threads when it translated; glossary (file,
        terms_found, terms_used, applied_terms and missed_terms per sentence) with a glossary."""
        report = {"test": self.test, "sentences": self.sentences, "checkpoint": self.checkpoint,
                  "hypotheses": self.hypotheses_file, "scores": [vars(score) for score in self.scores]}
        if self.seconds:
            report.update(seconds=self.seconds, sentences_per_s=self.sentences_per_s, beam_size=self.decode.beam_size,
                          threads=self.threads)
        if self.glossary is not None:
            def terms(per_sentence: list[list[TermMatch]]) -> list[list[dict[str, str]]]:
                return [[{"source": term.text, "target": term.target} for term in found] for found in per_sentence]

            report["glossary"] = {"file": self.glossary.file, "terms_found": self.glossary.terms_found,
                                  "terms_used": self.glossary.terms_used, "applied_terms": terms(self.glossary.applied),
                                  "missed_terms": terms(self.glossary.missed)}
        return report

    def write(self, hypotheses_file: Path | None = None, json_file: Path | None = None) -> None:
        """Write the hypotheses, one a line, to ``hypotheses_file`` and ``to_json()`` to ``json_file``
        (each if given), never over one of ``inputs`` (``mt.files.atomic_output``)."""
        if hypotheses_file:
            with atomic_output(hypotheses_file, self.inputs) as handle:
                handle.write("".join(hypothesis + "\n" for hypothesis in self.hypotheses))
        if json_file:
            with atomic_output(json_file, self.inputs) as handle:
                handle.write(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")


def empty_pairs(corpus: ParallelCorpus) -> list[str]:
    """Where ``corpus`` (read with ``keep_empty``) has a pair with an empty side: "line N" of its
    files (a TSV's header row counted), or "row N" of a dataset."""
    offset = 1 + (corpus.header is not None)
    return [f"{'line' if corpus.files else 'row'} {number + offset}"
            for number, (source, target) in enumerate(zip(corpus.sources, corpus.targets)) if not (source and target)]


def read_test_set(spec: str, src: str | None, tgt: str | None, translator: TranslationEngine | None = None,
                  checkpoint: Path | None = None, encoding_errors: str = "strict") -> TestSet:
    """Read the test corpus ``spec`` (a prefix, a TSV or a dataset) with its empty pairs kept, in
    the languages ``src``->``tgt``, each defaulting to ``translator``'s (loaded from
    ``checkpoint``). Raises ``ConfigError`` when a language is neither given nor known from a
    translator, ``DataError`` for a corpus that cannot be read (saying where assumed languages came
    from)."""
    assumed = (f" (the languages {translator.tokenizer.src_lang}->{translator.tokenizer.tgt_lang} are those of "
               f"{checkpoint}; choose others with --src/--tgt, or another --checkpoint)"
               if translator and not (src and tgt) else "")
    src = src or (translator.tokenizer.src_lang if translator else None)
    tgt = tgt or (translator.tokenizer.tgt_lang if translator else None)
    if src is None or tgt is None:
        raise ConfigError("give --src and --tgt (or --checkpoint to take them from)")
    try:
        corpus = read_corpus(spec, src, tgt, encoding_errors, keep_empty=True)
    except DataError as error:
        raise DataError(f"{error}{assumed}") from None
    notes = [] if corpus.header is None else [f"skipped the header row {corpus.header!r} of {corpus.origin}"]
    if empty := empty_pairs(corpus):
        notes.append(f"{corpus.origin} has {len(empty)} pair(s) with an empty side "
                     f"({', '.join(empty[:SHOWN_EMPTY_PAIRS])}{', ...' if len(empty) > SHOWN_EMPTY_PAIRS else ''}): "
                     "they are translated and scored as they are, none is left out")
    return TestSet(corpus, src, tgt, notes)


def evaluate(test_set: TestSet, checkpoint: str, translator: TranslationEngine | None = None, decode: DecodeConfig | None = None,
             hypotheses_file: Path | None = None, glossary: Path | None = None, tokenize: str | None = None, lowercase: bool = False, tok_references: Path | None = None,
             encoding_errors: str = "strict", outputs: tuple[Path | None, ...] = (),
             progress: Callable[[int], None] | None = None) -> EvalReport:
    """Score ``test_set``: the lines of ``hypotheses_file`` if given, else ``translator``'s
    translations with ``decode`` (and the glossary file ``glossary``), against its
    references, with sacrebleu's ``tokenize`` (default: ``mt.metrics.default_tokenize`` of the
    target language) and ``lowercase``; with ``tok_references`` (lowercased, Moses-tokenized
    references) lc+tok BLEU too. ``outputs`` (the files the caller will write from the report;
    None entries skipped) are checked against every file read before anything is translated.
    ``progress`` is ``TranslationEngine.translate``'s. ``checkpoint`` names the model in the report.

    Raises ``ConfigError`` for a glossary with a hypothesis file, an unknown BLEU tokenizer or bad
    decoding settings; ``DataError`` for a glossary that cannot be read, hypotheses or tokenized
    references that are not one line a pair; ``OutputError`` (``mt.files.check_output``) for an output that is also an input."""
    if glossary is not None and hypotheses_file is not None:
        raise ConfigError("--glossary constrains translating: it cannot apply to a --hyp file")
    terms = None if glossary is None else read_glossary(glossary)
    bleu_tokenize = check_tokenize(tokenize or default_tokenize(test_set.tgt))  # before minutes of translating
    corpus = test_set.corpus
    inputs = corpus.files + [path for path in (hypotheses_file, tok_references) if path is not None]
    for path in outputs:
        if path is not None:
            check_output(path, inputs)
    tokenized = None
    if tok_references is not None:
        tokenized = list(read_lines(tok_references, encoding_errors))
        if len(tokenized) != len(corpus):
            raise DataError(f"{tok_references} has {len(tokenized)} lines but the test set has {len(corpus)}")
    report = EvalReport(corpus.origin, len(corpus), checkpoint, [], [], inputs, notes=list(test_set.notes))
    if hypotheses_file is not None:
        report.hypotheses_file = str(hypotheses_file)
        report.hypotheses = list(read_lines(hypotheses_file, encoding_errors))
        if len(report.hypotheses) != len(corpus):
            raise DataError(f"{hypotheses_file} has {len(report.hypotheses)} lines but {corpus.origin} has {len(corpus)} "
                            f"sentence pairs{' besides its header row' if corpus.header is not None else ''}: give one "
                            "hypothesis a pair, in the same order")
    else:
        started = time.time()
        results = list(translator.translate(corpus.sources, decode, progress=progress, glossary=terms))
        report.seconds, report.decode, report.threads = time.time() - started, decode, torch.get_num_threads()
        report.hypotheses = [result.text for result in results]
        if terms is not None:
            report.glossary = GlossaryUse(str(glossary), [result.applied_terms for result in results],
                                          [result.missed_terms for result in results])
    report.scores = corpus_scores(report.hypotheses, corpus.targets, tokenize=bleu_tokenize, lowercase=lowercase)
    if tokenized is not None:
        report.scores.append(lc_tok_bleu(report.hypotheses, tokenized, test_set.tgt))
    return report
