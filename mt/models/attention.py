"""Attention mechanisms, one small class each.

``MultiHeadAttention``: scaled dot-product attention in several heads (Vaswani et al., 2017,
"Attention Is All You Need", section 3.2, eq. 1 and the MultiHead equation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1..head_h) W^O, head_i = softmax(Q W_i^Q (K W_i^K)^T / sqrt(d_k)) V W_i^V.

    Shapes: query (B, T, D); keys/values are projected once by ``project_kv`` from (B, S, D) to
    (B, H, S, D/H) so that decoding can cache them. ``mask`` is bool, True where attention is
    allowed, broadcastable to (B, H, T, S). Raises ``ValueError`` if ``heads`` does not divide ``d_model``.
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
        q = self._split_heads(self.query(query))
        dropout = self.dropout if self.training else 0.0
        if need_weights:
            scores = q @ keys.transpose(-2, -1) / math.sqrt(self.head_dim)
            if causal:
                length = scores.size(-1)
                mask = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.float().softmax(dim=-1).to(values.dtype)
            attended = F.dropout(weights, dropout, self.training) @ values
        else:
            weights = None
            attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=dropout, is_causal=causal)
        batch, _, length, _ = attended.shape
        return self.output(attended.transpose(1, 2).reshape(batch, length, -1)), weights
