"""Tokenized corpora in memory-mapped Arrow files, cached by content."""

import os

import pytest

from mt.config import DataConfig
from mt.data import CorpusReader
from mt.errors import DataError
from mt.store import cache_root, cached_tokenizer, tokenize_corpus

from conftest import synthetic_sentences, write_pair


def corpus(tmp_path, count=300, name="train"):
    sources = synthetic_sentences(count, seed=5)
    return write_pair(tmp_path, name, sources, [s.upper() for s in sources]), sources


def test_the_arrow_corpus_holds_the_tokenizers_ids_and_drops_long_pairs(tmp_path, tiny_tokenizer):
    prefix, sources = corpus(tmp_path)
    data = DataConfig(train=prefix, max_length=10)
    stored = tokenize_corpus(CorpusReader(prefix, "en", "de"), tiny_tokenizer, data)
    expected = [(s, t) for s, t in zip(tiny_tokenizer.encode_src(sources), tiny_tokenizer.encode_tgt([s.upper() for s in sources]))
                if len(s) <= 10 and len(t) <= 10]
    assert 0 < stored.dropped_long == len(sources) - len(expected)
    assert len(stored) == len(expected)
    src_rows, tgt_rows = stored.rows([3, 0, len(expected) - 1])
    assert src_rows == [expected[3][0], expected[0][0], expected[-1][0]]
    assert tgt_rows == [expected[3][1], expected[0][1], expected[-1][1]]
    assert stored.src_lengths.tolist() == [len(s) for s, _ in expected]
    assert stored.table.cache_files, "the corpus should be memory-mapped from its Arrow file"


def test_a_second_run_reopens_the_cache_and_a_changed_corpus_is_tokenized_again(tmp_path, tiny_tokenizer, monkeypatch):
    prefix, sources = corpus(tmp_path)
    data = DataConfig(train=prefix)
    first = tokenize_corpus(CorpusReader(prefix, "en", "de"), tiny_tokenizer, data)
    entries = list((cache_root(data) / "corpora").iterdir())
    assert len(entries) == 1

    def no_encoding(*args):
        raise AssertionError("re-tokenized a cached corpus")

    with monkeypatch.context() as patched:
        patched.setattr(type(tiny_tokenizer), "encode_src", no_encoding)
        again = tokenize_corpus(CorpusReader(prefix, "en", "de"), tiny_tokenizer, data)
    assert again.rows([0, 1]) == first.rows([0, 1])

    with open(f"{prefix}.de", "a", encoding="utf-8") as handle:  # one more pair: different content
        handle.write("x\n")
    with open(f"{prefix}.en", "a", encoding="utf-8") as handle:
        handle.write("a\n")
    changed = tokenize_corpus(CorpusReader(prefix, "en", "de"), tiny_tokenizer, data)
    assert len(changed) == len(first) + 1
    assert len(list((cache_root(data) / "corpora").iterdir())) == 2


def test_the_tokenizer_is_trained_once_per_corpus_and_settings(tmp_path, monkeypatch):
    prefix, _ = corpus(tmp_path)
    data = DataConfig(train=prefix, vocab_size=40, model_type="bpe")
    first = cached_tokenizer([CorpusReader(prefix, "en", "de")], data)
    monkeypatch.setattr("mt.store.train_tokenizer", lambda *a, **k: pytest.fail("trained the tokenizer again"))
    again = cached_tokenizer([CorpusReader(prefix, "en", "de")], data)
    assert again.src.serialized_model_proto() == first.src.serialized_model_proto()


def test_bad_input_midway_leaves_no_cache_entry_and_names_the_line(tmp_path, tiny_tokenizer):
    sources = synthetic_sentences(30_000, seed=1, max_length=4)  # more than one chunk before the bad line
    prefix = write_pair(tmp_path, "train", sources, sources)
    with open(f"{prefix}.de", "ab") as handle:
        handle.write(b"caf\xe9\n")
    with open(f"{prefix}.en", "a", encoding="utf-8") as handle:
        handle.write("a\n")
    data = DataConfig(train=prefix)
    with pytest.raises(DataError, match=r"train\.de, line 30001: not valid UTF-8"):
        tokenize_corpus(CorpusReader(prefix, "en", "de"), tiny_tokenizer, data)
    assert os.listdir(cache_root(data) / "corpora") == []


def test_unequal_sides_are_reported_with_both_line_counts_while_streaming(tmp_path):
    prefix = write_pair(tmp_path, "train", ["a b", "c d", "e"], ["A B", "C D"])
    with pytest.raises(DataError, match=r"train\.en has 3 lines but .*train\.de has 2"):
        list(CorpusReader(prefix, "en", "de"))
