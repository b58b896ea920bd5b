"""Model construction: ``build_model(ModelConfig) -> EncoderDecoder``."""

from mt.config import ModelConfig
from mt.errors import ConfigError
from mt.models.base import DecoderState, EncoderDecoder
from mt.models.rnn import RNNEncoderDecoder
from mt.models.transformer import Transformer

ARCHITECTURES = {"transformer": Transformer, "rnn": RNNEncoderDecoder}


def build_model(config: ModelConfig) -> EncoderDecoder:
    """Instantiate the architecture named by ``config.arch``; ``ConfigError`` if unknown."""
    if config.arch not in ARCHITECTURES:
        raise ConfigError(f"unknown model.arch {config.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if config.src_vocab_size < 4 or config.tgt_vocab_size < 4:
        raise ConfigError("model vocabulary sizes are unset: build the model from a tokenizer")
    return ARCHITECTURES[config.arch](config)


__all__ = ["build_model", "DecoderState", "EncoderDecoder", "ARCHITECTURES"]
