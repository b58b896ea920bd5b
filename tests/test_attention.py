"""The attention of the recurrent decoders: masks, the papers' score functions, the local windows, hard attention."""

from __future__ import annotations

import pytest
import torch

from mt.config import ModelConfig
from mt.models.attention import (
    AlignedAttention,
    BahdanauAttention,
    HardAttention,
    LuongConcatAttention,
    LuongGeneralAttention,
    LuongLocalAttention,
    RecurrentAttention,
)
from mt.models.rnn import ATTENTIONS

SIZE = 6  # query and memory units
CONFIG = ModelConfig(hidden_size=SIZE, local_window=2)


def make_attention(name: str) -> RecurrentAttention:
    """The attention registered as ``name`` (``mt.models.rnn.ATTENTIONS``), for SIZE units and a
    window of 2; in eval mode, where hard attention takes the argmax."""
    torch.manual_seed(0)
    return ATTENTIONS[name].build(CONFIG).eval()


# The registered attentions that score the source themselves; the others (local, hard) wrap one.
SCORES = [name for name in ATTENTIONS if not isinstance(make_attention(name), AlignedAttention)]


def inputs(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """query (B, SIZE), memory (B, S, SIZE) with zeros at padding, src_mask (B, S)."""
    torch.manual_seed(1)
    src_mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    memory = torch.randn(len(lengths), max(lengths), SIZE) * src_mask[..., None]
    return torch.randn(len(lengths), SIZE), memory, src_mask


def run(attention: RecurrentAttention, query, memory, src_mask, step: int = 3):
    with torch.no_grad():
        return attention(query, attention.project_keys(memory), memory, src_mask, step)


@pytest.mark.parametrize("name", list(ATTENTIONS))
def test_weights_sum_to_one_and_are_zero_on_padding(name):
    attention = make_attention(name)
    query, memory, src_mask = inputs([7, 4, 1])
    context, weights = run(attention, query, memory, src_mask)
    assert weights.shape == src_mask.shape and context.shape == query.shape
    assert torch.allclose(weights.sum(dim=1), torch.ones(3))
    assert (weights[~src_mask] == 0).all()
    assert torch.allclose(context, torch.einsum("bs,bsm->bm", weights, memory), atol=1e-6)


def hand_scores(attention: RecurrentAttention, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """The papers' score functions, one source position at a time, from the modules' parameters."""
    batch, length, _ = memory.shape
    scores = torch.empty(batch, length)
    for b in range(batch):
        h_t = query[b]
        for s in range(length):
            h_s = memory[b, s]
            if isinstance(attention, LuongConcatAttention):  # v_a^T tanh(W_a [h_t; h_s]), Luong eq. 8
                W_a = torch.cat([attention.query_projection.weight, attention.key_projection.weight], dim=1)
                scores[b, s] = attention.energy.weight[0] @ torch.tanh(W_a @ torch.cat([h_t, h_s]))
            elif isinstance(attention, BahdanauAttention):  # v_a^T tanh(W_a s_{t-1} + U_a h_j), Bahdanau A.1.2
                W_a, U_a = attention.query_projection.weight, attention.key_projection.weight
                scores[b, s] = attention.energy.weight[0] @ torch.tanh(W_a @ h_t + U_a @ h_s)
            elif isinstance(attention, LuongGeneralAttention):  # h_t^T W_a h_s
                scores[b, s] = h_t @ attention.bilinear.weight @ h_s
            else:  # h_t^T h_s
                scores[b, s] = h_t @ h_s
    return scores


@pytest.mark.parametrize("name", SCORES)
def test_score_equals_the_papers_formula(name):
    attention = make_attention(name)
    query, memory, src_mask = inputs([5, 5])
    expected = hand_scores(attention, query, memory)
    with torch.no_grad():
        scores = attention.score(query[:, None], attention.project_keys(memory))[:, 0]
    assert torch.allclose(scores, expected, atol=1e-5)
    _, weights = run(attention, query, memory, src_mask)
    assert torch.allclose(weights, expected.softmax(dim=1), atol=1e-6)


@pytest.mark.parametrize("score", SCORES)
def test_local_attention_is_a_window_around_the_predicted_position(score):
    window = 2
    attention = LuongLocalAttention(make_attention(score), SIZE, window)
    lengths = [20, 13, 9]
    query, memory, src_mask = inputs(lengths)
    _, weights = run(attention, query, memory, src_mask)
    with torch.no_grad():
        W_p, v_p = attention.position_projection.weight, attention.position_energy.weight[0]
        scores = attention.score(query[:, None], attention.project_keys(memory))[:, 0]
    for b, length in enumerate(lengths):
        p_t = length * torch.sigmoid(v_p @ torch.tanh(W_p @ query[b]))  # Luong eq. 10, S = real length
        positions = torch.arange(src_mask.size(1)).float()
        inside = (positions - p_t).abs() <= window
        assert (weights[b, ~inside] == 0).all()
        assert (weights[b, inside & src_mask[b]] > 0).all()
        # eq. 11: align (softmax over the window) times the Gaussian, sigma = D / 2; here renormalised.
        gaussian = torch.exp(-(positions - p_t) ** 2 / (2 * (window / 2) ** 2))
        align = scores[b].masked_fill(~(inside & src_mask[b]), float("-inf")).softmax(dim=0)
        expected = align * gaussian
        assert torch.allclose(weights[b], expected / expected.sum(), atol=1e-6)


def test_local_window_excludes_far_positions():
    """A long sentence and a narrow window leave most positions at exactly zero."""
    attention = make_attention("luong-local")
    query, memory, src_mask = inputs([30])
    _, weights = run(attention, query, memory, src_mask)
    assert 1 <= int((weights > 0).sum()) <= 2 * attention.window + 1


@pytest.mark.parametrize("name", list(ATTENTIONS))
def test_several_queries_per_sentence_equal_one_query_per_copy_of_the_sentence(name):
    """Beam search: K hypotheses per sentence attend to one copy of its source."""
    attention = make_attention(name)
    _, memory, src_mask = inputs([7, 4, 1])
    queries = torch.randn(3 * 4, SIZE)  # 4 per sentence
    context, weights = run(attention, queries, memory, src_mask)
    copies = [tensor.repeat_interleave(4, dim=0) for tensor in (memory, src_mask)]
    expected_context, expected_weights = run(attention, queries, copies[0], copies[1])
    assert torch.allclose(context, expected_context, atol=1e-6) and torch.allclose(weights, expected_weights, atol=1e-6)


@pytest.mark.parametrize("step", [0, 3, 11, 25])
def test_local_m_attends_only_within_d_of_the_target_position(step):
    """local-m: p_t = t (capped at the last real token); every weight outside [p_t - D, p_t + D] is 0."""
    attention = make_attention("luong-local-m")
    lengths = [20, 13, 9]
    query, memory, src_mask = inputs(lengths)
    _, weights = run(attention, query, memory, src_mask, step)
    positions = torch.arange(src_mask.size(1))
    with torch.no_grad():
        scores = attention.score(query[:, None], attention.project_keys(memory))[:, 0]
    for b, length in enumerate(lengths):
        inside = ((positions - min(step, length - 1)).abs() <= attention.window) & src_mask[b]
        assert (weights[b, ~inside] == 0).all() and (weights[b, inside] > 0).all()
        assert torch.allclose(weights[b], scores[b].masked_fill(~inside, float("-inf")).softmax(dim=0), atol=1e-6)


def test_hard_attention_at_inference_is_one_hot_at_the_argmax_and_its_context_that_state():
    attention = make_attention("hard")
    query, memory, src_mask = inputs([7, 4, 1])
    context, weights = run(attention, query, memory, src_mask)
    assert ((weights > 0).sum(dim=-1) == 1).all() and (weights.max(dim=-1).values == 1).all()
    with torch.no_grad():
        scores = attention.score(query[:, None], attention.project_keys(memory))[:, 0].masked_fill(~src_mask, float("-inf"))
    chosen = scores.argmax(dim=-1)
    assert torch.equal(weights.argmax(dim=-1), chosen)
    assert torch.equal(context, memory[torch.arange(3), chosen])


def test_hard_attention_in_training_samples_one_position_and_passes_gradients_straight_through():
    attention = make_attention("hard").train()
    query, memory, src_mask = inputs([7, 4, 1])
    torch.manual_seed(3)
    samples = torch.stack([attention(query, attention.project_keys(memory), memory, src_mask, 0)[1] for _ in range(50)])
    assert ((samples > 0).sum(dim=-1) == 1).all() and (samples[..., ~src_mask] == 0).all()
    assert len({row.argmax().item() for row in samples[:, 0]}) > 1  # sampled, not always the argmax
    context, _ = attention(query, attention.project_keys(memory), memory, src_mask, 0)
    context.sum().backward()
    assert attention.alignment.bilinear.weight.grad.abs().sum() > 0


def test_reinforce_samples_without_a_gradient_path_and_its_surrogate_is_xu_et_al_s_policy_gradient():
    attention = HardAttention(make_attention("luong-general"), estimator="reinforce", entropy_weight=0.5).train()
    query, memory, src_mask = inputs([7, 4, 1])
    for step in range(2):
        context, weights = attention(query, attention.project_keys(memory), memory, src_mask, step)
        assert ((weights > 0).sum(dim=-1) == 1).all() and not context.requires_grad  # the draw is not differentiated
    (log_a0, h0), (log_a1, h1) = attention.trace
    rewards, mask = torch.tensor([-1.0, -2.0, -3.0]), torch.tensor([[True, True], [True, False], [True, True]])
    surrogate = attention.policy_loss(rewards, mask)
    log_chosen, entropy = torch.stack([log_a0, log_a1], 1), torch.stack([h0, h1], 1)
    expected = -(((rewards - 0.0)[:, None] * log_chosen + 0.5 * entropy) * mask).sum()  # the baseline starts at 0
    assert torch.allclose(surrogate, expected) and attention.trace == []
    assert torch.isclose(attention.baseline, torch.tensor(0.1 * -2.0))  # moving average, decay 0.9
    surrogate.backward()
    assert attention.alignment.bilinear.weight.grad.abs().sum() > 0
    assert torch.allclose(h0[2], torch.tensor(0.0))  # one real source token: no uncertainty
