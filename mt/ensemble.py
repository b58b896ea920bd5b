"""An ensemble of models decoded as one: the mean of their log-probabilities at every step.

``Ensemble`` implements the ``EncoderDecoder`` decoding interface over several models that share
one vocabulary, so that greedy, beam search and sampling (``mt.search``) run on it unchanged.
Its score of a token is (1/M) sum_m log p_m(y_t | y_<t, x), the log-linear combination that Marian
uses (fairseq averages the probabilities instead); the attention it returns is its first model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mt.errors import ConfigError
from mt.models.base import DecoderState, EncoderDecoder


@dataclass
class EnsembleState(DecoderState):
    """The states of an ensemble's models, one each, in the order of its models: search reorders
    them all at once."""

    members: list[DecoderState]

    def reorder(self, index: torch.Tensor, sentences: torch.Tensor | None, beams: int) -> "EnsembleState":
        return EnsembleState([state.reorder(index, sentences, beams) for state in self.members])


class Ensemble(EncoderDecoder):
    """Several models behind one ``encode`` / ``init_state`` / ``decode_step``.

    ``encode`` returns the list of the models' memories (each (B, S, D_m)); the decoder state is
    an ``EnsembleState``, every model's own state.
    Raises ``ConfigError`` for fewer than two models or models whose output vocabularies differ
    in size (the caller checks that the tokenizers are the same).
    """

    def __init__(self, models: list[EncoderDecoder]):
        super().__init__()
        if len(models) < 2:
            raise ConfigError("an ensemble needs at least two models")
        sizes = {model.output.out_features for model in models}
        if len(sizes) > 1:
            raise ConfigError(f"the models of an ensemble must share one target vocabulary; their sizes are {sorted(sizes)}")
        self.models = torch.nn.ModuleList(models)
        self.output = models[0].output

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        return [model.encode(src, src_mask) for model in self.models]

    def init_state(self, memory: list[torch.Tensor], src_mask: torch.Tensor) -> EnsembleState:  # type: ignore[override]
        return EnsembleState([model.init_state(member_memory, src_mask) for model, member_memory in zip(self.models, memory)])

    def decode_step(self, prev_tokens: torch.Tensor, state: EnsembleState) -> tuple[torch.Tensor, EnsembleState, torch.Tensor]:
        """Mean log-probabilities (B, V) float32, the next state, the first model's attention (B, L, H, S)."""
        total, members, first_attention = None, [], None
        for model, member_state in zip(self.models, state.members):
            log_probs, member_state, attention = model.decode_step(prev_tokens, member_state)
            total = log_probs if total is None else total + log_probs
            members.append(member_state)
            first_attention = attention if first_attention is None else first_attention
        return total / len(self.models), EnsembleState(members), first_attention

    def features(self, src, src_mask, tgt_in):
        raise NotImplementedError("an ensemble decodes; it is not trained")
