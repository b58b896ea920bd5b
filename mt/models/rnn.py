"""Recurrent encoder-decoders with attention: Bahdanau et al. (2015) and Luong et al. (2015).

Encoder (both papers): embeddings -> a bidirectional GRU or LSTM of ``encoder_layers`` layers
with ``hidden_size / 2`` units per direction, run over packed sequences so that padding never
enters the recurrence. The encoder state of source word s is h_s = [fwd h_s; bwd h_s], (B, S, H).

Decoder, after Bahdanau et al. (2015), "Neural Machine Translation by Jointly Learning to Align
and Translate" (``attention: bahdanau``)::

    c_t = attention(s_{t-1}, h)                      eqs. 5-6, from the previous state
    s_t = RNN([E y_{t-1}; c_t], s_{t-1})             appendix A.2.2
    o_t = tanh(W_o [s_t; c_t; E y_{t-1}])            eq. 4's g (tanh in place of maxout)

or after Luong et al. (2015), "Effective Approaches to Attention-based Neural Machine
Translation" (``attention: luong-*``)::

    h_t = RNN([E y_{t-1}; o_{t-1}], h_{t-1})         input feeding, section 3.3 (o_0 = 0)
    c_t = attention(h_t, h)                          eqs. 7-8 or local-p, from the current state
    o_t = tanh(W_c [c_t; h_t])                       eq. 5, the attentional hidden state h~_t

and in both p(y_t | y_<t, x) = softmax(W_s o_t) (Luong eq. 6). A bridge initialises every decoder
layer from the top encoder layer's final states, s_0 = tanh(W_b [fwd h_S; bwd h_1]) (Bahdanau,
appendix A.2.2, uses bwd h_1 alone); LSTM cells start at zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mt.config import ModelConfig
from mt.models.attention import (
    BahdanauAttention,
    HardAttention,
    LuongConcatAttention,
    LuongDotAttention,
    LuongGeneralAttention,
    LuongLocalAttention,
    LuongMonotonicAttention,
    RecurrentAttention,
)
from mt.models.base import DecoderState, EncoderDecoder, embed_source, init_embedding, shares_embeddings
from mt.models.dropout import Dropout
from mt.tokenizer import PAD_ID

RNN_CLASSES = {"gru": nn.GRU, "lstm": nn.LSTM}
SOURCE_TENSORS = frozenset({"memory", "keys", "src_mask"})  # decoder-state tensors fixed per source sentence


@dataclass
class RecurrentState(DecoderState):
    """The recurrent decoder's tensors (``RecurrentDecoder``), batch first, before target position
    ``step``: those named in ``SOURCE_TENSORS`` hold one row per sentence, the others one row
    per hypothesis."""

    tensors: dict[str, torch.Tensor]
    step: int = 0

    def reorder(self, index: torch.Tensor, sentences: torch.Tensor | None, beams: int) -> "RecurrentState":
        tensors = {}
        for name, tensor in self.tensors.items():
            rows = sentences if name in SOURCE_TENSORS else index
            tensors[name] = tensor if rows is None else tensor.index_select(0, rows)
        return RecurrentState(tensors, self.step)


def _stacked_rnn(config: ModelConfig, input_size: int, hidden_size: int, layers: int, bidirectional: bool) -> nn.RNNBase:
    return RNN_CLASSES[config.rnn_type](
        input_size, hidden_size, num_layers=layers, batch_first=True, bidirectional=bidirectional,
        dropout=config.dropout if layers > 1 else 0.0,  # between layers only: a single layer has none
    )


class RecurrentEncoder(nn.Module):
    """Bidirectional GRU/LSTM over embedded source tokens, padding kept out by packing."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        per_direction = config.hidden_size // 2
        self.rnn = _stacked_rnn(config, config.embedding_dim, per_direction, config.encoder_layers, bidirectional=True)

    def forward(self, embedded: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """``embedded``: (B, S, E), ``src_mask``: (B, S) bool, real tokens first -> h (B, S, H), zero at padding."""
        src_lengths = src_mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(embedded, src_lengths, batch_first=True, enforce_sorted=False)
        states, _ = self.rnn(packed)
        memory, _ = pad_packed_sequence(states, batch_first=True, total_length=src_mask.size(1))
        return memory


def final_encoder_states(memory: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
    """[fwd h_S; bwd h_1] (B, H): the top encoder layer's forward state at each sentence's last real
    token and backward state at its first, read off the memory (B, S, H)."""
    half = memory.size(-1) // 2
    last = src_mask.sum(dim=1) - 1
    forward_final = memory[torch.arange(memory.size(0), device=memory.device), last, :half]
    return torch.cat([forward_final, memory[:, 0, half:]], dim=-1)


class RecurrentDecoder(nn.Module):
    """What both decoders share: a GRU/LSTM stack over [E y_{t-1}; x_t] with x_t of ``hidden_size``
    units (Bahdanau: the context; Luong: the previous attentional state), the bridge, the attention.

    The decoder state is a dict of batch-first tensors: ``hidden`` (and for LSTMs ``cell``)
    (B, L, H), ``memory`` (B', S, H), ``keys`` (B', S, A), ``src_mask`` (B', S), and whatever a
    subclass adds; B = B' except in beam search, where B = B' * K rows hold each sentence's K
    hypotheses. ``forward`` runs step t: embedded y_{t-1} (B, E) and t -> o_t (B, H), the new
    state, the attention weights (B, S).
    """

    def __init__(self, config: ModelConfig, attention: RecurrentAttention):
        super().__init__()
        self.layers, self.hidden_size = config.decoder_layers, config.hidden_size
        self.is_lstm = config.rnn_type == "lstm"
        input_size = config.embedding_dim + config.hidden_size
        self.rnn = _stacked_rnn(config, input_size, config.hidden_size, self.layers, bidirectional=False)
        self.bridge = nn.Linear(config.hidden_size, self.layers * config.hidden_size)  # W_b
        self.attention = attention
        self.dropout = Dropout(config.dropout)

    def init_state(self, memory: torch.Tensor, src_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = torch.tanh(self.bridge(final_encoder_states(memory, src_mask)))
        tensors = {
            "memory": memory,
            "keys": self.attention.project_keys(memory),
            "src_mask": src_mask,
            "hidden": hidden.view(memory.size(0), self.layers, self.hidden_size),
        }
        if self.is_lstm:
            tensors["cell"] = torch.zeros_like(tensors["hidden"])
        return tensors

    def recur(self, rnn_input: torch.Tensor, tensors: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step of the stack: ``rnn_input`` (B, E + H) -> top-layer state (B, H), updated state dict."""
        # nn.GRU / nn.LSTM keep the layers first, (L, B, H); the decoder state keeps the batch first.
        hidden = tensors["hidden"].transpose(0, 1).contiguous()
        if self.is_lstm:
            cell = tensors["cell"].transpose(0, 1).contiguous()
            output, (hidden, cell) = self.rnn(rnn_input.unsqueeze(1), (hidden, cell))
            updated = {"hidden": hidden.transpose(0, 1), "cell": cell.transpose(0, 1)}
        else:
            output, hidden = self.rnn(rnn_input.unsqueeze(1), hidden)
            updated = {"hidden": hidden.transpose(0, 1)}
        return output[:, 0], {**tensors, **updated}

    def attend(self, query: torch.Tensor, tensors: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Context (B, H) and weights (B, S) for the decoder state ``query`` (B, H) at target position ``step``."""
        return self.attention(query, tensors["keys"], tensors["memory"], tensors["src_mask"], step)


class BahdanauDecoder(RecurrentDecoder):
    """Attention from the previous state s_{t-1}; the context feeds the RNN and the readout."""

    def __init__(self, config: ModelConfig, attention: RecurrentAttention):
        super().__init__(config, attention)
        self.readout = nn.Linear(2 * config.hidden_size + config.embedding_dim, config.hidden_size)  # W_o

    def forward(
        self, embedded: torch.Tensor, tensors: dict[str, torch.Tensor], step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        context, weights = self.attend(tensors["hidden"][:, -1], tensors, step)
        state, tensors = self.recur(torch.cat([embedded, context], dim=-1), tensors)
        output = torch.tanh(self.readout(torch.cat([state, context, embedded], dim=-1)))
        return self.dropout(output), tensors, weights


class LuongDecoder(RecurrentDecoder):
    """Attention from the current state h_t; the attentional state h~_t is fed to the next step."""

    def __init__(self, config: ModelConfig, attention: RecurrentAttention):
        super().__init__(config, attention)
        self.combine = nn.Linear(2 * config.hidden_size, config.hidden_size, bias=False)  # W_c

    def init_state(self, memory: torch.Tensor, src_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        tensors = super().init_state(memory, src_mask)
        tensors["attentional"] = memory.new_zeros(memory.size(0), self.hidden_size)
        return tensors

    def forward(
        self, embedded: torch.Tensor, tensors: dict[str, torch.Tensor], step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        state, tensors = self.recur(torch.cat([embedded, tensors["attentional"]], dim=-1), tensors)
        context, weights = self.attend(state, tensors, step)
        attentional = self.dropout(torch.tanh(self.combine(torch.cat([context, state], dim=-1))))
        return attentional, {**tensors, "attentional": attentional}, weights


@dataclass(frozen=True)
class Mechanism:
    """An RNN attention mechanism: ``build`` makes it from the model config (decoder and encoder
    states both of ``hidden_size`` units), ``decoder`` is the decoder it belongs to, ``summary``
    one line for ``mt attentions``."""

    build: Callable[[ModelConfig], RecurrentAttention]
    decoder: type[RecurrentDecoder]
    summary: str


def _general(config: ModelConfig) -> LuongGeneralAttention:
    return LuongGeneralAttention(config.hidden_size, config.hidden_size)


# The one registry of RNN attentions: config validation, the command line and the tests read it.
ATTENTIONS: dict[str, Mechanism] = {
    "bahdanau": Mechanism(lambda c: BahdanauAttention(c.hidden_size, c.hidden_size), BahdanauDecoder,
                          "soft, global, additive score of the previous state (Bahdanau et al. 2015)"),
    "luong-dot": Mechanism(lambda c: LuongDotAttention(), LuongDecoder, "soft, global, dot score (Luong et al. 2015, eq. 8)"),
    "luong-general": Mechanism(_general, LuongDecoder, "soft, global, bilinear score h_t^T W_a h_s (Luong et al. 2015, eq. 8)"),
    "luong-concat": Mechanism(lambda c: LuongConcatAttention(c.hidden_size, c.hidden_size), LuongDecoder,
                              "soft, global, concat score v^T tanh(W [h_t; h_s]) (Luong et al. 2015, eq. 8)"),
    "luong-local": Mechanism(lambda c: LuongLocalAttention(_general(c), c.hidden_size, c.local_window), LuongDecoder,
                             "soft, local-p: predicted position p_t, window +-D, Gaussian (Luong et al. 2015, sec. 3.2)"),
    "luong-local-m": Mechanism(lambda c: LuongMonotonicAttention(_general(c), c.local_window), LuongDecoder,
                               "soft, local-m: window +-D around p_t = t (Luong et al. 2015, sec. 3.2)"),
    "hard": Mechanism(lambda c: HardAttention(_general(c)), LuongDecoder,
                      "hard: one source position per step, straight-through Gumbel-softmax (Xu et al. 2015; Jang et al. 2017)"),
    "hard-reinforce": Mechanism(lambda c: HardAttention(_general(c), estimator="reinforce"), LuongDecoder,
                                "hard: one source position per step, REINFORCE with a baseline (Xu et al. 2015, sec. 4.1)"),
}


def build_attention(config: ModelConfig) -> RecurrentAttention:
    """The attention named by ``config.attention`` (a key of ``ATTENTIONS``, checked by ``mt.models.check_model_config``)."""
    return ATTENTIONS[config.attention].build(config)


class RNNEncoderDecoder(EncoderDecoder):
    """Recurrent encoder-decoder with attention; see ``mt.models.base`` for the interface and shapes.

    Memory is (B, S, H) with H = ``hidden_size``; the attention returned by ``decode_step`` is
    (B, 1, 1, S). Source and target share one embedding matrix when the vocabulary is joint and
    ``tie_embeddings`` is set, and the output layer W_s shares it too when also
    ``embedding_dim == hidden_size``.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.src_embedding = init_embedding(nn.Embedding(config.src_vocab_size, config.embedding_dim, padding_idx=PAD_ID))
        self.tgt_embedding = self.src_embedding if shares_embeddings(config) else init_embedding(
            nn.Embedding(config.tgt_vocab_size, config.embedding_dim, padding_idx=PAD_ID))
        self.dropout = Dropout(config.dropout)
        self.encoder = RecurrentEncoder(config)
        self.decoder = ATTENTIONS[config.attention].decoder(config, build_attention(config))
        self.output = nn.Linear(config.hidden_size, config.tgt_vocab_size, bias=False)  # W_s
        if config.tie_embeddings and config.embedding_dim == config.hidden_size:
            self.output.weight = self.tgt_embedding.weight

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.dropout(embed_source(src, self.src_embedding, self.tgt_embedding)), src_mask)

    def init_state(self, memory: torch.Tensor, src_mask: torch.Tensor) -> RecurrentState:
        return RecurrentState(self.decoder.init_state(memory, src_mask))

    def decode_step(self, prev_tokens: torch.Tensor, state: RecurrentState) -> tuple[torch.Tensor, RecurrentState, torch.Tensor]:
        output, tensors, weights = self.decoder(self.dropout(self.tgt_embedding(prev_tokens)), state.tensors, state.step)
        logits = self.output(output)
        return F.log_softmax(logits.float(), dim=-1), RecurrentState(tensors, state.step + 1), weights[:, None, None, :]

    def policy_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The REINFORCE surrogate of a ``hard-reinforce`` attention for the steps of the last
        ``features`` call, the reward of each sentence being its mean log p(y_t) under the current
        output layer (computed without gradient); 0 for the other attentions."""
        attention = self.decoder.attention
        if not getattr(attention, "trace", None):
            return super().policy_loss(features, labels)
        mask = labels != PAD_ID
        with torch.no_grad():
            log_probs = F.log_softmax(self.output(features).float(), dim=-1).gather(-1, labels[..., None])[..., 0]
            rewards = (log_probs * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)
        return attention.policy_loss(rewards, mask)

    def features(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the decoder steps through ``tgt_in`` (B, T) as ``decode_step`` would
        (every step needs the previous one's state); the output layer then runs once on all T outputs."""
        if getattr(self.decoder.attention, "trace", None):  # a REINFORCE trace nobody took (policy_loss)
            self.decoder.attention.trace.clear()
        tensors = self.decoder.init_state(self.encode(src, src_mask), src_mask)
        embedded = self.dropout(self.tgt_embedding(tgt_in))
        outputs = []
        for position in range(tgt_in.size(1)):
            output, tensors, _ = self.decoder(embedded[:, position], tensors, position)
            outputs.append(output)
        return torch.stack(outputs, dim=1)
