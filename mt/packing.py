"""fp32 decoding on CPUs where MKL is slow: every ``nn.Linear`` swapped for oneDNN's prepacked
linear (``PackedLinear``), the first Linear of each Transformer feed-forward block fused with its
ReLU. torch runs fp32 products in Intel MKL, which takes a generic code path on other vendors'
CPUs (``mt.device.mkl_is_slow_here``); oneDNN runs them at about twice MKL's speed there. The
two ops are the ones torch's own inductor calls when it freezes a model for CPU inference.
"""

from __future__ import annotations

import torch
from torch import nn

from mt.models.transformer import FeedForward


class PackedLinear(nn.Module):
    """y = activation(x W^T + b) with W reordered once into oneDNN's blocked layout.

    x: (..., in_features) fp32 on CPU -> (..., out_features). ``activation`` is ``"none"`` or
    ``"relu"`` (fused into the product). Inference only: the packed weight is a copy, not a
    parameter, and is not in the state dict. Raises ``ValueError`` for another activation.
    """

    def __init__(self, linear: nn.Linear, activation: str = "none"):
        super().__init__()
        if activation not in ("none", "relu"):
            raise ValueError(f"activation must be 'none' or 'relu', got {activation!r}")
        self.in_features, self.out_features, self.activation = linear.in_features, linear.out_features, activation
        packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        self.register_buffer("packed_weight", packed, persistent=False)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scalars = [None] if self.activation == "relu" else []
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, self.activation, scalars, "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


def pack_linear_layers(model: nn.Module) -> nn.Module:
    """Swap every fp32 ``nn.Linear`` of ``model`` for a ``PackedLinear``, in place, and return it;
    a feed-forward block's ReLU goes into its first Linear (then an ``nn.Identity``). For an
    fp32 model on CPU in eval mode: it is not trainable afterwards, nor movable to another device."""
    for block in model.modules():
        if isinstance(block, FeedForward) and type(block[0]) is nn.Linear:
            block[0], block[1] = PackedLinear(block[0], "relu"), nn.Identity()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Linear:
                setattr(parent, name, PackedLinear(child))
    return model.eval()
