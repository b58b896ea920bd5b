"""Typed configuration: dataclasses parsed once at the edge, then passed down as objects.

A run is described by a ``RunConfig`` with four sections (``data``, ``model``, ``train``,
``decode``). Values come, in increasing priority, from the dataclass defaults, a named
preset shipped in ``mt/presets/*.yaml``, a user YAML file, and command-line flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mt.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass
class DataConfig:
    """Where the corpus is and how it becomes subword ids.

    ``train`` is a list of corpus specs (see ``mt.data.read_corpus``), each optionally
    ``SPEC@WEIGHT`` (``mt.data.weighted_spec``); a single spec is read as a list of one. ``dev`` is
    one spec. Lengths are in subword tokens, ``vocab_size`` in pieces.
    """

    train: list[str] = field(default_factory=list)
    dev: str = ""
    src_lang: str = "en"
    tgt_lang: str = "de"
    tokenizer: str = ""  # directory of an existing tokenizer; empty = train one
    vocab_size: int = 8000
    model_type: str = "unigram"  # SentencePiece: unigram | bpe
    joint_vocab: bool = True
    max_length: int = 100  # training pairs longer than this (either side) are dropped
    encoding_errors: str = "strict"  # strict: invalid UTF-8 is an error naming file and line; replace: U+FFFD
    cache_dir: str = ""  # tokenizers and tokenized corpora (mt.store); empty = $MT_CACHE or ~/.cache/mt
    terminology: str = ""  # source<TAB>target term dictionary annotated in training sources (mt.terminology; Dinu et al. 2019)
    terminology_rate: float = 0.5  # share of the terms found in a pair (a target of theirs in its target) that are annotated
    terminology_substitute: float = 0.5  # share of those whose target is swapped for another of the term's, in source and target


@dataclass
class ModelConfig:
    """Architecture of the encoder-decoder. Dimensions in units, not tokens."""

    arch: str = "transformer"
    d_model: int = 256
    ff_dim: int = 1024
    heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    dropout: float = 0.1
    attention_dropout: float = 0.0
    positions: str = "sinusoidal"  # a name of mt.models.transformer.POSITIONS: sinusoidal | learned
    max_positions: int = 1024  # rows of the learned position table (tokens)
    pre_norm: bool = True  # LayerNorm before each sublayer (pre-LN) or after it (post-LN, Vaswani 2017)
    tie_embeddings: bool = True  # share src/tgt/output embeddings when the vocabulary is joint
    joint_vocab: bool = True  # filled from the tokenizer: one SentencePiece model for both sides
    src_vocab_size: int = 0  # filled from the tokenizer
    tgt_vocab_size: int = 0
    # arch "rnn" (mt.models.rnn) uses these with encoder_layers, decoder_layers and dropout; not d_model, ff_dim, heads.
    rnn_type: str = "gru"  # a name of mt.models.rnn.RNN_CLASSES: gru | lstm
    attention: str = "bahdanau"  # a name of mt.models.rnn.ATTENTIONS (mt attentions lists them)
    embedding_dim: int = 256
    hidden_size: int = 512  # decoder state and encoder states (hidden_size / 2 per direction)
    local_window: int = 10  # D of luong-local and luong-local-m: attends to source positions p_t - D .. p_t + D


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. ``batch_tokens`` counts padded tokens of the longer side."""

    batch_tokens: int = 4096
    learning_rate: float = 7e-4  # peak, reached at the end of warmup
    warmup_steps: int = 800
    cooldown_steps: int = 0  # the last N of max_steps updates decay the learning rate linearly to 0 (0 = off)
    adam_betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    clip_grad_norm: float = 1.0
    accum_steps: int = 1  # batches whose gradients are summed into one update (per process)
    max_steps: int = 0  # 0 = no limit (counts updates)
    epochs: int = 0  # 0 = no limit
    max_time: float = 0.0  # seconds; 0 = no limit
    log_every: int = 50  # steps
    validate_every: int = 500  # steps
    dev_max_sentences: int = 0  # 0 = the whole dev set for BLEU
    save_every: int = 0  # also write last/ every N steps (0 = only at validation)
    save_every_minutes: float = 0.0  # also write last/ every N minutes of training (0 = off)
    keep: int = 2  # step checkpoints kept besides best/last
    max_nonfinite: int = 5  # stop after this many non-finite losses in a row (each one skips its update)
    seed: int = 1234
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (CUDA only)
    compile: bool = False  # pad batches to a few shapes, compile the step once per shape, fused Adam (mt.step); slower on a 2-core Xeon
    device: str = "auto"
    threads: int = 0  # 0 = all cores available to this process
    init_from: str = ""  # checkpoint whose weights, tokenizer and model section start the run (fine-tuning)


@dataclass
class DecodeConfig:
    """Search settings. ``length_penalty`` is alpha of Wu et al. (2016), eq. 14."""

    beam_size: int = 5
    length_penalty: float = 1.0
    max_length_ratio: float = 1.5  # output may be at most ratio * source length + max_length_offset
    max_length_offset: int = 10
    max_length: int = 256  # absolute cap in tokens
    n_best: int = 1  # hypotheses returned per sentence (with sampling: samples drawn per sentence)
    batch_tokens: int = 6144  # source tokens x beams per decoding batch (memory grows with it: see the README)
    no_repeat_ngram_size: int = 0  # never produce an n-gram of this size twice in one output (0 = off)
    sampling: bool = False  # draw each token (mt.search.Sampling) instead of greedy or beam search
    temperature: float = 1.0  # sampling: softmax(log p / temperature)
    top_k: int = 0  # sampling: only the k most probable tokens (0 = all)
    top_p: float = 1.0  # sampling: only the smallest set of tokens whose probability reaches p (1 = all)
    seed: int = 1  # sampling: the random draws (the same seed, input and batch give the same samples)
    max_source_tokens: int = 512  # longer inputs are truncated (and flagged): attention cost grows as S^2

    @property
    def hypotheses_per_sentence(self) -> int:
        """Rows a sentence takes in a decoding batch: its beams, or its samples."""
        return self.n_best if self.sampling else self.beam_size

    def with_overrides(self, **overrides: Any) -> "DecodeConfig":
        """A copy with the ``overrides`` that are not None (a command line's or a request's
        options; None: keep this setting), validated (``validate``: ``ConfigError``; a field
        that does not exist: ``TypeError``)."""
        decode = dataclasses.replace(self, **{key: value for key, value in overrides.items() if value is not None})
        decode.validate()
        return decode

    def validate(self) -> None:
        """Raise ``ConfigError`` for a beam size or maximum length below 1, a length penalty that is
        negative or not a number, an n-best outside 1..beam_size (with sampling: below 1), a
        temperature that is not positive, top-k below 0, top-p outside (0, 1], or a negative
        no-repeat n-gram size."""
        if self.no_repeat_ngram_size < 0:
            raise ConfigError(f"the no-repeat n-gram size must be >= 0 (0 = off), got {self.no_repeat_ngram_size}")
        if self.sampling:
            if not (math.isfinite(self.temperature) and self.temperature > 0):
                raise ConfigError(f"the sampling temperature must be a finite number > 0, got {self.temperature}")
            if self.top_k < 0 or not 0 < self.top_p <= 1:
                raise ConfigError(f"top-k must be >= 0 (0 = all) and top-p in (0, 1], got {self.top_k} and {self.top_p}")
            if self.n_best < 1:
                raise ConfigError(f"n-best (samples per sentence) must be at least 1, got {self.n_best}")
        if self.beam_size < 1:
            raise ConfigError(f"beam size must be at least 1, got {self.beam_size}")
        if self.max_source_tokens < 1:
            raise ConfigError(f"decode.max_source_tokens must be at least 1, got {self.max_source_tokens}")
        if self.max_length < 1:
            raise ConfigError(f"the maximum output length must be at least 1 token, got {self.max_length}")
        if not (math.isfinite(self.length_penalty) and self.length_penalty >= 0):
            raise ConfigError(f"the length penalty alpha must be a finite number >= 0 (0 = none), got {self.length_penalty}")
        if not self.sampling and not 0 < self.n_best <= self.beam_size:
            raise ConfigError(f"n-best must be in 1..beam size ({self.beam_size}), got {self.n_best}")


@dataclass
class RunConfig:
    """Everything that defines a training run; saved as ``config.json`` in every checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/YAML-ready); ``config_from_dict`` reverses it."""
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Raise ``ConfigError`` on values that cannot work together. The names of registered
        parts (architecture, attention, positions, RNN cell) are checked where they are registered,
        by ``mt.models.check_model_config``."""
        model, train = self.model, self.train
        if model.heads < 1 or model.d_model % model.heads:
            raise ConfigError(f"model.heads={model.heads} must divide model.d_model={model.d_model}")
        self.decode.validate()
        if train.cooldown_steps and not 0 < train.cooldown_steps <= train.max_steps:
            raise ConfigError(f"train.cooldown_steps={train.cooldown_steps} needs train.max_steps (--max-steps) "
                              f"of at least as many updates, got {train.max_steps}: the cooldown ends at max_steps")
        if train.accum_steps < 1:
            raise ConfigError(f"train.accum_steps must be at least 1, got {train.accum_steps}")
        if train.log_every < 1 or train.validate_every < 1:
            raise ConfigError("train.log_every and train.validate_every must be at least 1 step")
        if not 0.0 <= model.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {model.dropout}")
        if not 0.0 <= train.label_smoothing < 1.0:
            raise ConfigError(f"train.label_smoothing must be in [0, 1), got {train.label_smoothing}")
        if train.batch_tokens < 1 or train.learning_rate <= 0:
            raise ConfigError("train.batch_tokens and train.learning_rate must be positive")
        if train.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"train.precision must be auto|fp32|bf16|fp16, got {train.precision!r}")
        for name in ("terminology_rate", "terminology_substitute"):
            if not 0.0 <= getattr(self.data, name) <= 1.0:
                raise ConfigError(f"data.{name} must be between 0 and 1, got {getattr(self.data, name)}")
        if self.data.encoding_errors not in ("strict", "replace"):
            raise ConfigError(f"data.encoding_errors must be strict or replace, got {self.data.encoding_errors!r}")
        if self.data.model_type not in ("unigram", "bpe"):
            raise ConfigError(f"data.model_type must be unigram or bpe, got {self.data.model_type!r}")
        longest = max(self.data.max_length, self.decode.max_length, self.decode.max_source_tokens) + 1  # + BOS or EOS
        if model.positions == "learned" and model.max_positions < longest:
            raise ConfigError(f"model.max_positions={model.max_positions} is shorter than the longest sentence a run may meet, "
                              f"{longest} tokens (data.max_length, decode.max_length and decode.max_source_tokens, the source tokens "
                              f"translation keeps, plus BOS/EOS)")
        if model.embedding_dim < 1 or model.hidden_size < 2 or model.hidden_size % 2:
            raise ConfigError(
                f"model.embedding_dim must be positive and model.hidden_size a positive even number (the encoder gives "
                f"each direction half of it), got {model.embedding_dim} and {model.hidden_size}"
            )
        if model.local_window < 1:
            raise ConfigError(f"model.local_window must be at least 1, got {model.local_window}")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "decode": DecodeConfig}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a dataclass field annotation, allowing int -> float and list -> tuple."""
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typing.get_origin(annotation) is list:
        value = [value] if isinstance(value, str) else value
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list) or not all(isinstance(item, item_type) for item in value):
            raise ConfigError(f"{where} must be a {item_type.__name__} or a list of them, got {value!r}")
        return list(value)
    if typing.get_origin(annotation) is tuple:
        item_types = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)) or len(value) != len(item_types):
            raise ConfigError(f"{where} must be a list of {len(item_types)} numbers, got {value!r}")
        return tuple(_coerce(v, t, where) for v, t in zip(value, item_types))
    if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be of type {annotation.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _unknown_key(key: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(known)}."
    return ConfigError(f"unknown key {key!r} in {where}.{hint}")


def apply_overrides(config: RunConfig, overrides: dict[str, Any], source: str) -> RunConfig:
    """Return ``config`` updated by a nested dict ``{section: {key: value}}``.

    Raises ``ConfigError`` naming ``source`` for unknown sections/keys (with the closest
    known name) and for values of the wrong type.
    """
    for section_name, values in overrides.items():
        if section_name not in SECTIONS:
            raise _unknown_key(section_name, list(SECTIONS), source)
        if not isinstance(values, dict):
            raise ConfigError(f"section {section_name!r} in {source} must be a mapping of keys to values")
        section = getattr(config, section_name)
        hints = typing.get_type_hints(type(section))
        for key, value in values.items():
            if key not in hints:
                raise _unknown_key(key, list(hints), f"{source} [{section_name}]")
            setattr(section, key, _coerce(value, hints[key], f"{section_name}.{key} in {source}"))
    return config


def sectioned(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Settings named after their fields (``{"arch": "rnn", "max_steps": 100}``, as command-line
    options give them) as the ``{section: {key: value}}`` of ``apply_overrides``, leaving out those
    that are None (not given). Each goes to the first of data, model, train that has it
    (``joint_vocab`` to data); ``ConfigError`` for one that none has."""
    nested: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    for key, value in options.items():
        section = next((name for name in nested if key in typing.get_type_hints(SECTIONS[name])), None)
        if section is None:
            raise _unknown_key(key, [field for name in nested for field in typing.get_type_hints(SECTIONS[name])],
                               "command-line options")
        if value is not None:
            nested[section][key] = value
    return nested


def parse_duration(text: str) -> float:
    """'90s', '45m', '1.5h' or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text or "")
    if not match:
        raise ConfigError(f"cannot read duration {text!r}: use e.g. 90s, 45m or 1.5h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a nested dict; ``ConfigError`` if missing or malformed."""
    try:
        content = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections (data, model, train, decode)")
    return content


def available_presets() -> list[str]:
    """Names of the presets shipped in ``mt/presets``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The overrides of a named preset shipped in ``mt/presets``; ``ConfigError`` if unknown."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise _unknown_key(name, available_presets(), "presets")
    return load_yaml(path)


def build_config(preset: str | None, config_file: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Defaults < preset < YAML file < command-line overrides; validated."""
    config = RunConfig()
    if preset:
        apply_overrides(config, load_preset(preset), f"preset {preset!r}")
    if config_file:
        apply_overrides(config, load_yaml(config_file), str(config_file))
    apply_overrides(config, overrides, "command-line options")
    config.validate()
    return config


def config_from_dict(values: dict[str, Any], source: str) -> RunConfig:
    """Rebuild a ``RunConfig`` from ``RunConfig.to_dict()`` output (e.g. a checkpoint's config);
    ``ConfigError`` if ``values`` is no mapping."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source} must hold a mapping of sections (data, model, train, decode), got {values!r}")
    return apply_overrides(RunConfig(), values, source)
