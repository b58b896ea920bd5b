"""Decoding on CPU with every ``nn.Linear`` swapped for oneDNN's prepacked linear
(``PackedLinear``), the first Linear of each Transformer feed-forward block fused with its ReLU.
The two ops are the ones torch's own inductor calls when it freezes a model for CPU inference.

- fp32 where MKL is slow: torch runs fp32 products in Intel MKL, which takes a generic code path
  on other vendors' CPUs (``mt.device.mkl_is_slow_here``); oneDNN runs them at about twice MKL's
  speed there.
- bf16: torch reaches oneDNN for bf16 products anyway, with the weight in its row-major layout;
  packed, it is in the AMX/AVX512-BF16 kernels' blocked layout once. The rows of a bf16 product
  are padded to one of a few sizes (``bucket_rows``): oneDNN compiles a primitive for every
  shape it meets (1-5 ms each with AMX, and memory while it is cached), and a decoding step's
  row count changes whenever a sentence finishes.
"""

from __future__ import annotations

import torch
from torch import nn

from mt.models.transformer import FeedForward


class PackedLinear(nn.Module):
    """y = activation(x W^T + b) with W reordered once into oneDNN's blocked layout.

    x: (..., in_features) on CPU, in the dtype of the Linear's weight (fp32 or bf16) -> (...,
    out_features), same dtype. ``activation`` is ``"none"`` or ``"relu"`` (fused into the
    product). A bf16 product runs on ``bucket_rows`` rows, the padding cut off its output.
    Inference only: the packed weight is a copy, not a parameter, and is not in the state dict.
    Raises ``ValueError`` for another activation.
    """

    def __init__(self, linear: nn.Linear, activation: str = "none"):
        super().__init__()
        if activation not in ("none", "relu"):
            raise ValueError(f"activation must be 'none' or 'relu', got {activation!r}")
        self.in_features, self.out_features, self.activation = linear.in_features, linear.out_features, activation
        self.bucket = linear.weight.dtype == torch.bfloat16
        packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        self.register_buffer("packed_weight", packed, persistent=False)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scalars = [None] if self.activation == "relu" else []
        rows = x.numel() // self.in_features
        padded = bucket_rows(rows) if self.bucket else rows
        if padded == rows:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, self.activation, scalars, "")
        # the padding rows are left as they are in memory: each output row depends on its own
        # input row only, and the padding's are cut off below
        x_padded = torch.cat([x.reshape(rows, self.in_features), x.new_empty(padded - rows, self.in_features)])
        y = torch.ops.mkldnn._linear_pointwise(x_padded, self.packed_weight, self.bias, self.activation, scalars, "")
        return y[:rows].view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


def bucket_rows(rows: int) -> int:
    """The row count a bf16 product is padded to: 16 (an AMX tile's rows) up to 16 rows, else
    ``rows`` rounded up to the next of two steps per power of two (17-24 -> 24, 25-32 -> 32,
    253 -> 256, 614 -> 768): at most 50% more rows, and a few dozen shapes for oneDNN to compile.

    Each compiled shape holds 0.3-1.8 MB while it is cached (more for a wider product). Against
    four steps per power of two (at most 25% more rows), two took bf16 beam-5 decoding of
    Tatoeba's test set from 566-573 to 525-530 MB peak RSS at the same speed within this
    machine's noise (``docs/benchmarks.md``)."""
    if rows <= 16:
        return 16
    step = 1 << (rows.bit_length() - 2)
    return -(-rows // step) * step


def pack_linear_layers(model: nn.Module) -> nn.Module:
    """Swap every ``nn.Linear`` of ``model`` for a ``PackedLinear``, in place, and return it;
    a feed-forward block's ReLU goes into its first Linear (then an ``nn.Identity``). For an
    fp32 or bf16 model on CPU in eval mode: it is not trainable afterwards, nor movable to another
    device or dtype."""
    for block in model.modules():
        if isinstance(block, FeedForward) and type(block[0]) is nn.Linear:
            block[0], block[1] = PackedLinear(block[0], "relu"), nn.Identity()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Linear:
                setattr(parent, name, PackedLinear(child))
    return model.eval()
