"""The training step compiled once per batch shape (``train.compile``): torch.compile (inductor;
on CUDA with CUDA graphs, ``mode="reduce-overhead"``) of the model and its loss, static shapes.

Sentence batches come in hundreds of shapes, and a step compiled for dynamic shapes trained no
faster (docs/benchmarks.md). With ``train.compile`` the batches are padded to a few shapes
(``mt.batching.choose_shapes``, ``SHAPE_BUCKETS`` of them), and the step is compiled for each
shape the first time it meets it, then reused. The output layer and its loss
(``mt.loss.label_smoothed_loss``) stay eager: the rows they keep depend on the labels. Adam is
torch's fused implementation (one kernel over all parameters).
"""

from __future__ import annotations

import torch
from torch import nn

# Shapes a compiled run's batches are padded to. On Multi30k (4,096-token batches) 8 shapes pad
# 15.5% of the positions (today's sorted batches: 6.7%; 4 shapes: 23.5%, 12: 13.6%), and each shape
# compiled in 40-170 s on the 2-core Xeon (shared with other work), so more shapes cost start-up
# time; measured with `choose_shapes` on the 8k-piece tokenization `scripts/bench.py` uses.
SHAPE_BUCKETS = 8


def compile_objective(objective: nn.Module, device: torch.device) -> nn.Module:
    """``objective`` (model + loss, maybe DDP-wrapped) compiled for static shapes: one graph per
    batch shape, at most ``SHAPE_BUCKETS`` of them (plus a margin for the graphs the eager loss
    splits it into) before torch would give up compiling and fall back to eager."""
    limit = 4 * SHAPE_BUCKETS
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, limit)
    torch._dynamo.config.accumulated_recompile_limit = max(torch._dynamo.config.accumulated_recompile_limit, 8 * limit)
    return torch.compile(objective, dynamic=False, mode="reduce-overhead" if device.type == "cuda" else None)


def adam(parameters, learning_rate: float, betas: tuple[float, float], weight_decay: float, fused: bool
         ) -> torch.optim.Adam:
    """Adam (Kingma & Ba, 2015): torch's fused kernel when ``fused``, else its default (foreach)."""
    return torch.optim.Adam(parameters, lr=learning_rate, betas=betas, weight_decay=weight_decay, fused=fused or None)
