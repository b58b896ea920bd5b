"""Shared fixtures and helpers: a tiny synthetic corpus and tokenizer, tiny models, a tiny training run,
and the path to the real corpora."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

import torch.nn.functional as F

from mt.config import ModelConfig, RunConfig, build_config
from mt.models import build_model
from mt.models.base import EncoderDecoder
from mt.plot import read_train_log
from mt.tokenizer import PAD_ID, train_tokenizer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MULTI30K = SHARED_DATA / "multi30k"
needs_multi30k = pytest.mark.skipif(
    not (MULTI30K / "train.en").exists(), reason=f"Multi30k not found at {MULTI30K} (the shared data folder is absent)"
)

torch.set_num_threads(1)

SYMBOLS = "abcdefghij"
RNN_VOCAB = 20


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


def tiny_transformer(pre_norm=True, tie=True, vocab=30, positions="sinusoidal") -> EncoderDecoder:
    """An untrained 2+2-layer Transformer (d_model 32, 4 heads, no dropout) in eval mode, seed 0."""
    torch.manual_seed(0)
    config = ModelConfig(d_model=32, ff_dim=64, heads=4, encoder_layers=2, decoder_layers=2, dropout=0.0,
                         pre_norm=pre_norm, tie_embeddings=tie, src_vocab_size=vocab, tgt_vocab_size=vocab,
                         positions=positions, max_positions=16)
    return build_model(config).eval()


def tiny_rnn_config(rnn_type: str, attention: str, vocab_size: int = RNN_VOCAB, **overrides) -> ModelConfig:
    settings = dict(arch="rnn", rnn_type=rnn_type, attention=attention, embedding_dim=8, hidden_size=8,
                    encoder_layers=2, decoder_layers=2, local_window=2, src_vocab_size=vocab_size, tgt_vocab_size=vocab_size)
    return ModelConfig(**{**settings, **overrides})


def tiny_rnn(rnn_type: str, attention: str, **overrides) -> EncoderDecoder:
    """An untrained 2+2-layer RNN (8 units) with ``attention`` in eval mode, seed 0."""
    torch.manual_seed(0)
    return build_model(tiny_rnn_config(rnn_type, attention, **overrides)).eval()


def source_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """src (6, 7) of ids below 30, rows 3 and 5 padded, and its src_mask."""
    torch.manual_seed(1)
    src = torch.randint(4, 30, (6, 7))
    src[3, 4:] = 0
    src[5, 2:] = 0
    return src, src != 0


def tiny_run_config(tmp_path, **train_overrides) -> RunConfig:
    """A run that trains a 2+2-layer Transformer to copy synthetic sentences (written to ``tmp_path``)."""
    sources = synthetic_sentences(1200, seed=1)
    dev = synthetic_sentences(60, seed=2)
    overrides = {
        "data": {"train": write_pair(tmp_path, "train", sources, sources), "dev": write_pair(tmp_path, "dev", dev, dev),
                 "vocab_size": 30, "model_type": "bpe"},
        "model": {"d_model": 64, "ff_dim": 128, "heads": 4, "encoder_layers": 2, "decoder_layers": 2, "dropout": 0.0},
        "train": {"batch_tokens": 400, "learning_rate": 0.003, "warmup_steps": 50, "log_every": 25,
                  "validate_every": 100, "precision": "fp32", "threads": 1, **train_overrides},
    }
    return build_config(None, None, overrides)


def log_events(run_dir: Path, kind: str) -> list[dict]:
    """The events of one kind ("train", "validation", ...) in a run's training log."""
    return [event for event in read_train_log(run_dir) if event["event"] == kind]


def loss_inputs(dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """features (3, 7, 16), output weight (50, 16), labels (3, 7) with padding in two rows."""
    torch.manual_seed(0)
    features = torch.randn(3, 7, 16, dtype=dtype, requires_grad=True)
    weight = torch.randn(50, 16, dtype=dtype, requires_grad=True)
    labels = torch.randint(1, 50, (3, 7))
    labels[0, 4:] = labels[2, 1:] = PAD_ID
    return features, weight, labels


def reference_loss(features, weight, labels, epsilon) -> torch.Tensor:
    """The label-smoothed loss summed over tokens as torch's cross_entropy computes it from the full logits."""
    logits = (features @ weight.T).flatten(0, 1)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # as training casts bf16 logits
    return F.cross_entropy(logits, labels.flatten(), ignore_index=PAD_ID, label_smoothing=epsilon, reduction="sum")
