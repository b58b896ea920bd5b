"""Attention mechanisms, one small class each.

``MultiHeadAttention``: scaled dot-product attention in several heads (Vaswani et al., 2017,
"Attention Is All You Need", section 3.2, eq. 1 and the MultiHead equation).

The attention of a recurrent decoder (``RecurrentAttention`` and its subclasses) scores each
source position against one decoder state, normalises the scores with a softmax over the real
source tokens and returns the weighted sum of the encoder states; the score function is the one
thing that differs between

- ``BahdanauAttention``: additive, from the previous decoder state (Bahdanau et al., 2015,
  "Neural Machine Translation by Jointly Learning to Align and Translate", appendix A.1.2);
- ``LuongDotAttention``, ``LuongGeneralAttention``, ``LuongConcatAttention``: the three
  content-based scores of Luong et al. (2015), "Effective Approaches to Attention-based Neural
  Machine Translation", eq. 8, from the current decoder state;
- ``LuongLocalAttention``: one of those scores, restricted to a window around a predicted
  source position and weighted by a Gaussian (Luong et al., 2015, section 3.2, local-p);
  ``LuongMonotonicAttention``: the same window around p_t = t, without the Gaussian (local-m);
- ``HardAttention``: one source position per target step instead of a weighted sum (Xu et al.,
  2015, "Show, Attend and Tell", section 4.1), trained with the straight-through Gumbel-softmax
  estimator (Jang et al., 2017) or REINFORCE (Xu et al.), the argmax position at inference.

``mt.models.rnn.ATTENTIONS`` names them for the configuration and the command line.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from mt.models.masks import causal_mask, combine, queries_mask

# The fused attention kernels tried on CUDA, in torch's order of preference, without cuDNN's. torch
# prefers cuDNN's for bf16/fp16 on recent GPUs, and it builds an execution plan for every new shape,
# which sentence batches and decoding steps bring at nearly every call: on an H100 (torch 2.11)
# `scripts/bench.py --device cuda` trained transformer-small in bf16 at 11,337 target tokens/s with
# it and 87,850 without.
CUDA_ATTENTION_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1..head_h) W^O, head_i = softmax(Q W_i^Q (K W_i^K)^T / sqrt(d_k)) V W_i^V.

    Shapes: query (B, T, D); keys/values are projected once by ``project_kv`` from (B, S, D) to
    (B, H, S, D/H) so that decoding can cache them. ``mask`` is bool, True where attention is
    allowed, broadcastable to (B, H, T, S) (``mt.models.masks.heads_mask``); ``causal`` adds the
    causal mask (T, T) of a self-attention (T = S) to it. Raises ``ValueError`` if ``heads`` does
    not divide ``d_model``.
    """

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"heads ({heads}) must divide d_model ({d_model})")
        self.heads, self.head_dim, self.dropout = heads, d_model // heads, dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.output = nn.Linear(d_model, d_model)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def project_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, D) -> keys, values, each (B, H, S, D/H)."""
        keys, values = self.key_value(x).chunk(2, dim=-1)
        return self._split_heads(keys), self._split_heads(values)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns the attended output (B, T, D) and, if ``need_weights``, the weights (B, H, T, S)."""
        q = self._split_heads(self.query(query)).to(keys.dtype)
        dropout = self.dropout if self.training else 0.0
        weights = None
        fused = q.is_cuda and not need_weights
        # The fused kernels take a causal mask alone as a flag (flash attention takes no mask tensor);
        # otherwise it is combined with ``mask``, never put in its place.
        if causal and (mask is not None or not fused):
            mask, causal = combine(mask, causal_mask(q.size(2), q.device)), False
        if fused:
            with sdpa_kernel(CUDA_ATTENTION_BACKENDS):
                attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=dropout, is_causal=causal)
        else:
            # On CPU the explicit form is faster than the fused kernels for sentence-length inputs
            # (2-4x for bf16 forward+backward at S, T ~ 30), and it yields the weights.
            # scaled and masked in place: one (B, H, T, S) tensor instead of three
            scores = (q @ keys.transpose(-2, -1)).mul_(1 / math.sqrt(self.head_dim))
            if mask is not None:
                scores.masked_fill_(~mask, float("-inf"))
            weights = scores.float().softmax(dim=-1).to(values.dtype)
            attended = F.dropout(weights, dropout, self.training) @ values
        batch, _, length, _ = attended.shape
        return self.output(attended.transpose(1, 2).reshape(batch, length, -1).to(query.dtype)), weights


def masked_attention(scores: torch.Tensor, mask: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of ``scores`` (B, K, S) over the positions where ``mask`` (B, K or 1, S) is True,
    every other weight exactly 0; returns the contexts (B, K, M) from ``memory`` (B, S, M) and the
    weights (B, K, S) float32. Each row of ``mask`` needs one True position."""
    weights = scores.float().masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return torch.bmm(weights.to(memory.dtype), memory), weights


class RecurrentAttention(nn.Module):
    """a_t(s) = softmax_s(score(q_t, h_s)), c_t = sum_s a_t(s) h_s (Bahdanau et al., 2015, eqs. 5-6;
    Luong et al., 2015, eq. 7).

    Shapes: query q_t (B, Q), the decoder state; memory h_s (B, S, M), the encoder states;
    ``src_mask`` (B, S) bool, True at real tokens (``mt.models.masks``). Subclasses define ``score``; the part of it that
    depends on the source alone is computed once per sentence by ``project_keys`` (B, S, M) ->
    keys (B, S, A), and decoding keeps the keys in its state. In beam search the query holds K
    hypotheses per sentence, (B * K, Q), against one row per sentence of everything else.
    """

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """Memory (B, S, M) -> keys (B, S, A); the memory itself unless the score projects it."""
        return memory

    def score(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Queries (B, K, Q) (K per sentence), keys (B, S, A) -> unnormalised scores (B, K, S)."""
        raise NotImplementedError

    def masked_scores(self, queries: torch.Tensor, keys: torch.Tensor, src_mask: torch.Tensor,
                      step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The scores (B, K, S) and where they count, (B, 1 or K, S): here the real source tokens.
        ``step`` is the target position t of the queries (0 at the first step)."""
        return self.score(queries, keys), queries_mask(src_mask)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context c_t (B * K, M) and weights a_t (B * K, S) float32, exactly 0 at padding (and,
        for local attention, outside the window), for ``query`` (B * K, Q), K rows per sentence, at
        target position ``step``."""
        queries = query.view(keys.size(0), -1, query.size(-1))
        context, weights = masked_attention(*self.masked_scores(queries, keys, src_mask, step), memory)
        return context.flatten(0, 1), weights.flatten(0, 1)


class BahdanauAttention(RecurrentAttention):
    """Additive score e_tj = v_a^T tanh(W_a s_{t-1} + U_a h_j) (Bahdanau et al., 2015, eq. 6 and
    appendix A.1.2), where s_{t-1} is the decoder state before step t.

    ``query_projection`` is W_a (Q -> A), ``key_projection`` U_a (M -> A, applied once per
    sentence), ``energy`` v_a (A -> 1); the attention size A defaults to Q.
    """

    def __init__(self, query_size: int, memory_size: int, attention_size: int | None = None):
        super().__init__()
        attention_size = attention_size or query_size
        self.query_projection = nn.Linear(query_size, attention_size, bias=False)
        self.key_projection = nn.Linear(memory_size, attention_size, bias=False)
        self.energy = nn.Linear(attention_size, 1, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_projection(memory)

    def score(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        # (B, K, 1, A) + (B, 1, S, A) -> v_a^T tanh(.) (B, K, S)
        return self.energy(torch.tanh(self.query_projection(queries).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)


class LuongConcatAttention(BahdanauAttention):
    """score(h_t, h_s) = v_a^T tanh(W_a [h_t; h_s]) (Luong et al., 2015, eq. 8, "concat").

    Splitting W_a = [W_1 W_2] gives v_a^T tanh(W_1 h_t + W_2 h_s): Bahdanau's additive score. What
    differs is the query, the current decoder state h_t instead of the previous one, and that is
    the decoder's choice (``mt.models.rnn.LuongDecoder``), not the attention's.
    """


class LuongDotAttention(RecurrentAttention):
    """score(h_t, h_s) = h_t^T h_s (Luong et al., 2015, eq. 8, "dot"); needs Q == M."""

    def score(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(keys, queries.transpose(1, 2)).transpose(1, 2)  # (B, S, K) -> (B, K, S)


class LuongGeneralAttention(LuongDotAttention):
    """score(h_t, h_s) = h_t^T W_a h_s (Luong et al., 2015, eq. 8, "general"): the dot score of h_t
    with the keys W_a h_s, projected once per sentence by ``bilinear`` (W_a, M -> Q)."""

    def __init__(self, query_size: int, memory_size: int):
        super().__init__()
        self.bilinear = nn.Linear(memory_size, query_size, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.bilinear(memory)


class AlignedAttention(RecurrentAttention):
    """An attention that scores with another one's score function, ``alignment`` (a
    ``LuongDotAttention``, ``LuongGeneralAttention`` or ``LuongConcatAttention``), and changes
    what is done with the scores: a window (local-p, local-m) or a single position (hard)."""

    def __init__(self, alignment: RecurrentAttention):
        super().__init__()
        self.alignment = alignment

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.alignment.project_keys(memory)

    def score(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return self.alignment.score(queries, keys)


class LuongLocalAttention(AlignedAttention):
    """Local attention with predictive alignment, local-p (Luong et al., 2015, section 3.2).

    The decoder state predicts an aligned source position p_t = S * sigmoid(v_p^T tanh(W_p h_t))
    (eq. 10), S being the sentence's real source length; only positions s in
    [p_t - D, p_t + D] are attended (D = ``window``), and their alignment is weighted by a Gaussian
    centred on p_t, a_t(s) = align(h_t, h_s) exp(-(s - p_t)^2 / (2 sigma^2)), sigma = D / 2 (eq. 11).
    ``alignment`` provides the score of align (eq. 7): a ``LuongDotAttention``,
    ``LuongGeneralAttention`` or ``LuongConcatAttention``.

    The Gaussian enters as a log-weight added to the scores, so the weights are eq. 11's divided by
    their sum: they sum to 1 over the window like every other attention's, and p_t still learns
    through the Gaussian. Outside the window and at padding the weights are exactly 0.
    """

    def __init__(self, alignment: RecurrentAttention, query_size: int, window: int):
        super().__init__(alignment)
        self.window = window
        self.position_projection = nn.Linear(query_size, query_size, bias=False)  # W_p
        self.position_energy = nn.Linear(query_size, 1, bias=False)  # v_p

    def aligned_position(self, queries: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """p_t (B, K, 1) float32, between 0 and each sentence's source length S (eq. 10)."""
        src_lengths = src_mask.sum(dim=1)[:, None, None]
        return src_lengths * torch.sigmoid(self.position_energy(torch.tanh(self.position_projection(queries))).float())

    def masked_scores(self, queries: torch.Tensor, keys: torch.Tensor, src_mask: torch.Tensor,
                      step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The scores plus the Gaussian's log-weight, (B, K, S), and the window at real tokens (B, K, S)."""
        positions = torch.arange(src_mask.size(1), device=src_mask.device, dtype=torch.float32)
        distance = positions - self.aligned_position(queries, src_mask)  # (B, K, S)
        sigma = self.window / 2
        gaussian_log_weight = -distance.square() / (2 * sigma**2)
        in_window = queries_mask(src_mask) & (distance.abs() <= self.window)
        return self.score(queries, keys).float() + gaussian_log_weight, in_window


class LuongMonotonicAttention(AlignedAttention):
    """Local attention with monotonic alignment, local-m (Luong et al., 2015, section 3.2): the
    aligned position is the target position, p_t = t (capped at the sentence's last source token),
    and only source positions s in [p_t - D, p_t + D] are attended, weighted by ``alignment``'s
    score alone (eq. 7, no Gaussian). Outside the window and at padding the weights are exactly 0.
    """

    def __init__(self, alignment: RecurrentAttention, window: int):
        super().__init__(alignment)
        self.window = window

    def masked_scores(self, queries: torch.Tensor, keys: torch.Tensor, src_mask: torch.Tensor,
                      step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The scores (B, K, S) and the window [t - D, t + D] at real tokens (B, 1, S)."""
        aligned = (src_mask.sum(dim=1) - 1).clamp(max=step)[:, None, None]  # p_t = t, (B, 1, 1)
        positions = torch.arange(src_mask.size(1), device=src_mask.device)
        in_window = queries_mask(src_mask) & ((positions - aligned).abs() <= self.window)
        return self.score(queries, keys), in_window


class HardAttention(AlignedAttention):
    """Hard attention: the context is the encoder state at one source position, c_t = h_{s_t}
    (Xu et al., 2015, "Show, Attend and Tell", section 4.1, eq. 8), chosen with the probabilities
    a_t = softmax(score) of ``alignment``'s score. At inference (``eval()``) s_t = argmax_s a_t(s).
    The weights returned are the one-hot rows: exactly one non-zero weight, 1.0, per target step.

    Training draws s_t, and the draw is not differentiable; ``estimator`` says how the score
    learns anyway:

    - ``"gumbel"``: the straight-through Gumbel-softmax estimator (Jang et al., 2017,
      "Categorical Reparameterization with Gumbel-Softmax", section 2.2): the forward pass uses
      the one-hot of argmax_s (log a_t(s) + g_s), g_s ~ Gumbel(0, 1), the backward pass the
      gradient of softmax((log a_t + g) / tau);
    - ``"reinforce"``: REINFORCE as Xu et al. (section 4.1, eq. 12): s_t ~ Multinoulli(a_t), no
      gradient through the context; each step's log a_t(s_t) and entropy H(a_t) are kept in
      ``trace`` for ``policy_loss``, which the model adds to the training loss.
    """

    ESTIMATORS = ("gumbel", "reinforce")

    def __init__(self, alignment: RecurrentAttention, estimator: str = "gumbel", temperature: float = 1.0,
                 entropy_weight: float = 0.01, baseline_decay: float = 0.9):
        super().__init__(alignment)
        if estimator not in self.ESTIMATORS:
            raise ValueError(f"estimator must be one of {', '.join(self.ESTIMATORS)}, got {estimator!r}")
        self.estimator, self.temperature = estimator, temperature
        self.entropy_weight, self.baseline_decay = entropy_weight, baseline_decay
        self.trace: list[tuple[torch.Tensor, torch.Tensor]] = []  # per step: log a_t(s_t), H(a_t), each (B * K,)
        self.register_buffer("baseline", torch.zeros(()), persistent=False)  # moving average of the reward

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context h_{s_t} (B * K, M) and one-hot weights (B * K, S) float32, for ``query`` (B * K, Q)."""
        queries = query.view(keys.size(0), -1, query.size(-1))
        mask = queries_mask(src_mask)
        scores = self.score(queries, keys).float().masked_fill(~mask, float("-inf"))
        log_probs = scores.log_softmax(dim=-1)
        if not self.training:
            weights = F.one_hot(scores.argmax(dim=-1), scores.size(-1)).float()
        elif self.estimator == "gumbel":
            weights = F.gumbel_softmax(log_probs, tau=self.temperature, hard=True)
        else:
            probabilities = log_probs.exp()
            chosen = torch.multinomial(probabilities.flatten(0, 1).detach(), 1)  # (B * K, 1)
            # H(a_t) over the real tokens only: at padding p log p is 0 log 0, whose gradient is not finite
            entropy = -(probabilities * log_probs.masked_fill(~mask, 0.0)).sum(dim=-1)
            self.trace.append((log_probs.flatten(0, 1).gather(1, chosen)[:, 0], entropy.flatten()))
            weights = F.one_hot(chosen[:, 0], scores.size(-1)).float().view_as(scores)
        context = torch.bmm(weights.to(memory.dtype), memory)
        return context.flatten(0, 1), weights.flatten(0, 1)

    def policy_loss(self, rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The REINFORCE surrogate of the steps in ``trace`` (then cleared), summed like the
        cross-entropy: -sum_{b,t} [(R_b - baseline) log a_t(s_t) + lambda_e H(a_t)] over the real
        target tokens ``mask`` (B, T); ``rewards`` R_b (B,) are each sentence's mean log p(y_t),
        not differentiated. The baseline is their moving average (Xu et al., section 4.1)."""
        if not self.trace:
            return mask.new_zeros((), dtype=torch.float32)
        log_chosen = torch.stack([step[0] for step in self.trace], dim=1)  # (B, T)
        entropy = torch.stack([step[1] for step in self.trace], dim=1)
        self.trace.clear()
        advantage = (rewards - self.baseline)[:, None]
        self.baseline.mul_(self.baseline_decay).add_((1 - self.baseline_decay) * rewards.mean())
        return -((advantage * log_chosen + self.entropy_weight * entropy) * mask).sum()
