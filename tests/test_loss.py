import pytest
import torch

import mt.loss
from mt.loss import label_smoothed_loss
from mt.tokenizer import PAD_ID

from conftest import loss_inputs, reference_loss


@pytest.mark.parametrize("epsilon", [0.0, 0.1])
def test_loss_and_gradients_equal_cross_entropy_of_the_logits_whatever_the_chunk(monkeypatch, epsilon):
    features, weight, labels = loss_inputs()
    expected = reference_loss(features, weight, labels, epsilon)
    expected_grads = torch.autograd.grad(expected * 3, (features, weight))
    for chunk_logits in (50, 3 * 50, 2**21):  # one row, three rows (a short last chunk), all rows
        monkeypatch.setattr(mt.loss, "CHUNK_LOGITS", chunk_logits)
        loss = label_smoothed_loss(features, weight, labels, epsilon)
        grads = torch.autograd.grad(loss * 3, (features, weight))
        torch.testing.assert_close(loss, expected)
        for grad, expected_grad in zip(grads, expected_grads):
            torch.testing.assert_close(grad, expected_grad)


def test_padding_gets_no_gradient_and_no_loss():
    features, weight, labels = loss_inputs()
    loss = label_smoothed_loss(features, weight, labels, 0.1)
    loss.backward()
    assert features.grad[labels == PAD_ID].abs().max() == 0 and features.grad[labels != PAD_ID].abs().min() > 0
    labels.fill_(PAD_ID)
    assert label_smoothed_loss(features, weight, labels, 0.1) == 0


def test_without_gradients_the_value_is_the_same():
    features, weight, labels = loss_inputs()
    with torch.no_grad():
        assert torch.equal(label_smoothed_loss(features, weight, labels, 0.1), label_smoothed_loss(features.detach(), weight.detach(), labels, 0.1))
    torch.testing.assert_close(label_smoothed_loss(features.detach(), weight.detach(), labels, 0.1), reference_loss(features, weight, labels, 0.1).detach())


def test_under_bf16_autocast_it_stays_close_to_what_autograd_gives():
    features, weight, labels = loss_inputs(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = reference_loss(features, weight, labels, 0.1)
        loss = label_smoothed_loss(features, weight, labels, 0.1)
    expected_grads = torch.autograd.grad(expected, (features, weight))
    grads = torch.autograd.grad(loss, (features, weight))
    assert loss.dtype == torch.float32 and all(grad.dtype == torch.float32 for grad in grads)
    torch.testing.assert_close(loss, expected, rtol=1e-3, atol=0)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=0.02, atol=0.02)
