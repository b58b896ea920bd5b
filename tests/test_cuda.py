"""On a CUDA device: the fused loss, training at each precision, and decoding agree with the CPU.

Skipped on a machine without CUDA (CI has none); run them where a GPU is: ``pytest tests/test_cuda.py``.
"""

import pytest
import torch

from mt.config import DecodeConfig
from mt.loss import label_smoothed_loss
from mt.search import search
from mt.train import train
from mt.translate import Translator

from conftest import loss_inputs, reference_loss, source_batch, tiny_run_config, tiny_transformer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: these tests compare a GPU with the CPU")


def test_fused_loss_and_gradients_on_the_gpu_equal_the_float64_reference():
    features, weight, labels = loss_inputs()
    expected = reference_loss(features, weight, labels, 0.1)
    expected_grads = torch.autograd.grad(expected, (features, weight))
    on_gpu = [tensor.detach().float().cuda().requires_grad_() for tensor in (features, weight)]
    loss = label_smoothed_loss(*on_gpu, labels.cuda(), 0.1)
    grads = torch.autograd.grad(loss, on_gpu)
    torch.testing.assert_close(loss.double().cpu(), expected, rtol=1e-5, atol=1e-5)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad.double().cpu(), expected_grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.slow
def test_a_tiny_transformer_learns_to_copy_on_the_gpu_and_translates_on_the_cpu(tmp_path, precision):
    config = tiny_run_config(tmp_path, max_steps=400, device="cuda", precision=precision)
    end = train(config, tmp_path / "run")
    assert end["best_dev_bleu"] > 90
    translator = Translator.from_checkpoint(tmp_path / "run", device="cpu")
    assert next(translator.translate(["a b c d e"])).text == "a b c d e"


@pytest.mark.parametrize("beam_size", [1, 4])
def test_search_on_the_gpu_finds_what_it_finds_on_the_cpu(beam_size):
    model = tiny_transformer()
    src, mask = source_batch()
    config = DecodeConfig(beam_size=beam_size, max_length=12)
    on_cpu = search(model, src, mask, config)
    on_gpu = search(model.cuda(), src.cuda(), mask.cuda(), config)
    assert [h[0].tokens for h in on_gpu] == [h[0].tokens for h in on_cpu]
    for gpu, cpu in zip(on_gpu, on_cpu):
        assert gpu[0].score == pytest.approx(cpu[0].score, abs=1e-3)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_checkpoint_translates_on_the_gpu_at_each_precision(tiny_checkpoint, precision):
    sentences = [f"a b {letter} {letter}" for letter in "abcdefghij"]
    on_cpu = [t.text for t in Translator.from_checkpoint(tiny_checkpoint, device="cpu").translate(sentences)]
    on_gpu = Translator.from_checkpoint(tiny_checkpoint, device="cuda", precision=precision)
    assert on_gpu.device.type == "cuda"
    texts = [t.text for t in on_gpu.translate(sentences, return_attention=True)]  # the explicit attention path on CUDA
    if precision == "fp32":
        assert texts == on_cpu
    else:  # an untrained model's ties may break the other way in half precision; most must agree
        assert sum(a == b for a, b in zip(texts, on_cpu)) >= 7
