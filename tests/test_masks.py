"""The attention masks (mt/models/masks.py): their shapes, and that a causal mask adds to a passed one."""

import torch

from mt.models.attention import MultiHeadAttention
from mt.models.masks import causal_mask, combine, heads_mask, queries_mask


def test_the_masks_broadcast_the_padding_mask_and_the_causal_mask_sees_only_the_past():
    src_mask = torch.tensor([[True, True, False], [True, True, True]])
    assert heads_mask(src_mask).shape == (2, 1, 1, 3) and queries_mask(src_mask).shape == (2, 1, 3)
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert combine(None, src_mask) is src_mask and combine(src_mask, None) is src_mask and combine(None, None) is None


def test_the_causal_mask_is_combined_with_a_passed_mask_not_put_in_its_place():
    torch.manual_seed(0)
    attention = MultiHeadAttention(d_model=8, heads=2).eval()
    x = torch.randn(1, 4, 8)
    padding = heads_mask(torch.tensor([[True, False, True, True]]))  # (1, 1, 1, 4)
    _, weights = attention(x, *attention.project_kv(x), mask=padding, causal=True, need_weights=True)
    allowed = (causal_mask(4) & padding).expand_as(weights)  # (1, H, T, S)
    assert torch.all(weights[~allowed] == 0) and torch.all(weights[allowed] > 0)
