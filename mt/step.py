"""The training step compiled once per batch shape (``train.compile``): torch.compile (inductor;
on CUDA with CUDA graphs, ``mode="reduce-overhead"``) of the model's forward pass and, through
AOT autograd, its backward pass, for static shapes.

Sentence batches come in hundreds of shapes, and a step compiled for dynamic shapes trained no
faster (docs/benchmarks.md). With ``train.compile`` the batches are padded to a few shapes
(``mt.batching.choose_shapes``, ``SHAPE_BUCKETS`` of them), and the step is compiled for each
shape the first time it meets it, then reused. The output layer and its loss
(``mt.loss.label_smoothed_loss``) stay eager. Adam is torch's fused implementation (one kernel
over all parameters).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

# Shapes a compiled run's batches are padded to. On Multi30k (4,096-token batches) 8 shapes pad
# 15.5% of the positions (today's sorted batches: 6.7%; 4 shapes: 23.5%, 12: 13.6%), and the 8
# compiled in 298 s (fp32) and 379 s (bf16) on the quiet 2-core Xeon, so more shapes cost start-up
# time; measured with `choose_shapes` on the 8k-piece tokenization `scripts/bench.py` uses, and
# `python scripts/bench.py --skip decode --compile --threads 2 --steps 10 --warmup 3`.
SHAPE_BUCKETS = 8


def compile_features(model: nn.Module, device: torch.device) -> Callable[..., torch.Tensor]:
    """``model.features`` compiled for static shapes: one graph per batch shape, up to
    ``SHAPE_BUCKETS`` of them and a margin, before torch would give up and run it eagerly. The loss
    stays outside: the rows it keeps depend on the labels (``nonzero``), which would have inductor
    compile it again for nearly every batch, and it is already a few large products."""
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 2 * SHAPE_BUCKETS)
    return torch.compile(model.features, dynamic=False, mode="reduce-overhead" if device.type == "cuda" else None)


def adam(parameters, learning_rate: float, betas: tuple[float, float], weight_decay: float, fused: bool
         ) -> torch.optim.Adam:
    """Adam (Kingma & Ba, 2015): torch's fused kernel when ``fused``, else its default (foreach)."""
    return torch.optim.Adam(parameters, lr=learning_rate, betas=betas, weight_decay=weight_decay, fused=fused or None)
