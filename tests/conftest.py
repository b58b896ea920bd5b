"""Shared fixtures: a tiny synthetic corpus and tokenizer, and the path to the real corpora."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from mt.tokenizer import train_tokenizer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MULTI30K = SHARED_DATA / "multi30k"
needs_multi30k = pytest.mark.skipif(
    not (MULTI30K / "train.en").exists(), reason=f"Multi30k not found at {MULTI30K} (the shared data folder is absent)"
)

torch.set_num_threads(1)

SYMBOLS = "abcdefghij"


def synthetic_sentences(count: int, seed: int, min_length: int = 3, max_length: int = 8) -> list[str]:
    """Random 'sentences' of single-letter words, for copy/reverse tasks."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(SYMBOLS) for _ in range(rng.randint(min_length, max_length))) for _ in range(count)]


def write_pair(directory: Path, name: str, sources: list[str], targets: list[str], src: str = "en", tgt: str = "de") -> str:
    """Write PREFIX.src / PREFIX.tgt files and return PREFIX."""
    (directory / f"{name}.{src}").write_text("".join(s + "\n" for s in sources), encoding="utf-8")
    (directory / f"{name}.{tgt}").write_text("".join(t + "\n" for t in targets), encoding="utf-8")
    return str(directory / name)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Tokenizers and tokenized corpora go to a fresh cache directory, not ~/.cache/mt."""
    monkeypatch.setenv("MT_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def tiny_tokenizer():
    sentences = synthetic_sentences(400, seed=0)
    return train_tokenizer(sentences, [s.upper() for s in sentences], "en", "de", vocab_size=40, model_type="bpe")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer):
    """A checkpoint of an untrained tiny Transformer (enough to exercise loading and decoding)."""
    from mt.checkpoint import write_checkpoint
    from mt.config import RunConfig
    from mt.models import build_model

    torch.manual_seed(0)
    config = RunConfig()
    config.data.src_lang, config.data.tgt_lang = "en", "de"
    config.model.d_model, config.model.ff_dim, config.model.encoder_layers, config.model.decoder_layers = 32, 64, 1, 1
    config.model.src_vocab_size = config.model.tgt_vocab_size = tiny_tokenizer.src_vocab_size
    config.decode.max_length = 12
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", build_model(config.model), tiny_tokenizer, config)
