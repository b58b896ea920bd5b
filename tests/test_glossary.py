"""Glossary files and matching terms in source sentences (mt.glossary)."""

import pytest

from mt.errors import DataError
from mt.glossary import Glossary, read_glossary


def matched(glossary: Glossary, sentence: str) -> list[tuple[str, str]]:
    return [(match.text, match.target) for match in glossary.match(sentence)]


def test_matching_ignores_case_and_keeps_to_word_boundaries():
    glossary = Glossary.from_pairs([["machine learning", "机器学习"], ["model", "模型"]])
    assert matched(glossary, "Machine Learning and MODELS, not a model.") == [("Machine Learning", "机器学习"), ("model", "模型")]
    assert matched(glossary, "remodel the machine-learning") == []  # inside a word; a hyphen is not a space
    assert matched(glossary, "machine  learning") == [("machine  learning", "机器学习")]


def test_the_longest_entry_wins_an_overlap_and_a_target_is_listed_once():
    glossary = Glossary.from_pairs([["learning", "学习"], ["machine learning", "机器学习"], ["learning rate", "学习率"],
                                    ["deep machine learning rate", "X"]])
    assert matched(glossary, "machine learning rate") == [("machine learning", "机器学习")]  # same length: the earlier
    assert matched(glossary, "deep machine learning rate") == [("deep machine learning rate", "X")]
    assert matched(glossary, "learning, then learning rate") == [("learning", "学习"), ("learning rate", "学习率")]
    assert matched(glossary, "learning and learning") == [("learning", "学习")]


def test_a_tsv_with_a_language_header_and_a_quoted_csv(tmp_path):
    tsv = tmp_path / "terms.tsv"
    tsv.write_text("\ufeffen\tzh\nmachine learning\t机器学习\n\nattention\t注意力\n", encoding="utf-8")
    assert matched(read_glossary(tsv), "Attention in machine learning") == [("Attention", "注意力"), ("machine learning", "机器学习")]
    csv = tmp_path / "terms.csv"
    csv.write_text('en,de\n"Hello, world",Hallo Welt\n', encoding="utf-8")
    assert matched(read_glossary(csv), "hello, world!") == [("hello, world", "Hallo Welt")]


@pytest.mark.parametrize("content, message", [
    ("machine learning\t机器学习\nattention\n", "line 2: expected 2 tab-separated columns"),
    ("a\tb\tc\n", "line 1: expected 2 tab-separated columns (source term, target term), found 3"),
    ("model\t模型\n\t注意力\n", "line 2: a glossary entry needs a source term and a target term"),
    ("model\t模型\nModel\t型号\n", "line 2: 'Model' -> '型号', but"),
    ("...\tx\n", None),
])
def test_a_malformed_glossary_names_its_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    if message is None:  # punctuation is a term too ("..." is three symbols)
        assert len(read_glossary(path)) == 1
        return
    with pytest.raises(DataError) as error:
        read_glossary(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_invalid_utf8_and_a_missing_file(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("a\tb\ncafé\tx\n".encode("latin-1"))
    with pytest.raises(DataError, match="line 2: not valid UTF-8"):
        read_glossary(path)
    with pytest.raises(DataError, match="missing.tsv"):
        read_glossary(tmp_path / "missing.tsv")


def test_a_request_glossary_adds_to_the_servers_and_wins_on_a_shared_term():
    server = Glossary.from_pairs([["model", "模型"], ["data", "数据"]])
    merged = server.merged(Glossary.from_pairs([["Model", "型号"]]))
    assert matched(merged, "model data") == [("model", "型号"), ("data", "数据")]
    with pytest.raises(DataError, match="entry 1: expected"):
        Glossary.from_pairs([["only one"]])


def test_mt_translate_and_eval_with_a_glossary_and_a_malformed_one(tiny_checkpoint, tmp_path):
    import json

    from typer.testing import CliRunner

    from cli import app

    glossary = tmp_path / "terms.tsv"
    glossary.write_text("de\ten\na b\tJ I H\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["translate", "a b c", "d e", "--checkpoint", str(tiny_checkpoint), "--glossary",
                                 str(glossary), "--beam-size", "3"])
    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()[:2]
    assert "J I H" in first and "J I H" not in second
    test = tmp_path / "test.tsv"
    test.write_text("a b c\tJ I H C\nd e\tD E\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "--test", str(test), "--checkpoint", str(tiny_checkpoint), "--glossary",
                                 str(glossary), "--beam-size", "3", "--json", str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    assert "term use 1 / 1 (100.0%)" in " ".join(result.output.split())
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["glossary"]
    assert report["applied_terms"] == [[{"source": "a b", "target": "J I H"}], []] and report["terms_used"] == 1
    glossary.write_text("a b\tJ I H\nc\n", encoding="utf-8")
    result = runner.invoke(app, ["translate", "a b c", "--checkpoint", str(tiny_checkpoint), "--glossary", str(glossary)])
    assert result.exit_code == 2 and f"{glossary}, line 2: expected 2 tab-separated columns" in " ".join(result.output.split())
