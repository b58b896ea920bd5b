"""Corpus-level scores from sacrebleu (Post, 2018): BLEU, chrF and TER with their signatures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sacrebleu.metrics import BLEU, CHRF, TER

from mt.data import is_cjk
from mt.errors import ConfigError


@dataclass
class Score:
    """A corpus score and the sacrebleu signature that says exactly how it was computed."""

    name: str
    score: float
    signature: str

    def __str__(self) -> str:
        return f"{self.name} = {self.score:.2f}  ({self.signature})"


def default_tokenize(tgt_lang: str) -> str:
    """sacrebleu tokenizer for a target language: ``zh`` for Chinese, ``ja-mecab`` for Japanese, else ``13a``."""
    lang = tgt_lang.split("-")[0].lower()
    if lang == "ja":
        return "ja-mecab"
    if is_cjk(lang) and lang != "ko":
        return "zh"
    return "13a"


def _references(references: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    """One reference stream (list of strings) or several (list of lists) -> sacrebleu's list of streams."""
    if references and isinstance(references[0], str):
        return [list(references)]
    return [list(stream) for stream in references]


def check_tokenize(tokenize: str) -> str:
    """``tokenize`` if sacrebleu has that BLEU tokenizer, else ``ConfigError`` listing those it has."""
    if tokenize not in BLEU.TOKENIZERS:
        raise ConfigError(f"unknown BLEU tokenizer {tokenize!r}: sacrebleu has {', '.join(BLEU.TOKENIZERS)}")
    return tokenize


def bleu(hypotheses: Sequence[str], references, tokenize: str = "13a", lowercase: bool = False) -> Score:
    """Corpus BLEU (Papineni et al., 2002) as sacrebleu computes it; ``ConfigError`` for a
    ``tokenize`` that sacrebleu does not have."""
    check_tokenize(tokenize)
    metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    result = metric.corpus_score(list(hypotheses), _references(references))
    return Score("BLEU", result.score, str(metric.get_signature()))


def corpus_scores(hypotheses: Sequence[str], references, tokenize: str = "13a", lowercase: bool = False) -> list[Score]:
    """BLEU, chrF (Popović, 2015) and TER (Snover et al., 2006), each with its signature."""
    references = _references(references)
    scores = [bleu(hypotheses, references, tokenize, lowercase)]
    for name, metric in (("chrF", CHRF(lowercase=lowercase)), ("TER", TER(case_sensitive=not lowercase))):
        result = metric.corpus_score(list(hypotheses), references)
        scores.append(Score(name, result.score, str(metric.get_signature())))
    return scores


def moses_lowercase_tokenize(lines: Sequence[str], lang: str) -> list[str]:
    """Moses punctuation normalisation + tokenization (with XML escaping) + lowercasing, via sacremoses.

    This is the pipeline of the Multi30k dataset's ``scripts/task1-tokenize.sh`` that produced its
    ``*.lc.norm.tok.*`` references (it reproduces 999 of the 1,000 test_2016_flickr German lines).
    """
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    normalizer, tokenizer = MosesPunctNormalizer(lang), MosesTokenizer(lang)
    return [tokenizer.tokenize(normalizer.normalize(line), escape=True, return_str=True).lower() for line in lines]


def lc_tok_bleu(hypotheses: Sequence[str], tokenized_references: Sequence[str], lang: str) -> Score:
    """BLEU the way most Multi30k papers report it ("lc+tok BLEU"): hypotheses put through
    ``moses_lowercase_tokenize`` and scored against already lowercased+tokenized references with
    sacrebleu's ``tokenize=none`` (multi-bleu.perl equivalent). Not comparable with detokenized BLEU."""
    metric = BLEU(tokenize="none", force=True)
    result = metric.corpus_score(moses_lowercase_tokenize(hypotheses, lang), [list(tokenized_references)])
    return Score("lc+tok BLEU", result.score, f"{metric.get_signature()}|pre:sacremoses-norm-tok-lc")
