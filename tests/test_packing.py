"""oneDNN's prepacked Linear layers for bf16 decoding and for fp32 where MKL is slow: same numbers, same translations."""

import copy
import warnings

import pytest
import torch
from torch import nn

import mt.device
import mt.translate
from mt.config import DecodeConfig
from mt.errors import SlowPrecisionWarning
from mt.packing import PackedLinear, bucket_rows, pack_linear_layers
from mt.search import search
from mt.translate import Translator

from conftest import tiny_rnn, tiny_transformer

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 24), (3, 5, 24)])
def test_a_packed_linear_computes_what_the_linear_does_with_the_relu_fused(bias, shape):
    torch.manual_seed(0)
    linear, x = nn.Linear(24, 40, bias=bias), torch.randn(shape)
    with torch.inference_mode():
        expected = linear(x)
        assert torch.allclose(PackedLinear(linear)(x), expected, atol=1e-5)
        assert torch.allclose(PackedLinear(linear, "relu")(x), expected.relu(), atol=1e-5)
    with pytest.raises(ValueError, match="'none' or 'relu'"):
        PackedLinear(linear, "gelu")


@pytest.mark.skipif(not mt.device.cpu_supports_bf16(), reason="this CPU has no bf16 units (AVX512-BF16 or AMX): mt packs no bf16 model here")
@pytest.mark.parametrize("shape", [(3, 5, 64), (37, 64), (2, 300, 64)])  # 15, 37 and 600 rows: padded to 16, 40, 640
def test_a_packed_bf16_linear_computes_what_the_bf16_linear_does(shape):
    torch.manual_seed(0)
    linear, x = nn.Linear(64, 96).to(torch.bfloat16), torch.randn(shape, dtype=torch.bfloat16)
    with torch.inference_mode():
        expected, packed = linear(x).float(), PackedLinear(linear, "relu")(x)
    assert packed.dtype == torch.bfloat16 and packed.shape == (*shape[:-1], 96) and packed.is_contiguous()
    assert torch.allclose(packed.float(), expected.relu(), atol=0.05, rtol=0.02)


def test_bf16_rows_are_padded_to_a_few_bucket_sizes():
    assert [bucket_rows(rows) for rows in (1, 16, 17, 24, 25, 33, 64, 65, 253, 614, 1055)] == \
        [16, 16, 24, 24, 32, 48, 64, 96, 256, 768, 1536]
    sizes = {bucket_rows(rows) for rows in range(1, 4097)}
    assert len(sizes) == 17 and all(rows <= bucket_rows(rows) <= 1.5 * rows for rows in range(17, 4097))


@pytest.mark.parametrize("model", [tiny_transformer(), tiny_transformer(pre_norm=False, tie=False),
                                   tiny_rnn("gru", "bahdanau"), tiny_rnn("lstm", "luong-local")],
                         ids=["transformer", "post-ln-untied", "gru-bahdanau", "lstm-luong-local"])
@pytest.mark.parametrize("dtype", [torch.float32, pytest.param(torch.bfloat16, marks=pytest.mark.skipif(
    not mt.device.cpu_supports_bf16(), reason="this CPU has no bf16 units (AVX512-BF16 or AMX): mt packs no bf16 model here"))])
def test_a_packed_model_has_no_plain_linear_left_and_decodes_the_same(model, dtype):
    model = copy.deepcopy(model).to(dtype)
    packed = pack_linear_layers(copy.deepcopy(model))
    assert not [m for m in packed.modules() if type(m) is nn.Linear]
    assert sum(isinstance(m, PackedLinear) for m in packed.modules()) == sum(type(m) is nn.Linear for m in model.modules())
    torch.manual_seed(1)
    src = torch.randint(4, 20, (6, 7))
    src[2, 4:] = 0
    for beam_size in (1, 4):
        config = DecodeConfig(beam_size=beam_size, max_length=10, length_penalty=0.0)
        with torch.inference_mode():
            ours, theirs = search(packed, src, src != 0, config), search(model, src, src != 0, config)
        assert [h[0].tokens for h in ours] == [h[0].tokens for h in theirs]
        assert all(abs(a[0].score - b[0].score) < 1e-4 for a, b in zip(ours, theirs))


def test_the_feed_forward_relu_goes_into_its_first_linear():
    feed_forward = pack_linear_layers(tiny_transformer()).decoder_layers[0].feed_forward
    assert feed_forward[0].activation == "relu" and isinstance(feed_forward[1], nn.Identity)
    assert feed_forward[2].activation == "none"


@pytest.mark.parametrize("cpuinfo, slow", [("vendor_id\t: AuthenticAMD\nflags\t: avx2\n", True),
                                           ("vendor_id\t: GenuineIntel\nflags\t: avx2\n", False), ("", False)])
def test_mkl_counts_as_slow_on_cpus_not_made_by_intel(monkeypatch, cpuinfo, slow):
    monkeypatch.setattr(mt.device, "_cpuinfo", lambda: cpuinfo)
    assert mt.device.mkl_is_slow_here() is slow


@pytest.mark.parametrize("slow", [True, False])
def test_the_translator_packs_bf16_models_and_fp32_ones_only_where_mkl_is_slow(tiny_checkpoint, monkeypatch, slow):
    monkeypatch.setattr(mt.translate, "mkl_is_slow_here", lambda: slow)
    packed = lambda translator: any(isinstance(m, PackedLinear) for m in translator.model.modules())  # noqa: E731
    fp32 = Translator.from_checkpoint(tiny_checkpoint, device="cpu")
    assert packed(fp32) is slow
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SlowPrecisionWarning)  # a CPU without bf16 units emulates it
        bf16 = Translator.from_checkpoint(tiny_checkpoint, device="cpu", precision="bf16")
    assert packed(bf16) is mt.device.cpu_supports_bf16() and all(p.dtype == torch.bfloat16 for p in bf16.model.parameters())
    assert not packed(Translator.from_checkpoint(tiny_checkpoint, device="cpu", quantize="int8"))
    monkeypatch.setattr(mt.translate, "mkl_is_slow_here", lambda: not slow)
    other = Translator.from_checkpoint(tiny_checkpoint, device="cpu")
    sentences = ["a b c", "d e f g", "h"]
    assert [t.text for t in fp32.translate(sentences)] == [t.text for t in other.translate(sentences)]
