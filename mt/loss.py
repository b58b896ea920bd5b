"""The training objective: label-smoothed cross-entropy of the output layer, a chunk of rows at a time.

The logits of a 4,096-token batch over an 8,000-piece vocabulary take 131 MB in fp32, and
autograd would keep them, their log-softmax and, in the backward pass, their gradients: several
such tensors at once, the largest part of training's peak memory. Here the output layer, the loss
and its gradient are computed together in the forward pass, ``CHUNK_LOGITS`` logits at a time,
and the backward pass only scales the stored gradients; the same arithmetic, one chunk of logits
in memory. (Liger Kernel's fused linear cross-entropy and Wijmans et al., 2024, "Cut Your Losses
in Large-Vocabulary Language Models", do this on GPUs.) Label smoothing: Szegedy et al., 2016.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from mt.tokenizer import PAD_ID

CHUNK_LOGITS = 2**21  # logits per chunk: 8 MB in fp32, 262 rows of an 8,000-piece vocabulary


class _OutputLayerCrossEntropy(torch.autograd.Function):
    """Summed label-smoothed cross-entropy of ``features @ weight.T``; see ``label_smoothed_loss``."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, epsilon: float,
                with_grad: bool) -> torch.Tensor:
        device = features.device.type
        # Autocast is off inside: the products run in its dtype explicitly, the softmax in fp32.
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
        accumulate = torch.promote_types(dtype, torch.float32)
        with torch.autocast(device, enabled=False):
            rows = (labels != PAD_ID).nonzero().squeeze(1)
            hidden, targets, projection = features.index_select(0, rows).to(dtype), labels.index_select(0, rows), weight.to(dtype)
            vocab = weight.size(0)
            total = torch.zeros((), dtype=accumulate, device=features.device)
            grad_hidden = torch.empty(hidden.shape, dtype=features.dtype, device=features.device) if with_grad else None
            grad_weight = torch.zeros(weight.shape, dtype=accumulate, device=weight.device) if with_grad else None
            step = max(1, CHUNK_LOGITS // vocab)
            for start in range(0, len(rows), step):
                chunk, chunk_targets = hidden[start:start + step], targets[start:start + step]
                logits = (chunk @ projection.T).to(accumulate)  # (C, V)
                log_normaliser = torch.logsumexp(logits, dim=1, keepdim=True)  # log sum_v exp z_v
                # -sum_v q_v log p_v with q = (1 - epsilon) one-hot + epsilon / V, and log p = z - log_normaliser
                label_logits = logits.gather(1, chunk_targets[:, None])
                total += (log_normaliser - (1 - epsilon) * label_logits - epsilon * logits.mean(1, keepdim=True)).sum()
                if with_grad:
                    # d loss / d z = p - q, written over the logits
                    grad_logits = logits.sub_(log_normaliser).exp_().sub_(epsilon / vocab)
                    grad_logits.scatter_add_(1, chunk_targets[:, None], grad_logits.new_full((len(chunk), 1), epsilon - 1))
                    grad_logits = grad_logits.to(dtype)
                    grad_hidden[start:start + step] = grad_logits @ projection
                    grad_weight += grad_logits.T @ chunk
        if with_grad:
            grad_features = torch.zeros_like(features).index_copy_(0, rows, grad_hidden)
            ctx.save_for_backward(grad_features, grad_weight.to(weight.dtype))
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_total: torch.Tensor):
        grad_features, grad_weight = ctx.saved_tensors
        return grad_features * grad_total, grad_weight * grad_total, None, None, None


def label_smoothed_loss(features: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Summed label-smoothed cross-entropy of the output layer over the non-PAD labels.

    ``features``: (B, T, D) decoder outputs before the output layer, ``weight``: (V, D) the output
    layer's weight (no bias), ``labels``: (B, T) int64. The target distribution puts 1 - epsilon on
    the label and epsilon / V on every piece (torch's ``label_smoothing``). Returns a scalar (sum
    over tokens, fp32 or wider) equal, with its gradients, to
    ``F.cross_entropy(features @ weight.T, labels, ignore_index=PAD_ID, label_smoothing=epsilon, reduction="sum")``,
    computed ``CHUNK_LOGITS`` logits at a time (see the module docstring). Under autocast the
    matrix products run in the autocast dtype and the softmax in fp32. Supports one backward pass.
    """
    with_grad = torch.is_grad_enabled() and (features.requires_grad or weight.requires_grad)
    return _OutputLayerCrossEntropy.apply(features.flatten(0, 1), weight, labels.flatten(), epsilon, with_grad)


class LabelSmoothedLoss(nn.Module):
    """A model and its training loss as one module, so that DDP and ``torch.compile`` wrap both.

    ``forward(src, src_mask, tgt_in, tgt_out)`` takes a batch's (B, S) and (B, T) tensors and
    returns ``label_smoothed_loss`` of the model's teacher-forced decoder features. A model's
    ``policy_loss`` (REINFORCE-trained hard attention) adds its gradient, not its value: the loss
    reported stays the cross-entropy. ``features``, if given, computes the decoder features in the
    model's place (``mt.step.compile_features``: the model compiled, the loss left eager).
    """

    def __init__(self, model: nn.Module, epsilon: float, features: Callable[..., torch.Tensor] | None = None):
        super().__init__()
        self.model, self.epsilon = model, epsilon
        self.features = features or model.features

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
        features = self.features(src, src_mask, tgt_in)
        loss = label_smoothed_loss(features, self.model.output.weight, tgt_out, self.epsilon)
        surrogate = self.model.policy_loss(features, tgt_out)
        return loss + (surrogate - surrogate.detach())
