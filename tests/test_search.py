import pytest
import torch

from mt.config import DecodeConfig
from mt.search import beam_search, best_extensions, greedy_search, length_penalty

from conftest import source_batch, tiny_transformer


def test_beam_size_one_equals_greedy():
    model = tiny_transformer()
    src, mask = source_batch()
    greedy = greedy_search(model, src, mask, DecodeConfig(beam_size=1, max_length=12))
    beam = beam_search(model, src, mask, DecodeConfig(beam_size=1, max_length=12, length_penalty=0.0))
    assert [h[0].tokens for h in greedy] == [h[0].tokens for h in beam]
    for g, b in zip(greedy, beam):
        assert abs(g[0].score - b[0].score) < 1e-4


def test_batched_search_equals_one_sentence_at_a_time():
    model = tiny_transformer()
    src, mask = source_batch()
    config = DecodeConfig(beam_size=4, max_length=12)
    together = beam_search(model, src, mask, config)
    for row in range(src.size(0)):
        length = int(mask[row].sum())
        alone = beam_search(model, src[row : row + 1, :length], mask[row : row + 1, :length], config)
        assert alone[0][0].tokens == together[row][0].tokens


def test_beam_scores_are_sorted_and_n_best_is_respected():
    model = tiny_transformer()
    src, mask = source_batch()
    results = beam_search(model, src, mask, DecodeConfig(beam_size=5, n_best=3, max_length=12))
    for hypotheses in results:
        assert len(hypotheses) == 3
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)


def test_beam_score_is_the_sequence_log_probability_over_the_length_penalty():
    model = tiny_transformer()
    src, mask = source_batch()
    config = DecodeConfig(beam_size=3, max_length=10, length_penalty=0.6)
    best = beam_search(model, src[:1], mask[:1], config)[0][0]
    tokens = torch.tensor([[2] + best.tokens])
    with torch.no_grad():
        log_probs = model(src[:1], mask[:1], tokens).log_softmax(-1)[0]
    forced_stop = len(best.tokens) == config.max_length  # stopped at the cap, without EOS
    labels = best.tokens if forced_stop else best.tokens + [3]
    total = float(sum(log_probs[i, label] for i, label in enumerate(labels)))
    assert abs(best.score - total / length_penalty(len(labels), 0.6)) < 1e-4


def test_attention_of_the_returned_hypothesis_matches_a_rescoring():
    model = tiny_transformer()
    src, mask = source_batch()
    config = DecodeConfig(beam_size=4, max_length=10)
    for hypotheses, row in zip(beam_search(model, src, mask, config, return_attention=True), range(src.size(0))):
        best = hypotheses[0]
        state = model.init_state(model.encode(src[row : row + 1], mask[row : row + 1]), mask[row : row + 1])
        rows = []
        with torch.no_grad():
            for token in [2] + best.tokens:
                _, state, attention = model.decode_step(torch.tensor([token]), state)
                rows.append(attention[0])
        produced_eos = len(best.tokens) < config.max_length
        assert best.attention.size(0) == len(best.tokens) + int(produced_eos)
        expected = torch.stack(rows)[: best.attention.size(0)]
        assert torch.allclose(best.attention, expected, atol=1e-5)
        assert torch.allclose(best.attention.sum(-1), torch.ones_like(best.attention.sum(-1)), atol=1e-5)


def test_length_penalty_of_wu_et_al():
    assert length_penalty(1, 1.0) == 1.0
    assert abs(length_penalty(7, 0.5) - (12 / 6) ** 0.5) < 1e-12
    assert length_penalty(30, 0.0) == 1.0


def test_greedy_results_do_not_depend_on_when_finished_sentences_leave_the_batch(monkeypatch):
    import mt.search

    model = tiny_transformer(tie=False)
    with torch.no_grad():  # an output row for EOS (3) that some sources reach early, others never
        model.output.weight[3] += torch.randn(32)
    torch.manual_seed(2)
    src = torch.randint(4, 30, (40, 9))
    mask = torch.ones_like(src, dtype=torch.bool)
    config = DecodeConfig(beam_size=1, max_length=12)
    runs = {}
    for every in (1, 8, 1000):  # drop finished rows at once, at 1/8 of the batch, only at the end
        monkeypatch.setattr(mt.search, "COMPACT_EVERY", every)
        runs[every] = greedy_search(model, src, mask, config, return_attention=True)
    assert len({len(h[0].tokens) for h in runs[1]}) > 2  # the rows finish at different steps
    for later in (runs[8], runs[1000]):
        for first, second in zip(runs[1], later):
            assert first[0].tokens == second[0].tokens and abs(first[0].score - second[0].score) < 1e-5
            assert torch.allclose(first[0].attention, second[0].attention, atol=1e-6)


@pytest.mark.parametrize("groups, width, vocab, k", [(5, 1, 640, 1), (3, 1, 8000, 10), (4, 3, 1003, 6), (2, 5, 200, 4),
                                                    (3, 5, 8000, 10), (3, 5, 150, 10)])
def test_best_extensions_by_blocks_equal_topk_of_the_sums(groups, width, vocab, k):
    torch.manual_seed(vocab + width)
    log_probs, scores = torch.randn(groups * width, vocab), 3 * torch.randn(groups, width)
    log_probs[0, 64:64 + k] = 10 + torch.arange(k, dtype=torch.float)  # group 0: its k best in one block of one hypothesis
    values, hypothesis, token = best_extensions(log_probs, scores, k, block=16)
    expected = (log_probs + scores.view(-1, 1)).view(groups, width * vocab).topk(k, dim=-1)
    assert torch.equal(values, expected.values)
    assert torch.equal(hypothesis * vocab + token, expected.indices)


def test_reordering_beams_keeps_one_row_per_sentence_of_the_source_tensors():
    from mt.models.rnn import RecurrentState

    state = RecurrentState({"memory": torch.arange(3)[:, None], "hidden": torch.arange(3)[:, None]})
    beams = state.reorder(torch.tensor([0, 0, 1, 1, 2, 2]), None, beams=2)  # the first step's one row -> 2 beams
    assert beams.tensors["memory"].flatten().tolist() == [0, 1, 2] and beams.tensors["hidden"].flatten().tolist() == [0, 0, 1, 1, 2, 2]
    left = beams.reorder(torch.tensor([5, 4]), torch.tensor([2]), beams=2)  # sentences 0 and 1 are done
    assert left.tensors["memory"].flatten().tolist() == [2] and left.tensors["hidden"].flatten().tolist() == [2, 2]


def test_reordering_leaves_the_self_attention_caches_to_be_reordered_as_they_grow():
    from mt.models.transformer import DecoderCache, LayerCache, append_step

    cache = torch.arange(3 * 2 * 4 * 1, dtype=torch.float).view(3, 2, 4, 1)  # (N, H, t, D/H)
    source = torch.arange(3, dtype=torch.float).view(3, 1, 1, 1)
    state = DecoderCache(torch.ones(3, 1, 1, 2, dtype=torch.bool), [LayerCache(source, source)], [LayerCache(cache, cache)])
    first = state.reorder(torch.tensor([2, 2, 0]), None, beams=1)
    second = first.reorder(torch.tensor([1, 0]), torch.tensor([2]), beams=2)
    assert second.past[0].key is cache and second.rows.tolist() == [2, 2]  # rows composed, nothing copied yet
    assert second.cross[0].key.flatten().tolist() == [2] and second.key_mask.shape == (1, 1, 1, 2) and second.beams == 2
    step = torch.full((2, 2, 1, 1), -1.0)
    assert torch.equal(second.past[0].append(step, step, second.rows).key, torch.cat([cache[[2, 2]], step], dim=2))
    assert torch.equal(append_step(cache, step[:1].expand(3, -1, -1, -1), None), torch.cat([cache, step[:1].expand(3, -1, -1, -1)], dim=2))
    assert append_step(cache[:, :, :0], step, second.rows) is step  # the first step: nothing cached yet
