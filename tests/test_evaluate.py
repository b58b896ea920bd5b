"""mt.evaluate: a test set read with its notes, scored from a hypothesis file or a translator, as a report."""

import json

import pytest
import sacrebleu
import torch

from conftest import write_pair
from mt.engines import check_language_pair, load_translator
from mt.errors import CheckpointError, ConfigError, DataError, OutputError
from mt.evaluate import evaluate, read_test_set
from mt.glossary import read_glossary


def test_a_hypothesis_file_is_scored_as_sacrebleu_scores_it_and_reported_without_speed(tmp_path):
    prefix = write_pair(tmp_path, "test", ["a b", "", "c d"], ["A B", "X", "C D"])
    test_set = read_test_set(prefix, "en", "de")
    assert len(test_set) == 3 and test_set.notes == [
        f"{test_set.corpus.origin} has 1 pair(s) with an empty side (line 2): they are translated and scored as they "
        "are, none is left out"]
    (tmp_path / "hyp.txt").write_text("A B\nY\nC E\n", encoding="utf-8")
    report = evaluate(test_set, "none", hypotheses_file=tmp_path / "hyp.txt")
    expected = sacrebleu.corpus_bleu(["A B", "Y", "C E"], [["A B", "X", "C D"]])
    assert [score.name for score in report.scores] == ["BLEU", "chrF", "TER"]
    assert abs(report.scores[0].score - expected.score) < 1e-9
    assert report.seconds is None and report.sentences_per_s is None and report.glossary is None
    assert set(report.to_json()) == {"test", "sentences", "checkpoint", "hypotheses", "scores"}
    assert report.to_json()["hypotheses"] == str(tmp_path / "hyp.txt") and report.inputs[-1] == tmp_path / "hyp.txt"
    report.write(tmp_path / "out.txt", tmp_path / "scores.json")
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "A B\nY\nC E\n"
    assert json.loads((tmp_path / "scores.json").read_text(encoding="utf-8")) == report.to_json()
    with pytest.raises(OutputError):
        report.write(json_file=tmp_path / "hyp.txt")  # an input


def test_what_evaluate_refuses_before_translating(tmp_path):
    prefix = write_pair(tmp_path, "test", ["a b", "c d"], ["A B", "C D"])
    test_set = read_test_set(prefix, "en", "de")
    (tmp_path / "hyp.txt").write_text("A B\n", encoding="utf-8")
    with pytest.raises(DataError, match="has 1 lines but"):
        evaluate(test_set, "none", hypotheses_file=tmp_path / "hyp.txt")
    with pytest.raises(ConfigError, match="cannot apply to a --hyp file"):
        evaluate(test_set, "none", hypotheses_file=tmp_path / "hyp.txt", glossary=tmp_path / "terms.tsv")
    with pytest.raises(ConfigError, match="unknown BLEU tokenizer"):
        evaluate(test_set, "none", hypotheses_file=tmp_path / "hyp.txt", tokenize="nonesuch")
    with pytest.raises(OutputError, match="is also an input"):
        evaluate(test_set, "none", hypotheses_file=tmp_path / "hyp.txt", outputs=(None, tmp_path / "test.en"))
    with pytest.raises(ConfigError, match="give --src and --tgt"):
        read_test_set(prefix, "en", None)


def test_a_translated_report_has_speed_settings_and_glossary_use(tiny_checkpoint, tmp_path):
    translator = load_translator([tiny_checkpoint], device="cpu")
    test = tmp_path / "test.tsv"
    test.write_text("a b c\tJ I H C\nd e\tD E\n", encoding="utf-8")
    (tmp_path / "terms.tsv").write_text("a b\tJ I H\n", encoding="utf-8")
    test_set = read_test_set(str(test), None, None, translator, tiny_checkpoint)
    assert (test_set.src, test_set.tgt) == (translator.tokenizer.src_lang, translator.tokenizer.tgt_lang)
    decode = translator.config.decode.with_overrides(beam_size=3)
    done = []
    report = evaluate(test_set, str(tiny_checkpoint), translator, decode, glossary=tmp_path / "terms.tsv",
                      progress=done.append)
    expected = translator.translate(["a b c", "d e"], decode, glossary=read_glossary(tmp_path / "terms.tsv"))
    assert sum(done) == 2 and report.hypotheses == [translation.text for translation in expected]
    assert report.seconds > 0 and report.threads == torch.get_num_threads() and report.decode.beam_size == 3
    written = report.to_json()
    assert written["beam_size"] == 3 and written["sentences"] == 2
    assert written["glossary"] == {"file": str(tmp_path / "terms.tsv"), "terms_found": 1, "terms_used": 1,
                                   "applied_terms": [[{"source": "a b", "target": "J I H"}], []],
                                   "missed_terms": [[], []]}


def test_decode_overrides_keep_what_is_none_and_are_validated():
    from mt.config import DecodeConfig

    base = DecodeConfig(beam_size=4, length_penalty=0.6)
    assert base.with_overrides(beam_size=None, length_penalty=1.0) == DecodeConfig(beam_size=4, length_penalty=1.0)
    with pytest.raises(ConfigError, match="n-best must be in 1..beam size"):
        base.with_overrides(n_best=5)


def test_loading_a_model_changes_no_process_setting_and_the_engine_is_checked(tiny_checkpoint):
    torch.set_num_threads(3)
    try:
        translator = load_translator([tiny_checkpoint], device="cpu")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(1)
    trained = f"{translator.tokenizer.src_lang}->{translator.tokenizer.tgt_lang}"
    with pytest.raises(CheckpointError, match=f"translates {trained}, not xx->"):
        check_language_pair(translator, "xx", None, tiny_checkpoint)
    with pytest.raises(CheckpointError, match=f"translates {trained}, not {translator.tokenizer.src_lang}->yy"):
        load_translator([tiny_checkpoint], device="cpu", tgt="yy")
    with pytest.raises(ConfigError, match="--engine must be mt or ctranslate2"):
        load_translator([tiny_checkpoint], engine="onnx")
    with pytest.raises(ConfigError, match="takes one exported --checkpoint"):
        load_translator([tiny_checkpoint], engine="ctranslate2", attention=True)
