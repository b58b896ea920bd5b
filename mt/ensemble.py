"""An ensemble of models decoded as one: the mean of their log-probabilities at every step.

``Ensemble`` implements the ``EncoderDecoder`` decoding interface over several models that share
one vocabulary, so that greedy, beam search and sampling (``mt.search``) run on it unchanged.
Its score of a token is (1/M) sum_m log p_m(y_t | y_<t, x), the log-linear combination that Marian
uses (fairseq averages the probabilities instead); the attention it returns is its first model's.
"""

from __future__ import annotations

import torch

from mt.errors import ConfigError
from mt.models.base import DecoderState, EncoderDecoder


class Ensemble(EncoderDecoder):
    """Several models behind one ``encode`` / ``init_state`` / ``decode_step``.

    ``encode`` returns the list of the models' memories (each (B, S, D_m)); the decoder state
    holds every model's tensors, named ``m{i}.{name}``, so that search reorders them all at once.
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

    def init_state(self, memory: list[torch.Tensor], src_mask: torch.Tensor) -> DecoderState:  # type: ignore[override]
        tensors, static, growing = {}, set(), set()
        for i, (model, member_memory) in enumerate(zip(self.models, memory)):
            state = model.init_state(member_memory, src_mask)
            tensors.update({f"m{i}.{name}": tensor for name, tensor in state.tensors.items()})
            static.update(f"m{i}.{name}" for name in state.static)
            growing.update(f"m{i}.{name}" for name in state.growing)
        return DecoderState(tensors, step=0, static=frozenset(static), growing=frozenset(growing))

    def _member_state(self, i: int, state: DecoderState) -> DecoderState:
        prefix = f"m{i}."

        def own(names):
            return frozenset(name[len(prefix):] for name in names if name.startswith(prefix))

        tensors = {name[len(prefix):]: tensor for name, tensor in state.tensors.items() if name.startswith(prefix)}
        return DecoderState(tensors, state.step, own(state.static), state.beams, own(state.growing), state.rows)

    def decode_step(self, prev_tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Mean log-probabilities (B, V) float32, the next state, the first model's attention (B, L, H, S)."""
        total, tensors, first_attention = None, {}, None
        for i, model in enumerate(self.models):
            log_probs, member_state, attention = model.decode_step(prev_tokens, self._member_state(i, state))
            total = log_probs if total is None else total + log_probs
            tensors.update({f"m{i}.{name}": tensor for name, tensor in member_state.tensors.items()})
            first_attention = attention if first_attention is None else first_attention
        return total / len(self.models), state.advance(tensors), first_attention

    def features(self, src, src_mask, tgt_in):
        raise NotImplementedError("an ensemble decodes; it is not trained")
