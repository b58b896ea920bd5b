"""mt's CPU dropout: the rate asked for, unbiased, the identity in eval mode, reproducible, and
gradients through the same mask."""

import pytest
import torch
from torch import nn

from mt.models.dropout import Dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_mask_drops_at_rate_p_and_keeps_the_expectation(p, dtype):
    torch.manual_seed(0)
    mask = keep_mask(torch.Size([1000, 1001]), p, dtype)  # an odd count: the last pair is cut
    assert mask.shape == (1000, 1001) and mask.dtype == dtype
    dropped = (mask == 0).float().mean().item()
    assert abs(dropped - p) < 0.003  # 1e6 draws: the standard error is below 0.0005
    assert torch.allclose(mask[mask != 0].float(), torch.tensor(1 / (1 - p)), rtol=0.01)
    assert abs(mask.float().mean().item() - 1.0) < 0.005
    flat = (mask == 0).flatten().float()
    assert abs(flat[0::2].mean().item() - p) < 0.004 and abs(flat[1::2].mean().item() - p) < 0.004  # both 16-bit halves


def test_dropout_is_the_identity_in_eval_mode_and_reproducible_in_training():
    x = torch.randn(64, 32)
    dropout = Dropout(0.25)
    assert isinstance(dropout, nn.Dropout)
    assert torch.equal(dropout.eval()(x), x)
    dropout.train()
    torch.manual_seed(5)
    first = dropout(x)
    torch.manual_seed(5)
    assert torch.equal(dropout(x), first)
    assert not torch.equal(dropout(x), first)  # a new mask on the next call
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_the_gradient_goes_through_the_same_mask():
    x = torch.randn(50, 40, requires_grad=True)
    torch.manual_seed(2)
    y = Dropout(0.5).train()(x)
    y.sum().backward()
    kept = y != 0
    assert torch.allclose(x.grad[kept], torch.tensor(2.0)) and torch.all(x.grad[~kept] == 0)
    assert torch.allclose(y[kept], 2 * x[kept])
