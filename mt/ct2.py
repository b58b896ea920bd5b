"""Export a Transformer checkpoint to CTranslate2, the inference engine practitioners deploy with.

The export goes through CTranslate2's own model-spec API (``ctranslate2.specs.TransformerSpec``
filled by a ``ctranslate2.converters.Converter``, as its OpenNMT-py and fairseq converters do),
so that CTranslate2 validates, quantizes and writes the model itself. ``ctranslate2`` is an
optional dependency: ``pip install 'mt[ct2]'``.

What differs between the two engines, and is handled here or by ``CT2_TRANSLATE_OPTIONS``:

- positions: CTranslate2's built-in sinusoidal table concatenates the sin and cos halves, with
  another frequency scale, while ``mt`` interleaves them (Vaswani et al., section 3.5): the export
  writes ``mt``'s own table (sinusoidal or learned), which CTranslate2 indexes from position 0;
- CTranslate2 takes the source as pieces with EOS, which ``mt``'s batches carry: ``source_tokens``
  reads a batch's rows as pieces;
- CTranslate2's default ``min_decoding_length=1`` forbids EOS at the first step: translate with 0;
- its length penalty divides by |Y|^alpha, where ``mt`` uses GNMT's ((5 + |Y|) / 6)^alpha
  (Wu et al., 2016): beam search scores (and so beam outputs) may differ; greedy ones do not.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from mt.batching import Batch
from mt.checkpoint import check_destination, load_checkpoint
from mt.config import DecodeConfig, config_from_dict
from mt.errors import CheckpointError, ConfigError
from mt.glossary import Glossary, TermMatch
from mt.models.transformer import Transformer
from mt.tokenizer import BOS_ID, EOS_ID, UNK_ID, Tokenizer
from mt.translate import Decoded, Translation, translate_sentences

QUANTIZATIONS = ("float32", "int8", "int8_float32", "int8_bfloat16", "bfloat16")
# Passed to ctranslate2.Translator.translate_batch so that it decodes as mt does.
CT2_TRANSLATE_OPTIONS = {"min_decoding_length": 0}


def _require_ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise ConfigError("CTranslate2 is not installed: pip install 'mt[ct2]' (or pip install ctranslate2)") from None
    return ctranslate2


def source_tokens(tokenizer: Tokenizer, batch: Batch) -> list[list[str]]:
    """A batch's sources as the pieces CTranslate2 takes: each row of ``batch.src`` (B, S) up to
    its padding (``mt``'s pieces and EOS), as pieces."""
    return [tokenizer.src.id_to_piece(row[mask].tolist()) for row, mask in zip(batch.src, batch.src_mask)]


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def _linear(spec, linear: torch.nn.Linear, rows: slice = slice(None)) -> None:
    spec.weight = _array(linear.weight[rows])
    if linear.bias is not None:
        spec.bias = _array(linear.bias[rows])


def _attention(spec, attention, self_attention: bool) -> None:
    """mt's MultiHeadAttention (query; fused key_value; output) -> CTranslate2's linear[0..]:
    self-attention fuses query, key and value into linear[0]; cross-attention keeps the query in
    linear[0] and the fused key/value in linear[1]."""
    if self_attention:
        spec.linear[0].weight = _array(torch.cat([attention.query.weight, attention.key_value.weight]))
        spec.linear[0].bias = _array(torch.cat([attention.query.bias, attention.key_value.bias]))
    else:
        _linear(spec.linear[0], attention.query)
        _linear(spec.linear[1], attention.key_value)
    _linear(spec.linear[-1], attention.output)


def _layer_norm(spec, norm: torch.nn.LayerNorm) -> None:
    spec.gamma, spec.beta = _array(norm.weight), _array(norm.bias)


def _feed_forward(spec, feed_forward, block) -> None:
    _linear(spec.linear_0, feed_forward[0])
    _linear(spec.linear_1, feed_forward[2])
    _layer_norm(spec.layer_norm, block.norm)


def transformer_spec(model: Transformer, tokenizer: Tokenizer, max_positions: int = 1024):
    """A ``ctranslate2.specs.TransformerSpec`` holding ``model``'s weights and vocabularies.

    Pre-LN models keep their final layer norms; post-LN ones have none (``no_final_norm``).
    The position table has ``max_positions`` rows (the learned table's own size for learned
    positions). Raises ``ConfigError`` when CTranslate2 is missing.
    """
    _require_ctranslate2()
    from ctranslate2.specs import transformer_spec as specs

    config = model.config
    spec = specs.TransformerSpec.from_config((config.encoder_layers, config.decoder_layers), config.heads,
                                             pre_norm=config.pre_norm, no_final_norm=not config.pre_norm)
    positions = model.positions(model.positions.weight.size(0) if config.positions == "learned" else max_positions)
    for side, layers, embedding in (("encoder", model.encoder_layers, model.src_embedding),
                                    ("decoder", model.decoder_layers, model.tgt_embedding)):
        stack = getattr(spec, side)
        embeddings = stack.embeddings[0] if isinstance(stack.embeddings, list) else stack.embeddings
        embeddings.weight = _array(embedding.weight)
        stack.scale_embeddings = True
        stack.position_encodings.encodings = _array(positions)
        if config.pre_norm:
            _layer_norm(stack.layer_norm, getattr(model, f"{side}_norm"))
    for layer_spec, layer in zip(spec.encoder.layer, model.encoder_layers):
        _attention(layer_spec.self_attention, layer.self_attention, self_attention=True)
        _layer_norm(layer_spec.self_attention.layer_norm, layer.attention_block.norm)
        _feed_forward(layer_spec.ffn, layer.feed_forward, layer.feed_forward_block)
    for layer_spec, layer in zip(spec.decoder.layer, model.decoder_layers):
        _attention(layer_spec.self_attention, layer.self_attention, self_attention=True)
        _layer_norm(layer_spec.self_attention.layer_norm, layer.self_block.norm)
        _attention(layer_spec.attention, layer.cross_attention, self_attention=False)
        _layer_norm(layer_spec.attention.layer_norm, layer.cross_block.norm)
        _feed_forward(layer_spec.ffn, layer.feed_forward, layer.feed_forward_block)
    _linear(spec.decoder.projection, model.output)
    pieces = [[side.id_to_piece(i) for i in range(side.get_piece_size())] for side in (tokenizer.src, tokenizer.tgt)]
    spec.register_source_vocabulary(pieces[0])
    spec.register_target_vocabulary(pieces[1])
    spec.config.bos_token, spec.config.eos_token = tokenizer.tgt.id_to_piece(BOS_ID), tokenizer.tgt.id_to_piece(EOS_ID)
    spec.config.unk_token = tokenizer.tgt.id_to_piece(UNK_ID)
    spec.config.decoder_start_token = spec.config.bos_token
    return spec


def export_ctranslate2(checkpoint: Path, output: Path, quantization: str = "float32") -> Path:
    """Write ``checkpoint`` (a Transformer) as a CTranslate2 model directory ``output``, with its
    tokenizer beside it (``tokenizer.json`` and the SentencePiece models) and ``mt``'s
    ``config.json`` as ``mt_config.json`` (``CT2Translator`` reads them). Raises ``ConfigError`` for an RNN, an unknown quantization, a missing
    CTranslate2, or an existing ``output`` (never replaced); ``CheckpointError`` for an ``output``
    over the checkpoint or its run directory (``mt.checkpoint.check_destination``)."""
    check_destination(output, [checkpoint])
    ctranslate2 = _require_ctranslate2()
    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    model, tokenizer, config, _ = load_checkpoint(checkpoint)
    if not isinstance(model, Transformer):
        raise ConfigError(f"{checkpoint} is an RNN ({config.model.attention} attention): CTranslate2 runs Transformers only")
    output = Path(output)
    if output.exists() or output.is_symlink():
        raise ConfigError(f"{output} exists: choose another directory (CTranslate2 writes a new one)")

    class MtConverter(ctranslate2.converters.Converter):
        def _load(self):
            return transformer_spec(model, tokenizer)

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}."))  # renamed once complete
    try:
        MtConverter().convert(str(staging), quantization=quantization, force=True)
        tokenizer.save(staging)
        (staging / "mt_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.rename(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


class CT2Translator:
    """CTranslate2's engine (a ``mt.translate.TranslationEngine``): an exported model
    (``export_ctranslate2``) with its ``config`` and ``tokenizer``, so that ``mt translate --engine
    ctranslate2`` and the benchmarks use it in place of ``mt``'s own decoder. ``compute_type`` is
    CTranslate2's (``default``: the type the model was saved in). No attention, no glossary. Raises
    ``CheckpointError`` for a directory that is not such an export, ``ConfigError`` when
    CTranslate2 is missing."""

    def __init__(self, directory: Path, device: str = "cpu", threads: int = 0, compute_type: str = "default"):
        ctranslate2 = _require_ctranslate2()
        directory = Path(directory)
        if not (directory / "model.bin").is_file() or not (directory / "mt_config.json").is_file():
            raise CheckpointError(f"{directory} is not a CTranslate2 export of mt (no model.bin or mt_config.json): "
                                  f"make one with mt export --format ctranslate2")
        self.config = config_from_dict(json.loads((directory / "mt_config.json").read_text(encoding="utf-8")),
                                       str(directory / "mt_config.json"))
        self.tokenizer = Tokenizer.load(directory)
        threads = threads or len(os.sched_getaffinity(0))
        self.engine = ctranslate2.Translator(str(directory), device="cuda" if device == "cuda" else "cpu",
                                             compute_type=compute_type, inter_threads=1, intra_threads=threads)

    def translate(self, sentences: Iterable[str], decode: DecodeConfig | None = None, return_attention: bool = False,
                  chunking: str | None = None, progress: Callable[[int], None] | None = None,
                  glossary: Glossary | None = None) -> Iterator[Translation]:
        """``mt.translate.translate_sentences`` run by CTranslate2, with ``decode``'s beam size,
        n-best, sampling and no-repeat n-gram settings (None: the export's settings; the length
        penalty is CTranslate2's |Y|^alpha). Raises ``ConfigError`` when asked for attention or
        given a glossary (CTranslate2 has no constrained beam search)."""
        if return_attention:
            raise ConfigError("the ctranslate2 engine returns no attention: use --engine mt for attention")
        if glossary is not None:
            raise ConfigError("--glossary needs --engine mt (CTranslate2 has no constrained beam search)")
        yield from translate_sentences(self, sentences, decode or self.config.decode, chunking=chunking, progress=progress)

    def decode_batch(self, batch: Batch, decode: DecodeConfig, return_attention: bool,
                     matches: list[list[TermMatch]]) -> list[Decoded]:
        """``TranslationEngine.decode_batch`` by ``ctranslate2.Translator.translate_batch``, the whole
        batch in one call (``translate_sentences`` already bounds its tokens). ``return_attention``
        and ``matches`` are refused by ``translate``, before any batch."""
        options = dict(beam_size=1 if decode.sampling else decode.beam_size, num_hypotheses=decode.n_best,
                       length_penalty=decode.length_penalty, max_decoding_length=decode.max_length,
                       no_repeat_ngram_size=decode.no_repeat_ngram_size, return_scores=True, **CT2_TRANSLATE_OPTIONS)
        if decode.sampling:
            options.update(sampling_topk=decode.top_k or 0, sampling_topp=decode.top_p, sampling_temperature=decode.temperature)
        results = self.engine.translate_batch(source_tokens(self.tokenizer, batch), **options)
        decode_pieces = self.tokenizer.tgt.decode_pieces
        return [Decoded([(decode_pieces(pieces), score) for pieces, score in zip(result.hypotheses, result.scores)],
                        result.hypotheses[0]) for result in results]
