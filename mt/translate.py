"""Translation: checkpoint -> token batches -> search -> detokenized text (+ attention).

One pipeline for every engine (``TranslationEngine``: ``Translator``, ``mt``'s own decoder, and
``mt.ct2.CT2Translator``, CTranslate2's): ``translate_sentences`` streams, reading its input in
chunks (``chunks``), cleaning, encoding and truncating each chunk, sorting it by length into token
batches that the engine decodes (``decode_batch``), and yielding the translations back in input
order, so inputs larger than memory work.
"""

from __future__ import annotations

import collections
import itertools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import torch

from mt.batching import Batch, decoding_batches
from mt.checkpoint import load_checkpoint
from mt.config import DecodeConfig, RunConfig
from mt.constraints import ConstrainedBeam, TargetVocabulary, TermAutomaton
from mt.data import clean_text
from mt.device import autocast, cpu_supports_bf16, mkl_is_slow_here, resolve_device, resolve_precision
from mt.ensemble import Ensemble
from mt.errors import ConfigError
from mt.glossary import Glossary, TermMatch
from mt.models import EncoderDecoder
from mt.models.transformer import FeedForward
from mt.packing import pack_linear_layers
from mt.search import search
from mt.terminology import annotate, source_pieces
from mt.tokenizer import UNK_ID, Tokenizer

CHUNK_SENTENCES = 10_000
# How an input is cut into chunks: (first chunk, growth factor), chunks at most CHUNK_SENTENCES.
# Every chunk ends with a tail of decoder steps for its few longest sentences: on test_2016_flickr,
# chunks of 1, 2, 4, ... cost greedy search 202 of its 360 steps.
CHUNKING = {
    "whole": (CHUNK_SENTENCES, 1),  # a list or a file: as few chunks (and tails) as possible
    "growing": (1, 2),  # a pipe: its first lines are answered at once
    "lines": (1, 1),  # a terminal: every line is answered as soon as it is typed
}
AUTOMATA_CACHED = 1024  # glossary terms whose automata a Translator keeps: (term length, V) int16, 96 KB for 4 characters at V 12,000


def chunks(sentences: Iterable[str], chunking: str | None = None) -> Iterator[list[str]]:
    """``sentences`` read in chunks as ``chunking`` (a key of ``CHUNKING``) says; by default
    ``whole`` for a list or other sequence, ``growing`` for any other iterable. Raises
    ``ConfigError`` for another value."""
    chunking = chunking or ("whole" if isinstance(sentences, Sequence) else "growing")
    if chunking not in CHUNKING:
        raise ConfigError(f"unknown chunking {chunking!r}: use one of {', '.join(CHUNKING)}")
    chunk_size, growth = CHUNKING[chunking]
    iterator = iter(sentences)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        yield chunk
        chunk_size = min(growth * chunk_size, CHUNK_SENTENCES)


@dataclass
class Translation:
    """A source sentence and its translation(s).

    ``attention`` (if asked for) is the decoder's attention for the best hypothesis,
    (T, L, H, S): one row per target piece (plus one for EOS when it was produced), over
    S = the source pieces plus EOS. ``mt.alignment`` gives it between words
    (``alignment_labels(translation, "word")``) and reads word alignments off it (``word_alignment``).
    With a glossary, ``applied_terms`` are the glossary terms found in the source whose target
    term is in ``text``, ``missed_terms`` those whose target term is not (the length limit came
    first, or the model's vocabulary cannot write it).
    """

    source: str
    text: str
    score: float
    src_pieces: list[str] = field(default_factory=list)
    tgt_pieces: list[str] = field(default_factory=list)
    attention: torch.Tensor | None = None
    n_best: list[tuple[str, float]] = field(default_factory=list)
    truncated: bool = False
    applied_terms: list[TermMatch] = field(default_factory=list)
    missed_terms: list[TermMatch] = field(default_factory=list)


@dataclass
class Decoded:
    """One sentence as an engine decoded it (``TranslationEngine.decode_batch``): ``n_best``, its
    (text, score) hypotheses, best first (score: the search's, log-probability over the length
    penalty); the best one's target pieces; and its attention (T, L, H, S) over this sentence's
    source pieces and EOS, or None when not asked for (or the engine has none)."""

    n_best: list[tuple[str, float]]
    tgt_pieces: list[str]
    attention: torch.Tensor | None = None


class TranslationEngine(Protocol):
    """What every front end (``mt translate``, ``mt evaluate``, ``mt serve``, validation during
    training) translates with, whichever engine decodes: ``Translator`` (``mt``'s own decoder) or
    ``mt.ct2.CT2Translator`` (CTranslate2 running an export of it), both loaded by
    ``mt.engines.load_translator``. ``config`` is the checkpoint's (``config.decode``: the default
    decoding settings) and ``tokenizer`` its SentencePiece models.

    Both engines' ``translate`` is ``translate_sentences``, the one loop from text to
    ``Translation``s, after refusing what the engine cannot do; ``decode_batch`` is the one step
    each does its own way."""

    config: RunConfig
    tokenizer: Tokenizer

    def translate(self, sentences: Iterable[str], decode: DecodeConfig | None = None,
                  return_attention: bool = False, chunking: str | None = None,
                  progress: Callable[[int], None] | None = None, glossary: Glossary | None = None
                  ) -> Iterator[Translation]:
        """``translate_sentences`` with ``decode`` (None: ``config.decode``); raises ``ConfigError``
        for what this engine cannot do (attention, a glossary, a glossary with sampling)."""
        ...

    def decode_batch(self, batch: Batch, decode: DecodeConfig, return_attention: bool,
                     matches: list[list[TermMatch]]) -> list[Decoded]:
        """Decode ``batch`` (``batch.src`` (B, S) int64: each sentence's source ids and EOS, padded;
        ``batch.src_mask`` (B, S) bool, True on them) as ``decode`` says: one ``Decoded`` per row,
        in row order. ``matches[b]`` are the glossary terms found in row b's sentence, whose target
        terms its translation must contain (empty without a glossary)."""
        ...


def translate_sentences(engine: TranslationEngine, sentences: Iterable[str], decode: DecodeConfig,
                        return_attention: bool = False, chunking: str | None = None,
                        progress: Callable[[int], None] | None = None, glossary: Glossary | None = None
                        ) -> Iterator[Translation]:
    """Translate ``sentences`` (streamed) with ``engine``, yielding one ``Translation`` per input,
    in input order.

    Each input is cleaned (``mt.data.clean_text``) and encoded (for a model trained with
    ``data.terminology``, with its glossary terms' targets written in: ``mt.terminology.annotate``,
    shown in ``Translation.src_pieces`` as ``〈机器〉``); its source pieces, cut to the first
    ``decode.max_source_tokens`` (``Translation.truncated`` then says so), go to
    ``engine.decode_batch`` in batches of sentences of like length, at most ``decode.batch_tokens``
    source tokens x hypotheses per sentence (``decode.hypotheses_per_sentence``) a batch. Empty or
    whitespace-only inputs, and inputs that SentencePiece normalizes to no piece at all
    (zero-width characters), translate to an empty string without running the model.

    ``chunking`` (a key of ``CHUNKING``) says how many sentences are read before translating:
    ``whole`` (CHUNK_SENTENCES at a time; the default for a list or other sequence), ``growing``
    (1, 2, 4, ...; the default for any other iterable, such as a pipe) or ``lines`` (one at a
    time, for a terminal). Raises ``ConfigError`` for another value. ``progress`` is called with
    the number of sentences each batch finished (the empty ones of a chunk once, before its
    batches), as they finish: a chunk's translations are yielded only when all of its batches are
    done.

    ``glossary``: the glossary terms found in each cleaned sentence (``Glossary.match``) go to the
    engine with its batch; ``Translation.applied_terms`` and ``missed_terms`` say which of their
    target terms the translation contains. Raises what ``engine.decode_batch`` raises."""
    progress = progress or (lambda count: None)
    for chunk in chunks(sentences, chunking):
        yield from translate_chunk(engine, chunk, decode, return_attention, progress, glossary)


def translate_chunk(engine: TranslationEngine, sentences: list[str], decode: DecodeConfig, return_attention: bool,
                    progress: Callable[[int], None], glossary: Glossary | None) -> list[Translation]:
    """One chunk of ``translate_sentences``: its ``Translation``s, in the order of ``sentences``."""
    cleaned = [clean_text(sentence) for sentence in sentences]
    results = [Translation(source, "", 0.0) for source in sentences]
    matches = [glossary.match(sentence) for sentence in cleaned] if glossary else [[] for _ in cleaned]
    encoded = engine.tokenizer.encode_src(cleaned)
    if engine.config.data.terminology:  # trained to read a term's target after it in the source (mt.terminology)
        encoded = [annotate(engine.tokenizer, sentence, ids, found) for sentence, ids, found in zip(cleaned, encoded, matches)]
    # an input that comes out of normalization as no pieces at all is empty, like a blank line
    todo = [i for i, ids in enumerate(encoded) if ids]
    if len(todo) < len(sentences):
        progress(len(sentences) - len(todo))
    src_ids = [encoded[i][: decode.max_source_tokens] for i in todo]
    for i, ids in zip(todo, src_ids):
        results[i].truncated = len(encoded[i]) > decode.max_source_tokens
        results[i].src_pieces = source_pieces(engine.tokenizer, ids)
    # every sentence runs beam_size hypotheses (or n samples): keep the rows (and memory) of a batch bounded
    for batch in decoding_batches(src_ids, max(decode.batch_tokens // decode.hypotheses_per_sentence, 1)):
        rows = [todo[position] for position in batch.indices]
        for i, decoded in zip(rows, engine.decode_batch(batch, decode, return_attention, [matches[i] for i in rows])):
            result = results[i]
            (result.text, result.score), result.n_best = decoded.n_best[0], decoded.n_best
            result.tgt_pieces, result.attention = decoded.tgt_pieces, decoded.attention
        progress(len(batch.indices))
    for result, found in zip(results, matches):
        result.applied_terms = [match for match in found if match.target in result.text]
        result.missed_terms = [match for match in found if match.target not in result.text]
    return results


def quantize_linear_layers(model: EncoderDecoder, scheme: str, device: torch.device) -> EncoderDecoder:
    """Dynamic int8 quantization of the Linear layers (``torch.ao.quantization.quantize_dynamic``),
    the first Linear of every Transformer feed-forward block fused with its ReLU (one
    ``quantized::linear_relu_dynamic`` call instead of a Linear and a pass over its (B, T, ff_dim)
    output). Converts ``model`` in place (no fp32 copy is kept) and returns it. Raises
    ``ConfigError`` for another scheme or a non-CPU device."""
    if scheme != "int8":
        raise ConfigError(f"unknown quantization {scheme!r}: the only one is int8")
    if device.type != "cpu":
        raise ConfigError("--quantize int8 runs on CPU only: add --device cpu")
    from torch.ao.nn.intrinsic import LinearReLU
    from torch.ao.quantization import fuse_modules, quantize_dynamic

    linear_relu = [[f"{name}.0", f"{name}.1"] for name, module in model.named_modules() if isinstance(module, FeedForward)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao announces its move to torchao; the API still works
        fuse_modules(model.eval(), linear_relu, inplace=True)
        return quantize_dynamic(model, {torch.nn.Linear, LinearReLU}, dtype=torch.qint8, inplace=True)


def prepare_model(model: EncoderDecoder, quantize: str | None, dtype: torch.dtype, device: torch.device) -> EncoderDecoder:
    """The model as it decodes: int8-quantized when asked (``quantize_linear_layers``); else on
    CPU with oneDNN's prepacked Linear layers (``pack_linear_layers``) for bf16, its weights
    stored in bf16 first (on a CPU with bf16 units: 1.50-1.69x fp32's target tokens/s greedy,
    1.35-1.55x at beam 5 on a 2-core Xeon with AMX, in six runs), and for fp32 where MKL is slow
    (``mkl_is_slow_here``: 1.36x greedy and 1.35x beam-5 sentences/s on a 2-core AMD EPYC); both
    from ``scripts/bench_ct2.py``; else as loaded. Raises what ``quantize_linear_layers`` raises."""
    if quantize:
        return quantize_linear_layers(model, quantize, device)
    if device.type == "cpu" and dtype == torch.bfloat16:  # without bf16 units torch emulates it, unpacked
        return pack_linear_layers(model.to(dtype)) if cpu_supports_bf16() else model.to(dtype)
    if device.type == "cpu" and dtype == torch.float32 and mkl_is_slow_here():
        return pack_linear_layers(model)
    return model


class Translator:
    """``mt``'s own engine (a ``TranslationEngine``): a loaded model with its tokenizer, decoded by
    ``mt.search``. ``model`` is as ``prepare_model`` leaves it for ``dtype``: on CPU, 16-bit
    decoding runs on weights stored in that type (no autocast casts per call), elsewhere under
    autocast. With ``dtype`` fp32 it adds no autocast of its own: training validation decodes the
    model's fp32 weights under the autocast of the training precision."""

    def __init__(self, model: EncoderDecoder, tokenizer: Tokenizer, config: RunConfig, device: torch.device,
                 dtype: torch.dtype = torch.float32):
        self.model, self.tokenizer, self.config, self.device, self.dtype = model, tokenizer, config, device, dtype
        self.cast_weights = dtype != torch.float32 and device.type == "cpu"
        self._vocabulary: TargetVocabulary | None = None
        self._automata: collections.OrderedDict[str, TermAutomaton | None] = collections.OrderedDict()

    @classmethod
    def from_checkpoint(cls, path: Path | Sequence[Path], device: str = "auto", precision: str = "fp32",
                        quantize: str | None = None) -> "Translator":
        """Load a checkpoint directory (or a run directory's ``best``); several make an ensemble
        (``mt.ensemble.Ensemble``), decoded with the first one's settings. Changes no process
        setting: the caller chooses torch's thread count (``mt.device.set_threads``).

        ``quantize="int8"`` swaps every Linear layer for a dynamically quantized int8 one (weights
        int8, activations quantized per batch; CPU only). Raises ``CheckpointError``, and
        ``ConfigError`` for a bad quantization or ensemble members with different tokenizers.
        """
        torch_device = resolve_device(device)
        paths = [path] if isinstance(path, (str, Path)) else list(path)
        loaded = [load_checkpoint(member, torch_device)[:3] for member in paths]
        dtype = resolve_precision(precision, torch_device)
        models = [prepare_model(model, quantize, dtype, torch_device) for model, _, _ in loaded]
        _, tokenizer, config = loaded[0]
        for member, (_, other, _) in zip(paths[1:], loaded[1:]):
            if not tokenizer.same_as(other):
                raise ConfigError(f"{member} has another tokenizer than {paths[0]}: the models of an ensemble must share "
                                  f"their vocabularies (train them with the same --tokenizer)")
        model = models[0] if len(models) == 1 else Ensemble(models)
        return cls(model, tokenizer, config, torch_device, dtype)

    def translate(self, sentences: Iterable[str], decode: DecodeConfig | None = None,
                  return_attention: bool = False, chunking: str | None = None,
                  progress: Callable[[int], None] | None = None, glossary: Glossary | None = None
                  ) -> Iterator[Translation]:
        """``translate_sentences`` with this model and ``decode`` (None: the checkpoint's settings).

        ``glossary``: the target term of every glossary entry found in a sentence
        (``Glossary.match``) appears in its translation, by lexically constrained beam search
        (``mt.constraints.ConstrainedBeam``) of width ``decode.beam_size``; a sentence without a
        match decodes as without the glossary. Raises ``ConfigError`` with ``decode.sampling``.
        """
        decode = decode or self.config.decode
        if glossary is not None and decode.sampling:
            raise ConfigError("a glossary needs beam search: drop --sampling")
        yield from translate_sentences(self, sentences, decode, return_attention, chunking, progress, glossary)

    def _automaton(self, term: str) -> TermAutomaton | None:
        """The term's automaton, or None when the target vocabulary cannot write it. The
        ``AUTOMATA_CACHED`` most recently used are kept (a server meets terms without end)."""
        if term in self._automata:
            self._automata.move_to_end(term)
            return self._automata[term]
        if self._vocabulary is None:
            self._vocabulary = TargetVocabulary.of(self.tokenizer)
        writable = UNK_ID not in self.tokenizer.encode_tgt([term])[0]
        self._automata[term] = TermAutomaton.build(term, self._vocabulary) if writable else None
        if len(self._automata) > AUTOMATA_CACHED:
            self._automata.popitem(last=False)
        return self._automata[term]

    def decode_batch(self, batch: Batch, decode: DecodeConfig, return_attention: bool,
                     matches: list[list[TermMatch]]) -> list[Decoded]:
        """``TranslationEngine.decode_batch`` by ``mt.search.search``; a batch with glossary terms
        by ``ConstrainedBeam`` (terms the target vocabulary cannot write are left out)."""
        terms = [[a for a in (self._automaton(match.target) for match in found) if a] for found in matches]
        batch = batch.to(self.device)
        with torch.inference_mode(), autocast(self.device, torch.float32 if self.cast_weights else self.dtype):
            selection = ConstrainedBeam(decode.beam_size, terms, self.device) if any(terms) else None
            outputs = search(self.model, batch.src, batch.src_mask, decode, return_attention, selection)
        # one SentencePiece call per batch: a call per sentence cost 70 us each, 1-2% of greedy decoding
        texts = iter(self.tokenizer.decode_tgt([h.tokens for hypotheses in outputs for h in hypotheses]))
        decoded = []
        for hypotheses, length in zip(outputs, batch.src_mask.sum(dim=1).tolist()):
            best = hypotheses[0]
            n_best = [(next(texts), h.score) for h in hypotheses]
            # the batch was as wide as its longest source: keep this source's pieces and EOS
            attention = None if best.attention is None else best.attention[..., :length]
            decoded.append(Decoded(n_best, self.tokenizer.tgt_pieces(best.tokens), attention))
        return decoded
