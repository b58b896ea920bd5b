import json

import pytest

from mt.data import is_cjk, read_corpus, read_lines
from mt.errors import DataError

from conftest import write_pair


def test_plain_pair_drops_and_counts_empty_pairs(tmp_path):
    prefix = write_pair(tmp_path, "train", ["a b", "  ", "c"], ["A B", "X", "C  D"])
    corpus = read_corpus(prefix, "en", "de")
    assert corpus.sources == ["a b", "c"] and corpus.targets == ["A B", "C D"] and corpus.dropped_empty == 1


def test_unequal_line_counts_name_both_files_and_counts(tmp_path):
    prefix = write_pair(tmp_path, "train", ["a", "b", "c"], ["A", "B"])
    with pytest.raises(DataError, match=r"train\.en has 3 lines but .*train\.de has 2"):
        read_corpus(prefix, "en", "de")


def test_missing_file_and_empty_corpus(tmp_path):
    (tmp_path / "train.en").write_text("a\n")
    with pytest.raises(DataError, match=r"missing .*train\.de"):
        read_corpus(str(tmp_path / "train"), "en", "de")
    prefix = write_pair(tmp_path, "empty", [""], [""])
    with pytest.raises(DataError, match="no sentence pairs"):
        read_corpus(prefix, "en", "de")


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.en"
    path.write_bytes(b"fine\nalso fine\nbroken \xff here\n")
    with pytest.raises(DataError, match=r"bad\.en, line 3: not valid UTF-8"):
        list(read_lines(path))
    assert list(read_lines(path, encoding_errors="replace"))[2] == "broken \ufffd here"


def test_bom_and_crlf_are_removed(tmp_path):
    path = tmp_path / "x.en"
    path.write_bytes(b"\xef\xbb\xbfhello\r\nworld\r\n")
    assert list(read_lines(path)) == ["hello", "world"]


def test_tsv_reads_two_columns_and_ignores_the_rest(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Hello.\t你好。\tCC-BY attribution\nBye.\t再见。\n", encoding="utf-8")
    corpus = read_corpus(str(path), "en", "zh")
    assert corpus.sources == ["Hello.", "Bye."] and corpus.targets == ["你好。", "再见。"]


def test_tsv_line_with_one_column_is_an_error_with_its_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Hello.\t你好。\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs\.tsv, line 2: expected source<TAB>target"):
        read_corpus(str(path), "en", "zh")


def test_datasets_json_lines_with_translation_column(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"translation": {"en": "a cat", "de": "eine Katze"}}, {"translation": {"en": "a dog", "de": "ein Hund"}}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    corpus = read_corpus(str(path), "en", "de")
    assert corpus.sources == ["a cat", "a dog"] and corpus.targets == ["eine Katze", "ein Hund"]


def test_datasets_directory_with_language_columns(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"en": ["hello", "bye"], "zh": ["你好", "再见"]}).save_to_disk(str(tmp_path / "ds"))
    corpus = read_corpus(str(tmp_path / "ds"), "en", "zh")
    assert corpus.targets == ["你好", "再见"]
    with pytest.raises(DataError, match="expected 'translation' or the language columns"):
        read_corpus(str(tmp_path / "ds"), "en", "de")


def test_cjk_languages():
    assert is_cjk("zh") and is_cjk("ja") and is_cjk("zh-TW") and not is_cjk("de")
