"""Model construction: ``build_model(ModelConfig) -> EncoderDecoder``, and the check of the names a
model configuration takes from the registries (``ARCHITECTURES`` here, ``rnn.ATTENTIONS``,
``rnn.RNN_CLASSES``, ``transformer.POSITIONS``)."""

from mt.config import ModelConfig
from mt.errors import ConfigError
from mt.models.base import DecoderState, EncoderDecoder
from mt.models.rnn import ATTENTIONS, RNN_CLASSES, RNNEncoderDecoder
from mt.models.transformer import POSITIONS, Transformer

ARCHITECTURES = {"transformer": Transformer, "rnn": RNNEncoderDecoder}


def check_model_config(config: ModelConfig) -> None:
    """Raise ``ConfigError`` for a name in ``config`` that no registry has: ``arch``,
    ``attention``, ``positions`` or ``rnn_type``; the message lists the names there are."""
    for field, registry in (("arch", ARCHITECTURES), ("attention", ATTENTIONS), ("positions", POSITIONS),
                            ("rnn_type", RNN_CLASSES)):
        if getattr(config, field) not in registry:
            raise ConfigError(f"model.{field} must be one of {', '.join(registry)}, got {getattr(config, field)!r}")


def build_model(config: ModelConfig) -> EncoderDecoder:
    """Instantiate the architecture named by ``config.arch``. Raises ``ConfigError`` as
    ``check_model_config`` does, and when the vocabulary sizes are unset."""
    check_model_config(config)
    if config.src_vocab_size < 4 or config.tgt_vocab_size < 4:
        raise ConfigError("model vocabulary sizes are unset: build the model from a tokenizer")
    return ARCHITECTURES[config.arch](config)


__all__ = ["build_model", "check_model_config", "DecoderState", "EncoderDecoder", "ARCHITECTURES"]
