import numpy as np

from mt.batching import Shape, TrainingBatches, choose_shapes, collate, decoding_batches, plan_batches
from mt.store import TokenizedCorpus
from mt.tokenizer import BOS_ID, EOS_ID, PAD_ID


def random_ids(count, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(4, 50, size=rng.integers(1, 40)).tolist() for _ in range(count)]


def test_every_sentence_once_and_within_the_token_budget():
    src, tgt = random_ids(500, 0), random_ids(500, 1)
    batches = TrainingBatches(TokenizedCorpus.from_lists(src, tgt), batch_tokens=256, seed=3)
    seen = []
    for batch in batches.epoch(0):
        assert batch.src.numel() <= 256 and batch.tgt_out.numel() <= 256
        seen.extend(batch.indices)
    assert sorted(seen) == list(range(500))


def test_length_buckets_keep_padding_low_and_epochs_differ():
    src = random_ids(2000, 0)
    batches = TrainingBatches(TokenizedCorpus.from_lists(src, src), batch_tokens=1024, seed=3)
    assert batches.padding_fraction() < 0.1
    first, second = batches.plan(0), batches.plan(1)
    assert [list(b) for b in first] != [list(b) for b in second]
    assert [list(b) for b in batches.plan(0)] == [list(b) for b in first]


def test_collate_shifts_target_and_pads():
    batch = collate([0, 1], [[5, 6, 7], [8]], [[9, 10], [11, 12, 13]])
    assert batch.src.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.tgt_in.tolist() == [[BOS_ID, 9, 10, PAD_ID], [BOS_ID, 11, 12, 13]]
    assert batch.tgt_out.tolist() == [[9, 10, EOS_ID, PAD_ID], [11, 12, 13, EOS_ID]]
    assert batch.src_mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert batch.n_tgt_tokens == 7


def test_an_overlong_sentence_gets_a_batch_of_its_own():
    lengths = np.array([3, 500, 4])
    batches = plan_batches(lengths, None, batch_tokens=100, rng=None)
    assert sorted(map(list, batches)) == [[0, 2], [1]]


def test_decoding_batches_cover_input_in_length_order():
    src = random_ids(100, 5)
    indices = [i for batch in decoding_batches(src, 200) for i in batch.indices]
    assert sorted(indices) == list(range(100))
    lengths = [len(src[i]) for i in indices]
    assert lengths == sorted(lengths)


def test_weights_draw_each_pair_that_many_times_an_epoch_on_average():
    corpus = TokenizedCorpus.from_lists([[5] * (i % 7 + 1) for i in range(300)], [[6] * (i % 5 + 1) for i in range(300)])
    weights = np.array([2.0] * 100 + [1.0] * 100 + [0.5] * 100)
    batches = TrainingBatches(corpus, batch_tokens=64, seed=3, weights=weights)
    counts = np.bincount(np.concatenate(batches.plan(0)), minlength=300)
    assert (counts[:100] == 2).all() and (counts[100:200] == 1).all() and set(counts[200:]) == {0, 1}
    assert 30 < counts[200:].sum() < 70 and counts[200:].tolist() != np.bincount(np.concatenate(batches.plan(1)), minlength=300)[200:].tolist()
    assert [b.tolist() for b in batches.plan(0)] == [b.tolist() for b in TrainingBatches(corpus, 64, 3, weights).plan(0)]


def test_shape_buckets_cover_every_sentence_once_in_a_few_shapes_within_the_token_budget():
    src, tgt = random_ids(500, 0), random_ids(500, 1)
    batches = TrainingBatches(TokenizedCorpus.from_lists(src, tgt), batch_tokens=256, seed=3, shapes=4)
    assert 1 < len(batches.shapes) <= 4
    assert all(shape.rows * max(shape.src_len, shape.tgt_len) <= 256 for shape in batches.shapes)
    seen, shapes = [], set()
    for batch in batches.epoch(0):
        shape = Shape(batch.src.size(0), batch.src.size(1), batch.tgt_out.size(1))
        assert shape in batches.shapes and batch.tgt_in.shape == batch.tgt_out.shape
        assert batch.n_tgt_tokens == sum(len(tgt[i]) + 1 for i in batch.indices)
        assert batch.n_src_tokens == sum(len(src[i]) + 1 for i in batch.indices)
        seen.extend(batch.indices)
        shapes.add(shape)
    assert sorted(seen) == list(range(500)) and shapes == set(batches.shapes)
    assert 0.05 < batches.padding_fraction() < 0.5


def test_filler_rows_complete_a_shape_with_an_empty_source_and_no_labels():
    batch = collate([0], [[5, 6]], [[9]], shape=Shape(rows=3, src_len=4, tgt_len=3))
    assert batch.src.tolist() == [[5, 6, EOS_ID, PAD_ID]] + [[EOS_ID, PAD_ID, PAD_ID, PAD_ID]] * 2
    assert batch.tgt_in.tolist() == [[BOS_ID, 9, PAD_ID]] + [[BOS_ID, PAD_ID, PAD_ID]] * 2
    assert batch.tgt_out.tolist() == [[9, EOS_ID, PAD_ID]] + [[PAD_ID] * 3] * 2
    assert (batch.n_src_tokens, batch.n_tgt_tokens, batch.indices) == (3, 2, [0])


def test_the_chosen_shapes_pad_least_of_all_ways_to_cut_the_lengths():
    rng = np.random.default_rng(4)
    src_lengths, tgt_lengths = rng.integers(1, 12, 200), rng.integers(1, 12, 200)
    shapes, bucket_of = choose_shapes(src_lengths, tgt_lengths, batch_tokens=100, count=3)

    def padded(bucket_of):
        return sum((bucket_of == b).sum() * (src_lengths[bucket_of == b].max() + tgt_lengths[bucket_of == b].max())
                   for b in np.unique(bucket_of))

    longest = np.maximum(src_lengths, tgt_lengths)
    values = np.unique(longest)
    best = min(padded(np.searchsorted(cuts, longest, side="right"))
               for first in range(len(values)) for second in range(first, len(values))
               for cuts in [np.array([values[first], values[second]])])
    assert padded(bucket_of) == best and len(shapes) == 3
    assert [(s.src_len, s.tgt_len) for s in shapes] == [(src_lengths[bucket_of == b].max(), tgt_lengths[bucket_of == b].max())
                                                       for b in range(3)]
