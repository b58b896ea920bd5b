"""The Transformer encoder-decoder (Vaswani et al., 2017, "Attention Is All You Need").

Pre-LN (Xiong et al., 2020) or post-LN (the paper's original) residual blocks, sinusoidal or
learned positional encodings (section 3.5; ``POSITIONS``), embeddings scaled by sqrt(d_model)
(section 3.4) and, with a joint vocabulary, one embedding matrix shared by source, target and
output layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mt.config import ModelConfig
from mt.models.attention import MultiHeadAttention
from mt.models.base import DecoderState, EncoderDecoder, embed_source, init_embedding, shares_embeddings
from mt.models.dropout import Dropout
from mt.models.masks import heads_mask
from mt.tokenizer import PAD_ID


class SinusoidalPositionalEncoding(nn.Module):
    """PE(pos, 2i) = sin(pos / 10000^(2i/D)), PE(pos, 2i+1) = cos(pos / 10000^(2i/D)) (section 3.5)."""

    def __init__(self, d_model: int, max_length: int = 1024):
        super().__init__()
        self.d_model = d_model
        self.register_buffer("table", self._table(max_length), persistent=False)

    def _table(self, length: int) -> torch.Tensor:
        position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, self.d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / self.d_model))
        table = torch.zeros(length, self.d_model)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)
        return table

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        """Encodings of positions ``offset .. offset+length-1``: (length, D)."""
        if offset + length > self.table.size(0):
            self.table = self._table(2 * (offset + length)).to(self.table.device)
        return self.table[offset : offset + length]


class LearnedPositionalEmbedding(nn.Module):
    """A learned table of position vectors, PE(pos) = P[pos], P of shape (``max_positions``, D),
    drawn from N(0, 1/D) like the token embeddings (Gehring et al., 2017, section 3.1; Vaswani et
    al., 2017, section 3.5, found it "nearly identical" to the sinusoids). ``forward`` raises
    ``ValueError`` for positions past the table: it cannot encode what it never learned."""

    def __init__(self, d_model: int, max_positions: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_positions, d_model) * d_model**-0.5)

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        """Vectors of positions ``offset .. offset+length-1``: (length, D)."""
        if offset + length > self.weight.size(0):
            raise ValueError(f"position {offset + length - 1} is past the learned position table of {self.weight.size(0)} "
                             f"positions (model.max_positions): use shorter inputs or outputs")
        return self.weight[offset : offset + length]


# The one registry of Transformer position encodings (model.positions).
POSITIONS = {
    "sinusoidal": lambda config: SinusoidalPositionalEncoding(config.d_model),
    "learned": lambda config: LearnedPositionalEmbedding(config.d_model, config.max_positions),
}


class FeedForward(nn.Sequential):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 (section 3.3). Dropout is applied to its output by the
    residual block, as in section 5.4, not inside it."""

    def __init__(self, d_model: int, ff_dim: int):
        super().__init__(nn.Linear(d_model, ff_dim), nn.ReLU(), nn.Linear(ff_dim, d_model))


class Residual(nn.Module):
    """x + Dropout(sublayer(LN(x))) when pre-LN; LN(x + Dropout(sublayer(x))) when post-LN."""

    def __init__(self, d_model: int, dropout: float, pre_norm: bool):
        super().__init__()
        self.norm, self.dropout, self.pre_norm = nn.LayerNorm(d_model), Dropout(dropout), pre_norm

    def forward(self, x: torch.Tensor, sublayer) -> torch.Tensor:
        if self.pre_norm:
            return x + self.dropout(sublayer(self.norm(x)))
        return self.norm(x + self.dropout(sublayer(x)))


class EncoderLayer(nn.Module):
    """Self-attention over the source, then a feed-forward block."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.self_attention = MultiHeadAttention(config.d_model, config.heads, config.attention_dropout)
        self.feed_forward = FeedForward(config.d_model, config.ff_dim)
        self.attention_block = Residual(config.d_model, config.dropout, config.pre_norm)
        self.feed_forward_block = Residual(config.d_model, config.dropout, config.pre_norm)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x: (B, S, D), key_mask: (B, 1, 1, S) bool."""
        def attend(h: torch.Tensor) -> torch.Tensor:
            return self.self_attention(h, *self.self_attention.project_kv(h), mask=key_mask)[0]

        return self.feed_forward_block(self.attention_block(x, attend), self.feed_forward)


def append_step(cache: torch.Tensor, step: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """Rows ``rows`` (N',) of ``cache`` (N, H, t, D/H) (all, in order, when None) with ``step``
    (N', H, 1, D/H) appended: (N', H, t + 1, D/H), in one copy (``index_select`` then ``cat``
    copies the cache twice: 1.6-2x the time for (1,000, 4, 10, 64) fp32 on one core); ``step``
    itself when the cache is empty (the first step)."""
    length = cache.size(2)
    if length == 0:
        return step
    extended = cache.new_empty(step.size(0), cache.size(1), length + 1, cache.size(3))
    if rows is None:
        extended[:, :, :length].copy_(cache)
    else:
        torch.index_select(cache, 0, rows, out=extended[:, :, :length])
    extended[:, :, length:].copy_(step)
    return extended


@dataclass
class LayerCache:
    """The keys and values of one attention of a decoder layer, each (N, H, L, D/H): the
    cross-attention's, of the source (N = sentences, L = S), or the self-attention's, of the
    target so far (N = hypotheses, L = steps so far)."""

    key: torch.Tensor
    value: torch.Tensor

    def index_select(self, rows: torch.Tensor) -> "LayerCache":
        return LayerCache(self.key.index_select(0, rows), self.value.index_select(0, rows))

    def append(self, key: torch.Tensor, value: torch.Tensor, rows: torch.Tensor | None) -> "LayerCache":
        """Rows ``rows`` (N',) of the cache (all, in order, when None) with one step's ``key`` and
        ``value`` (N', H, 1, D/H) appended (``append_step``)."""
        return LayerCache(append_step(self.key, key, rows), append_step(self.value, value, rows))


@dataclass
class DecoderCache(DecoderState):
    """The decoder's state before target position ``step`` (``Transformer.init_state``).

    Per sentence (B' rows): ``key_mask`` (B', 1, 1, S), the source padding mask
    (``mt.models.masks.heads_mask``), and per decoder layer ``cross``, the cross-attention's keys
    and values of the source, projected once.

    Per hypothesis (``beams`` consecutive rows per sentence): per decoder layer ``past``, the
    self-attention's keys and values of the target so far, which gain a position at every step.
    ``reorder`` leaves them as they are and keeps the hypotheses' rows of them in ``rows`` (None:
    all, in order), which the next step applies as it extends them (``LayerCache.append``): one
    copy of a cache per step instead of two.
    """

    key_mask: torch.Tensor
    cross: list[LayerCache]
    past: list[LayerCache]
    step: int = 0
    beams: int = 1
    rows: torch.Tensor | None = None

    def reorder(self, index: torch.Tensor, sentences: torch.Tensor | None, beams: int) -> "DecoderCache":
        key_mask, cross = self.key_mask, self.cross
        if sentences is not None:
            key_mask, cross = key_mask.index_select(0, sentences), [layer.index_select(sentences) for layer in cross]
        rows = index if self.rows is None else self.rows.index_select(0, index)
        return DecoderCache(key_mask, cross, self.past, self.step, beams, rows)


class DecoderLayer(nn.Module):
    """Causal self-attention over the target so far, cross-attention to the source, feed-forward."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.self_attention = MultiHeadAttention(config.d_model, config.heads, config.attention_dropout)
        self.cross_attention = MultiHeadAttention(config.d_model, config.heads, config.attention_dropout)
        self.feed_forward = FeedForward(config.d_model, config.ff_dim)
        self.self_block = Residual(config.d_model, config.dropout, config.pre_norm)
        self.cross_block = Residual(config.d_model, config.dropout, config.pre_norm)
        self.feed_forward_block = Residual(config.d_model, config.dropout, config.pre_norm)

    def forward(
        self,
        x: torch.Tensor,
        cross: LayerCache,
        key_mask: torch.Tensor,
        past: LayerCache | None = None,
        beams: int = 1,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, LayerCache | None, torch.Tensor | None]:
        """x: (B, T, D); ``cross`` (the cross-attention's keys and values) and ``key_mask``
        (B', 1, 1, S) have one row per sentence. Without ``past``: teacher forcing under the causal
        mask; returns (B, T, D), None, None. With ``past``, the self-attention's cache
        (incremental decoding, T = 1, x holding ``beams`` consecutive hypotheses per sentence):
        appends this step's keys and values to rows ``rows`` (B,) of it (``DecoderCache.rows``)
        and returns the output (B, 1, D), the extended cache and the cross-attention weights
        (B, H, 1, S)."""
        weights = present = None

        def self_attend(h: torch.Tensor) -> torch.Tensor:
            nonlocal present
            keys, values = self.self_attention.project_kv(h)
            if past is None:
                return self.self_attention(h, keys, values, causal=True)[0]
            dtype = cross.key.dtype  # init_state chose it
            present = past.append(keys.to(dtype), values.to(dtype), rows)
            return self.self_attention(h, present.key, present.value)[0]

        def cross_attend(h: torch.Tensor) -> torch.Tensor:
            nonlocal weights
            if past is None:
                return self.cross_attention(h, cross.key, cross.value, mask=key_mask)[0]
            # a sentence's hypotheses are the queries (B/beams, beams, D) of one attention to its source
            batch, _, d_model = h.shape
            output, weights = self.cross_attention(h.view(-1, beams, d_model), cross.key, cross.value, mask=key_mask,
                                                   need_weights=True)
            weights = weights.transpose(1, 2).reshape(batch, -1, 1, weights.size(-1))
            return output.view(batch, 1, d_model)

        x = self.cross_block(self.self_block(x, self_attend), cross_attend)
        return self.feed_forward_block(x, self.feed_forward), present, weights


class Transformer(EncoderDecoder):
    """Encoder-decoder Transformer; see ``mt.models.base`` for the interface and shapes."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.scale = math.sqrt(config.d_model)
        self.src_embedding = nn.Embedding(config.src_vocab_size, config.d_model, padding_idx=PAD_ID)
        self.tgt_embedding = self.src_embedding if shares_embeddings(config) else nn.Embedding(config.tgt_vocab_size, config.d_model, padding_idx=PAD_ID)
        self.positions = POSITIONS[config.positions](config)
        self.dropout = Dropout(config.dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))
        # Pre-LN leaves the residual stream unnormalised: normalise once at the top of each stack.
        self.encoder_norm = nn.LayerNorm(config.d_model) if config.pre_norm else nn.Identity()
        self.decoder_norm = nn.LayerNorm(config.d_model) if config.pre_norm else nn.Identity()
        self.output = nn.Linear(config.d_model, config.tgt_vocab_size, bias=False)
        self._reset_parameters()
        if config.tie_embeddings:
            self.output.weight = self.tgt_embedding.weight

    def _reset_parameters(self) -> None:
        init_embedding(self.src_embedding)
        if self.tgt_embedding is not self.src_embedding:
            init_embedding(self.tgt_embedding)
        for name, parameter in self.named_parameters():
            # the embeddings are drawn above, the positions by their own module
            if parameter.dim() > 1 and not name.startswith(("src_embedding.", "tgt_embedding.", "positions.")):
                nn.init.xavier_uniform_(parameter)

    def _embed(self, embedded: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Token embeddings (B, T, D) -> scaled, with positions from ``offset``, dropped out."""
        return self.dropout(embedded * self.scale + self.positions(embedded.size(1), offset).to(embedded.dtype))

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        key_mask = heads_mask(src_mask)
        x = self._embed(embed_source(src, self.src_embedding, self.tgt_embedding))
        for layer in self.encoder_layers:
            x = layer(x, key_mask)
        return self.encoder_norm(x)

    def features(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory = self.encode(src, src_mask)
        key_mask = heads_mask(src_mask)
        x = self._embed(self.tgt_embedding(tgt_in))
        for layer in self.decoder_layers:
            x, _, _ = layer(x, LayerCache(*layer.cross_attention.project_kv(memory)), key_mask)
        return self.decoder_norm(x)

    def init_state(self, memory: torch.Tensor, src_mask: torch.Tensor) -> DecoderCache:
        """The source's key mask and every decoder layer's cross-attention keys/values (one row per
        sentence, however many hypotheses it has), and empty self-attention caches (B, H, 0, D/H).
        Every step casts its self-attention keys/values to the cross-attention keys' dtype: an fp32
        cache under bf16 autocast was cast back to bf16 at every step.

        On CPU without autocast (``mt translate --precision bf16`` stores the weights in bf16) the
        keys and values are fp32, so a step's attention products run in fp32 (MKL) while its
        Linear layers run in bf16: oneDNN compiles a bf16 product for every new shape (1-5 ms
        each with AMX), and the self-attention cache grows by a position at every step."""
        fp32_attention = memory.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
        cross, past = [], []
        for layer in self.decoder_layers:
            # Contiguous once here, or every step's q @ k^T and weights @ v would copy them to (B*H, S, D/H).
            keys, values = layer.cross_attention.project_kv(memory)
            if fp32_attention:
                keys, values = keys.float(), values.float()
            cross.append(LayerCache(keys.contiguous(), values.contiguous()))
            empty = keys.new_empty(keys.size(0), keys.size(1), 0, keys.size(3))  # (B, H, no steps yet, D/H)
            past.append(LayerCache(empty, empty))
        return DecoderCache(heads_mask(src_mask), cross, past)

    def decode_step(self, prev_tokens: torch.Tensor, state: DecoderCache) -> tuple[torch.Tensor, DecoderCache, torch.Tensor]:
        x = self._embed(self.tgt_embedding(prev_tokens[:, None]), offset=state.step)
        past, attention = [], []
        for layer, cross, layer_past in zip(self.decoder_layers, state.cross, state.past):
            x, present, weights = layer(x, cross, state.key_mask, layer_past, state.beams, state.rows)
            past.append(present)
            attention.append(weights[:, :, 0])
        logits = self.output(self.decoder_norm(x[:, 0]))
        next_state = DecoderCache(state.key_mask, state.cross, past, state.step + 1, state.beams)
        return F.log_softmax(logits.float(), dim=-1), next_state, torch.stack(attention, dim=1)
