import pytest
import torch

from mt.config import ModelConfig
from mt.models import build_model
from mt.models.transformer import LearnedPositionalEmbedding, SinusoidalPositionalEncoding

from conftest import tiny_transformer


def test_padding_never_changes_the_output():
    model = tiny_transformer()
    src = torch.tensor([[5, 6, 7, 3, 0, 0]])
    mask = src != 0
    tgt = torch.tensor([[2, 8, 9]])
    other_padding = src.masked_fill(~mask, 17)  # garbage where the mask says padding
    assert torch.allclose(model(src, mask, tgt), model(other_padding, mask, tgt), atol=1e-6)


def test_causal_mask_hides_future_target_tokens():
    model = tiny_transformer()
    src = torch.tensor([[5, 6, 7, 3]])
    mask = torch.ones_like(src, dtype=torch.bool)
    first = model(src, mask, torch.tensor([[2, 8, 9, 10]]))
    changed = model(src, mask, torch.tensor([[2, 8, 20, 21]]))
    assert torch.allclose(first[:, :2], changed[:, :2], atol=1e-6)
    assert not torch.allclose(first[:, 2:], changed[:, 2:], atol=1e-3)


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_incremental_decoding_equals_the_full_forward_pass(positions):
    for pre_norm in (True, False):
        model = tiny_transformer(pre_norm=pre_norm, positions=positions)
        src = torch.tensor([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0]])
        mask = src != 0
        tgt = torch.tensor([[2, 11, 12, 13], [2, 14, 15, 16]])
        with torch.no_grad():
            full = model(src, mask, tgt).log_softmax(-1)
            state = model.init_state(model.encode(src, mask), mask)
            steps = []
            for position in range(tgt.size(1)):
                log_probs, state, attention = model.decode_step(tgt[:, position], state)
                steps.append(log_probs)
        assert torch.allclose(full, torch.stack(steps, dim=1), atol=1e-5)
        assert attention.shape == (2, 2, 4, 5)  # (B, L, H, S)
        assert torch.all(attention[1, :, :, 3:] == 0)  # padding gets no attention
        assert torch.allclose(attention.sum(-1), torch.ones(2, 2, 4))


def test_joint_vocabulary_ties_source_target_and_output_embeddings():
    model = tiny_transformer()
    assert model.src_embedding is model.tgt_embedding
    assert model.output.weight is model.tgt_embedding.weight
    untied = tiny_transformer(tie=False)
    assert untied.output.weight is not untied.tgt_embedding.weight


def test_positional_encoding_follows_the_paper_and_extends():
    encoding = SinusoidalPositionalEncoding(d_model=8, max_length=4)
    table = encoding(10)  # longer than its initial table
    assert table.shape == (10, 8)
    assert torch.isclose(table[3, 0], torch.sin(torch.tensor(3.0)))
    assert torch.isclose(table[3, 3], torch.cos(torch.tensor(3.0 / 10000 ** (2 / 8))))


def test_separate_vocabularies_of_equal_size_never_share_embeddings():
    config = ModelConfig(d_model=32, ff_dim=64, heads=4, encoder_layers=1, decoder_layers=1,
                         src_vocab_size=30, tgt_vocab_size=30, joint_vocab=False)
    model = build_model(config)
    assert model.src_embedding is not model.tgt_embedding
    assert model.output.weight is model.tgt_embedding.weight  # output/target tying is still fine


def test_the_self_attention_cache_keeps_the_autocast_dtype():
    model = tiny_transformer()
    src = torch.tensor([[5, 6, 7, 3]])
    mask = torch.ones_like(src, dtype=torch.bool)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        state = model.init_state(model.encode(src, mask), mask)
        for token in (2, 8, 9):
            _, state, _ = model.decode_step(torch.tensor([token]), state)
    assert state.past[0].key.dtype == torch.bfloat16  # not promoted to fp32 by an fp32 start
    assert state.past[0].key.shape == (1, 4, 3, 8)  # (B, H, steps, D/H)


def test_a_bf16_model_attends_in_fp32_when_it_decodes_on_cpu():
    model = tiny_transformer().to(torch.bfloat16)  # as mt translate --precision bf16 stores it
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0]])
    mask = src != 0
    tgt = torch.tensor([[2, 11, 12, 13], [2, 14, 15, 16]])
    with torch.no_grad():
        full = model(src, mask, tgt).float().log_softmax(-1)
        state = model.init_state(model.encode(src, mask), mask)
        steps = []
        for position in range(tgt.size(1)):
            log_probs, state, _ = model.decode_step(tgt[:, position], state)
            steps.append(log_probs)
    caches = state.cross + state.past
    assert {tensor.dtype for cache in caches for tensor in (cache.key, cache.value)} == {torch.float32}
    assert torch.allclose(full, torch.stack(steps, dim=1), atol=0.1)  # bf16 throughout vs fp32 attention


def test_learned_positions_are_a_table_lookup_that_trains_and_ends_with_its_table():
    model = tiny_transformer(positions="learned")
    assert isinstance(model.positions, LearnedPositionalEmbedding)
    table = model.positions.weight
    assert table.shape == (16, 32) and table.requires_grad
    assert torch.equal(model.positions(3, offset=5), table[5:8])
    sinusoid = SinusoidalPositionalEncoding(32)(16)
    assert not torch.allclose(table, sinusoid, atol=0.1)
    src, tgt = torch.tensor([[5, 6, 7, 3]]), torch.tensor([[2, 8, 9]])
    model(src, src != 0, tgt).sum().backward()
    assert table.grad[:4].abs().sum() > 0 and table.grad[4:].abs().sum() == 0  # rows of the positions used, only
    with pytest.raises(ValueError, match="past the learned position table of 16 positions"):
        model(torch.full((1, 17), 5), torch.ones(1, 17, dtype=torch.bool), tgt)
