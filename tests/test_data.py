import json
import os

import pytest

from mt.data import clean_text, count_lines, is_cjk, read_corpus, read_lines
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


def test_utf16_without_a_bom_is_an_error_naming_file_and_line(tmp_path):
    (tmp_path / "u.en").write_bytes("Two young men\nA dog\n".encode("utf-16-le"))
    (tmp_path / "u.de").write_text("Zwei junge Männer\nEin Hund\n")
    for errors in ("strict", "replace"):
        with pytest.raises(DataError, match=r"u\.en, line 1: .* NUL: this looks like UTF-16"):
            read_corpus(str(tmp_path / "u"), "en", "de", errors)


def test_a_line_without_end_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    import mt.data

    monkeypatch.setattr(mt.data, "MAX_LINE_BYTES", 1000)
    (tmp_path / "long.txt").write_text("ok\n" + "a" * 5000)
    with pytest.raises(DataError, match=r"long\.txt, line 2: over .* without a line break"):
        list(read_lines(tmp_path / "long.txt"))


def test_a_pipe_a_directory_and_a_device_are_refused_as_corpora_with_their_own_message(tmp_path):
    os.mkfifo(tmp_path / "fifo.en")
    os.mkfifo(tmp_path / "fifo.de")
    with pytest.raises(DataError, match="fifo.en is not a regular file .* save it to a file first"):
        read_corpus(str(tmp_path / "fifo"), "en", "de")  # returns at once: nothing opens the pipe
    (tmp_path / "dir").mkdir()
    with pytest.raises(DataError, match="dir is a directory, not a corpus"):
        read_corpus(str(tmp_path / "dir"), "en", "de")
    with pytest.raises(DataError, match=r"/dev/null' is one file \(not even a regular one\)"):
        read_corpus("/dev/null", "en", "de")


def test_a_tsv_header_row_is_skipped_and_reported(tmp_path):
    (tmp_path / "h.tsv").write_text("en\tzh\tattribution\nI love you.\t我爱你。\tx\n")
    corpus = read_corpus(str(tmp_path / "h.tsv"), "en", "zh")
    assert corpus.header == "en\tzh\tattribution" and corpus.sources == ["I love you."]
    (tmp_path / "n.tsv").write_text("Source code.\t源代码。\n")
    assert read_corpus(str(tmp_path / "n.tsv"), "en", "zh").header is None


def test_a_line_of_only_zero_width_characters_is_empty_but_they_stay_inside_text():
    assert clean_text("\u200b\u200b\u200d\ufeff \u2060") == ""
    assert clean_text("man\u200dwoman") == "man\u200dwoman"


def test_count_lines_counts_a_regular_file_and_nothing_else(tmp_path):
    (tmp_path / "three.txt").write_bytes(b"a\nb\n\xff\n")
    assert count_lines(tmp_path / "three.txt") == 3
    assert count_lines(tmp_path) is None and count_lines(tmp_path / "absent") is None
