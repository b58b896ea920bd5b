"""Word-level attention and word alignments (mt.alignment): merged rows stay distributions, links
stay in range, and the words are those a reader sees."""

import pytest
import torch

from mt.alignment import alignment_labels, merge_pieces, pharaoh, select_attention, word_alignment, word_index, words
from mt.config import DecodeConfig
from mt.errors import ConfigError, DataError
from mt.search import beam_search
from mt.translate import Translation

from conftest import tiny_transformer


def known_attention():
    """(T=3, L=2, H=4, S=5) with every weight different."""
    return torch.arange(3 * 2 * 4 * 5, dtype=torch.float32).reshape(3, 2, 4, 5)


def test_default_view_is_the_last_layer_with_heads_averaged():
    attention = known_attention()
    assert torch.equal(select_attention(attention), attention[:, 1].mean(dim=1))
    assert torch.equal(select_attention(attention, layer=0, head=2), attention[:, 0, 2])
    assert torch.equal(select_attention(attention, layer=-2, head=-1), attention[:, 0, 3])
    every_head = select_attention(attention, head="all")
    assert every_head.shape == (4, 3, 5)
    assert torch.equal(every_head[1], attention[:, 1, 1])


def test_missing_layers_and_heads_name_the_valid_range():
    with pytest.raises(ConfigError, match="2 layer.*0..1"):
        select_attention(known_attention(), layer=2)
    with pytest.raises(ConfigError, match="4 head.*0..3"):
        select_attention(known_attention(), head=4)
    with pytest.raises(ConfigError, match="'first'"):
        select_attention(known_attention(), head="first")


def test_labels_drop_batch_padding_and_mark_eos():
    attention = torch.rand(3, 1, 1, 6)  # 2 target pieces + EOS; 3 source pieces + EOS + 2 padding
    translation = Translation("a bc", "", 0.0, ["▁a", "▁b", "c"], ["▁A", "▁BC"], attention)
    trimmed, rows, columns = alignment_labels(translation, "piece")
    assert torch.equal(trimmed, attention[..., :4])
    assert rows == ["·A", "·BC", "</s>"]
    assert columns == ["·a", "·b", "c", "</s>"]
    cut_at_length_limit = Translation("a bc", "", 0.0, ["▁a", "▁b", "c"], ["▁A", "▁BC"], attention[:2])
    assert alignment_labels(cut_at_length_limit, "piece")[1] == ["·A", "·BC"]
    with pytest.raises(DataError, match="no attention"):
        alignment_labels(Translation("", "", 0.0))


def test_attention_of_a_real_model_sums_to_one_over_the_source():
    model = tiny_transformer()
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0]])  # the second sentence has padding
    outputs = beam_search(model, src, src != 0, DecodeConfig(beam_size=2, max_length=6), return_attention=True)
    for source_length, (best, *_) in zip((4, 2), outputs):
        translation = Translation("", "", best.score, [f"s{i}" for i in range(source_length)],
                                  [f"t{i}" for i in range(len(best.tokens))], best.attention)
        attention, rows, columns = alignment_labels(translation, "piece")
        assert len(columns) == source_length + 1
        for matrix in (select_attention(attention), select_attention(attention, layer=0, head="all")):
            assert matrix.shape[-2:] == (len(rows), len(columns))
            assert torch.allclose(matrix.sum(dim=-1), torch.ones(matrix.shape[:-1]), atol=1e-5)


def test_words_follow_the_marker_split_final_punctuation_and_take_each_chinese_piece():
    english = ["▁I", "▁love", "▁machine", "▁learn", "ing", "."]
    assert word_index(english) == [0, 1, 2, 3, 3, 4]
    assert words(english) == ["I", "love", "machine", "learning", "."]
    assert words(["▁don", "'", "t", "▁go"]) == ["don't", "go"]  # punctuation inside a word stays in it
    assert words(["▁我喜欢", "学", "机器", "。"]) == ["我喜欢", "学", "机器", "。"]  # no spaces: a piece is a word
    assert words(["▁", "我", "喜欢"]) == ["我", "喜欢"]  # a bare marker joins the word after it


def test_merging_sums_a_source_word_and_averages_a_target_word_by_hand():
    attention = torch.tensor([[0.1, 0.2, 0.7],   # target word 0, piece 1
                              [0.3, 0.3, 0.4],   # target word 0, piece 2
                              [0.5, 0.25, 0.25]])  # target word 1
    merged = merge_pieces(attention, [0, 0, 1], [0, 0, 1])  # source pieces 0 and 1 are one word
    assert torch.allclose(merged, torch.tensor([[(0.3 + 0.6) / 2, (0.7 + 0.4) / 2], [0.75, 0.25]]))


def real_translations():
    """Translations of two sentences (one padded in its batch) by a tiny random Transformer, with
    several pieces to a word on both sides."""
    model = tiny_transformer()
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0]])
    outputs = beam_search(model, src, src != 0, DecodeConfig(beam_size=2, max_length=6), return_attention=True)
    translations = []
    for source_pieces, (best, *_) in zip((["▁a", "b", "▁c", "."], ["▁我", "喜欢"]), outputs):
        target_pieces = [("▁" if i % 3 == 0 else "") + f"t{i}" for i in range(len(best.tokens))]
        translations.append(Translation("", "", best.score, source_pieces, target_pieces, best.attention))
    return translations


def test_word_rows_of_a_real_model_still_sum_to_one():
    for translation in real_translations():
        attention, rows, columns = alignment_labels(translation, "word")
        assert columns == words(translation.src_pieces) + ["</s>"]
        assert rows[: len(words(translation.tgt_pieces))] == words(translation.tgt_pieces)
        assert attention.shape[0] == len(rows) and attention.shape[-1] == len(columns)
        assert attention.shape[0] < len(translation.tgt_pieces) + 1  # pieces were merged
        assert torch.allclose(attention.sum(dim=-1), torch.ones(attention.shape[:-1]), atol=1e-5)


def test_alignment_links_every_target_word_to_a_real_source_word():
    for translation in real_translations():
        source_words, target_words = words(translation.src_pieces), words(translation.tgt_pieces)
        for layer in (None, 0):
            links = word_alignment(translation, layer)
            assert [target for _, target in links] == list(range(len(target_words)))
            assert all(0 <= source < len(source_words) for source, _ in links)
        text = pharaoh(word_alignment(translation))
        assert "\n" not in text and all(pair.count("-") == 1 for pair in text.split())


def test_an_unknown_level_is_refused():
    with pytest.raises(ConfigError, match="word or piece"):
        alignment_labels(real_translations()[0], "character")
