"""Decoding options: sampling (temperature, top-k, top-p, seed), no-repeat n-grams, ensembles."""

from dataclasses import replace

import pytest
import torch

from mt.config import DecodeConfig
from mt.ensemble import Ensemble
from mt.errors import ConfigError
from mt.search import ban_repeated_ngrams, greedy_search, search

from conftest import source_batch, tiny_transformer

BASE = DecodeConfig(beam_size=1, max_length=12, length_penalty=0.0)


def tokens_of(results):
    return [[h.tokens for h in hypotheses] for hypotheses in results]


def repeated_ngrams(tokens: list[int], n: int) -> int:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) - len(set(grams))


@pytest.mark.parametrize("settings", [dict(temperature=1e-4), dict(top_k=1), dict(top_p=1e-6), dict(temperature=1e-4, top_p=0.9)])
def test_sampling_that_leaves_one_choice_equals_greedy(settings):
    model = tiny_transformer()
    src, mask = source_batch()
    greedy = greedy_search(model, src, mask, BASE)
    sampled = search(model, src, mask, replace(BASE, sampling=True, **settings))
    assert tokens_of(sampled) == tokens_of(greedy)
    for g, s in zip(greedy, sampled):
        assert abs(g[0].score - s[0].score) < 1e-4  # the model's log-probability, not the tempered one


def test_a_fixed_seed_reproduces_the_samples_and_another_seed_draws_others():
    model = tiny_transformer()
    src, mask = source_batch()
    config = replace(BASE, sampling=True, n_best=4, seed=7)
    first, again = search(model, src, mask, config), search(model, src, mask, config)
    other = search(model, src, mask, replace(config, seed=8))
    assert tokens_of(first) == tokens_of(again) != tokens_of(other)
    assert all(len(samples) == 4 for samples in first)
    assert len({tuple(h.tokens) for h in first[0]}) > 1  # four draws for a sentence, not one copied
    for samples in first:
        assert [h.score for h in samples] == sorted((h.score for h in samples), reverse=True)


def test_top_k_sampling_draws_only_among_the_k_most_probable_tokens():
    model = tiny_transformer()
    src, mask = source_batch()
    config = replace(BASE, sampling=True, top_k=3, n_best=8, max_length=1)  # one token each
    with torch.no_grad():
        state = model.init_state(model.encode(src, mask), mask)
        first_step, _, _ = model.decode_step(torch.full((src.size(0),), 2), state)
    allowed = first_step.topk(3, dim=-1).indices
    for row, samples in enumerate(search(model, src, mask, config)):
        for h in samples:
            assert h.tokens == [] or h.tokens[0] in allowed[row].tolist()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ban_repeated_ngrams_forbids_exactly_the_tokens_that_would_repeat_an_n_gram(n):
    history = torch.tensor([[5, 6, 7, 5, 6], [8, 8, 8, 8, 9]])
    log_probs = torch.zeros(2, 12)
    ban_repeated_ngrams(log_probs, history, n)
    banned = [set((row == float("-inf")).nonzero().flatten().tolist()) for row in log_probs]
    expected = {1: [{5, 6, 7}, {8, 9}], 2: [{7}, set()], 3: [{7}, set()]}[n]  # row 0 ends "5 6": 7 followed it
    assert banned == expected


@pytest.mark.parametrize("settings", [dict(beam_size=1), dict(beam_size=4), dict(sampling=True, seed=3, temperature=0.3)])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_outputs_have_no_repeated_n_gram(settings, n):
    model = tiny_transformer(tie=False)
    src, mask = source_batch()
    plain = search(model, src, mask, replace(BASE, max_length=16, max_length_offset=16, **settings))
    banned = search(model, src, mask, replace(BASE, max_length=16, max_length_offset=16, no_repeat_ngram_size=n, **settings))
    assert sum(repeated_ngrams(h[0].tokens, n) for h in plain) > 0  # the untrained model repeats itself
    assert all(repeated_ngrams(h[0].tokens, n) == 0 for h in banned)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_an_ensemble_of_a_model_with_itself_equals_the_model(beam_size):
    model = tiny_transformer()
    src, mask = source_batch()
    config = replace(BASE, beam_size=beam_size, length_penalty=0.6)
    alone = search(model, src, mask, config, return_attention=True)
    together = search(Ensemble([model, model]), src, mask, config, return_attention=True)
    assert tokens_of(alone) == tokens_of(together)
    for a, b in zip(alone, together):
        assert abs(a[0].score - b[0].score) < 1e-4 and torch.allclose(a[0].attention, b[0].attention, atol=1e-5)


def test_an_ensemble_of_two_models_averages_their_log_probabilities():
    first, second = tiny_transformer(), tiny_transformer(pre_norm=False)
    src, mask = source_batch()
    ensemble = Ensemble([first, second])
    with torch.no_grad():
        state = ensemble.init_state(ensemble.encode(src, mask), mask)
        log_probs, _, _ = ensemble.decode_step(torch.full((src.size(0),), 2), state)
        expected = [model.decode_step(torch.full((src.size(0),), 2), model.init_state(model.encode(src, mask), mask))[0]
                    for model in (first, second)]
    assert torch.allclose(log_probs, (expected[0] + expected[1]) / 2, atol=1e-5)


def test_an_ensemble_needs_one_vocabulary():
    with pytest.raises(ConfigError, match="share one target vocabulary"):
        Ensemble([tiny_transformer(vocab=30), tiny_transformer(vocab=31)])


@pytest.mark.parametrize("changes, message", [
    (dict(sampling=True, temperature=0.0), "temperature"), (dict(sampling=True, top_p=0.0), "top-p"),
    (dict(sampling=True, top_k=-1), "top-k"), (dict(no_repeat_ngram_size=-1), "n-gram"),
])
def test_bad_decoding_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        replace(BASE, **changes).validate()
    replace(BASE, sampling=True, n_best=8).validate()  # n samples need no beam of n
