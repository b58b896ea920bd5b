"""The engines that translate a checkpoint: ``mt``'s own decoder (``mt.translate.Translator``) or
CTranslate2 running an export of it (``mt.ct2.CT2Translator``), loaded by one call; both are a
``mt.translate.TranslationEngine``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mt.ct2 import CT2Translator
from mt.errors import CheckpointError, ConfigError
from mt.translate import TranslationEngine, Translator

ENGINES = ("mt", "ctranslate2")


def load_translator(checkpoints: Sequence[Path], engine: str = "mt", device: str = "auto", precision: str = "fp32",
                    quantize: str | None = None, threads: int = 0, attention: bool = False,
                    src: str | None = None, tgt: str | None = None) -> TranslationEngine:
    """A translator for ``checkpoints``: with ``engine="mt"``, ``Translator.from_checkpoint``
    (several checkpoints make an ensemble); with ``"ctranslate2"``, one directory written by ``mt
    export --format ctranslate2``, run on ``threads`` CTranslate2 threads (0: all cores available).
    ``mt``'s engine runs on torch's threads, which the caller sets (``mt.device.set_threads``):
    loading changes no process setting. ``attention`` says whether attention will be asked for.
    ``src``/``tgt``: the language pair the caller expects (None: any; ``check_language_pair``).

    Raises ``ConfigError`` for an unknown engine, and for CTranslate2 with several checkpoints,
    attention, ``quantize`` or a precision other than fp32 (it quantizes at export); what the
    engine's loader raises (``CheckpointError``, ``ConfigError``); ``CheckpointError`` for another
    language pair than ``src``->``tgt``."""
    if engine == "ctranslate2":
        if len(checkpoints) > 1 or attention or quantize or precision != "fp32":
            raise ConfigError("--engine ctranslate2 takes one exported --checkpoint, without attention options, --quantize "
                              "or --precision (quantize at export: mt export --format ctranslate2 --quantization int8)")
        translator: TranslationEngine = CT2Translator(checkpoints[0], device=device, threads=threads)
    elif engine == "mt":
        translator = Translator.from_checkpoint(checkpoints, device=device, precision=precision, quantize=quantize)
    else:
        raise ConfigError(f"--engine must be {' or '.join(ENGINES)}, got {engine!r}")
    check_language_pair(translator, src, tgt, checkpoints[0])
    return translator


def check_language_pair(translator: TranslationEngine, src: str | None, tgt: str | None, where: Path) -> None:
    """Raise ``CheckpointError`` when ``translator`` (loaded from ``where``) was trained for
    another language pair than ``src``->``tgt`` (None: any)."""
    trained = (translator.tokenizer.src_lang, translator.tokenizer.tgt_lang)
    if (src and src != trained[0]) or (tgt and tgt != trained[1]):
        raise CheckpointError(f"{where} translates {trained[0]}->{trained[1]}, not {src or trained[0]}->{tgt or trained[1]}: "
                              "pick a checkpoint trained for that pair")
