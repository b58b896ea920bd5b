"""The four commands end to end, through the Typer app, on a small slice of Multi30k."""

import itertools
import json

import pytest
import sacrebleu
from typer.testing import CliRunner

from cli import app
from conftest import MULTI30K, needs_multi30k, synthetic_sentences, write_pair

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def slice_of(split, lines):
    def read(lang):
        with open(MULTI30K / f"{split}.{lang}", encoding="utf-8") as handle:
            return [line.rstrip("\n") for line in itertools.islice(handle, lines)]
    return read("en"), read("de")


@pytest.mark.slow
@needs_multi30k
def test_tokenize_train_translate_eval_on_multi30k(tmp_path):
    train_prefix = write_pair(tmp_path, "train", *slice_of("train", 400))
    dev_prefix = write_pair(tmp_path, "dev", *slice_of("val", 40))
    test_prefix = write_pair(tmp_path, "test", *slice_of("test_2016_flickr", 30))

    code, output = invoke("tokenize", "--train", train_prefix, "--src", "en", "--tgt", "de", "--vocab-size", "500",
                          "-o", tmp_path / "tok", "--encode", dev_prefix)
    assert code == 0, output
    assert len((tmp_path / "tok" / "encoded.de").read_text().splitlines()) == 40

    config = tmp_path / "small.yaml"
    config.write_text("model:\n  d_model: 32\n  ff_dim: 64\n  encoder_layers: 1\n  decoder_layers: 1\n")
    code, output = invoke("train", "--train", train_prefix, "--dev", dev_prefix, "--src", "en", "--tgt", "de",
                          "--tokenizer", tmp_path / "tok", "--config", config, "--max-steps", "6",
                          "--validate-every", "3", "--output", tmp_path / "run", "--device", "cpu")
    assert code == 0, output
    assert (tmp_path / "run" / "best" / "config.json").exists()

    code, output = invoke("translate", "I love machine learning", "A dog runs.", "--checkpoint", tmp_path / "run",
                          "--beam-size", "2", "--max-length", "8")
    assert code == 0, output
    assert len(output.splitlines()) == 2

    hypotheses = tmp_path / "hyp.de"
    code, output = invoke("eval", "--test", test_prefix, "--checkpoint", tmp_path / "run", "--beam-size", "2",
                          "-o", hypotheses)
    assert code == 0, output
    assert "BLEU" in output and "chrF" in output and "TER" in output and "tok:13a" in output

    references = (tmp_path / "test.de").read_text(encoding="utf-8").splitlines()
    expected = sacrebleu.corpus_bleu(hypotheses.read_text(encoding="utf-8").splitlines(), [references])
    code, output = invoke("eval", "--test", test_prefix, "--src", "en", "--tgt", "de", "--hyp", hypotheses,
                          "--json", tmp_path / "scores.json")
    assert code == 0, output
    assert f"{expected.score:.2f}" in output
    report = json.loads((tmp_path / "scores.json").read_text())
    bleu = next(score for score in report["scores"] if score["name"] == "BLEU")
    assert abs(bleu["score"] - expected.score) < 1e-9 and "tok:13a" in bleu["signature"] and report["sentences"] == 30


def test_errors_are_one_message_and_exit_code_2(tmp_path):
    code, output = invoke("translate", "hello", "--checkpoint", tmp_path / "missing")
    assert code == 2 and "checkpoint not found" in output and "Traceback" not in output
    write_pair(tmp_path, "bad", ["a", "b"], ["c"])
    code, output = invoke("train", "--train", tmp_path / "bad", "--dev", tmp_path / "bad", "--src", "en", "--tgt", "de",
                          "--output", tmp_path / "run")
    assert code == 2 and "has 2 lines but" in output
    code, output = invoke("train", "--train", "x", "--dev", "y", "--src", "en", "--tgt", "de", "--max-time", "soon")
    assert code == 2 and "cannot read duration" in output


def test_translate_shows_and_plots_attention(tiny_checkpoint, tmp_path):
    plot = tmp_path / "attention.png"
    code, output = invoke("translate", "a b c", "d e", "--checkpoint", tiny_checkpoint, "--show-attention",
                          "--attention-plot", plot, "--beam-size", "3")
    assert code == 0, output
    assert plot.exists() and (tmp_path / "attention-2.png").exists()
    # source words head the columns, one line; the last column is EOS, "</s>"
    assert any(line.split() == ["a", "b", "c", "</s>"] for line in output.splitlines())
    code, output = invoke("translate", "a b", "--checkpoint", tiny_checkpoint, "--show-attention", "--layer", "5")
    assert code == 2 and "layer" in output


def test_translate_writes_one_pharaoh_alignment_per_sentence(tiny_checkpoint, tmp_path):
    sentences = ["a b c", "d e", "a"]
    output_file = tmp_path / "out.txt"
    code, output = invoke("translate", *sentences, "--checkpoint", tiny_checkpoint, "--alignment", "-o", output_file)
    assert code == 0, output
    lines = output_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(sentences)
    for source, line in zip(sentences, lines):
        translation, links = line.split(" ||| ")
        pairs = [tuple(map(int, link.split("-"))) for link in links.split()]
        assert [target for _, target in pairs] == list(range(len(translation.split())))
        assert all(0 <= source_word < len(source.split()) for source_word, _ in pairs)
    code, output = invoke("translate", "a b", "--checkpoint", tiny_checkpoint, "--alignment", "--n-best", "2")
    assert code == 2 and "--alignment" in output


def test_plot_draws_learning_curves_of_runs(tmp_path):
    from test_train import tiny_run_config
    from mt.train import train

    train(tiny_run_config(tmp_path, max_steps=20, validate_every=10, log_every=5), tmp_path / "run")
    code, output = invoke("plot", tmp_path / "run", tmp_path / "run", "--label", "a", "--label", "b", "-o", tmp_path / "curves.png")
    assert code == 0, output
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "train_log.jsonl").write_text('{"event": "start"}\nnot json\n')
    code, output = invoke("plot", tmp_path / "broken", "-o", tmp_path / "x.png")
    assert code == 2 and "line 2" in output


def test_eval_prints_each_signature_whole_and_says_which_languages_it_assumed(tmp_path, tiny_checkpoint):
    prefix = write_pair(tmp_path, "test", ["a b", "c d"], ["A B", "C D"])
    (tmp_path / "hyp.txt").write_text("A B\nC D\n")
    code, output = invoke("eval", "--test", prefix, "--src", "en", "--tgt", "de", "--hyp", tmp_path / "hyp.txt")
    assert code == 0, output
    lines = {line.split()[0]: line for line in output.splitlines() if line.split() and line.split()[0] in ("BLEU", "chrF", "TER")}
    from mt.metrics import corpus_scores
    for score in corpus_scores(["A B", "C D"], ["A B", "C D"]):  # the whole signature on the line, unbroken
        assert lines[score.name].split()[-1] == score.signature, output
    code, output = invoke("eval", "--test", tmp_path / "absent", "--checkpoint", tiny_checkpoint)
    assert code == 2 and f"the languages en->de are those of {tiny_checkpoint}; choose others with --src/--tgt" in output


def test_usage_and_library_errors_begin_alike_and_help_is_wide_off_a_terminal():
    import io

    from mt.console import HELP_WIDTH, help_width
    code, output = invoke("translate", "x", "--beam-size", "wide")
    assert code == 2 and output.startswith("error: Invalid value for '--beam-size'") and "╭" not in output
    code, output = invoke("translate", "x", "--checkpoint", "/nonexistent")
    assert code == 2 and output.startswith("error: ")
    assert help_width({}, io.StringIO()) == HELP_WIDTH >= 100
    assert help_width({"COLUMNS": "70"}, io.StringIO()) is None  # rich follows COLUMNS


def test_help_shows_the_defaults_and_train_and_tokenize_word_a_missing_corpus_alike(tmp_path):
    code, output = invoke("translate", "--help")
    words = " ".join(output.replace("│", " ").split())  # the help is drawn in a box, wrapped
    assert "Beam size (1 = greedy; default: the checkpoint's, 5 for new runs)" in words and "[default: 0]" not in words
    missing = tmp_path / "nothing"
    _, tokenize_output = invoke("tokenize", "--train", missing, "--src", "en", "--tgt", "de", "-o", tmp_path / "tok")
    _, train_output = invoke("train", "--train", missing, "--dev", missing, "--src", "en", "--tgt", "de",
                             "--output", tmp_path / "run")
    message = f"corpus '{missing}': missing {missing}.en and {missing}.de"
    assert message in " ".join(tokenize_output.split()) and message in " ".join(train_output.split())


def test_translate_ensembles_repeated_checkpoints_samples_and_refuses_another_vocabulary(tiny_checkpoint, tmp_path):
    code, alone = invoke("translate", "a b c", "d e", "--checkpoint", tiny_checkpoint, "--beam-size", "3")
    assert code == 0, alone
    code, together = invoke("translate", "a b c", "d e", "--checkpoint", tiny_checkpoint, "--checkpoint", tiny_checkpoint,
                            "--beam-size", "3")
    assert code == 0 and together == alone
    code, sampled = invoke("translate", "a b c", "--checkpoint", tiny_checkpoint, "--sampling", "--top-p", "0.9",
                           "--n-best", "3", "--seed", "5", "--no-repeat-ngram-size", "2")
    assert code == 0 and len(sampled.splitlines()) == 3, sampled
    assert invoke("translate", "a b c", "--checkpoint", tiny_checkpoint, "--sampling", "--n-best", "3", "--seed", "5",
                  "--top-p", "0.9", "--no-repeat-ngram-size", "2")[1] == sampled
    code, output = invoke("translate", "a b", "--checkpoint", tiny_checkpoint, "--sampling", "--temperature", "0")
    assert code == 2 and "temperature" in output
    from mt.checkpoint import load_checkpoint, write_checkpoint
    from mt.tokenizer import train_tokenizer

    model, _, config, _ = load_checkpoint(tiny_checkpoint)
    sentences = [" ".join(reversed(s.split())) for s in synthetic_sentences(400, seed=5)]
    other = train_tokenizer(sentences, [s.upper() for s in sentences], "en", "de", vocab_size=40, model_type="bpe")
    assert other.src_vocab_size == model.src_embedding.num_embeddings
    write_checkpoint(tmp_path / "other", model, other, config)
    code, output = invoke("translate", "a b", "--checkpoint", tiny_checkpoint, "--checkpoint", tmp_path / "other")
    assert code == 2 and "another tokenizer" in output and "share" in output, output


def test_eval_keeps_pairs_with_an_empty_side_so_that_line_n_of_its_output_is_pair_n(tmp_path, tiny_checkpoint):
    sources = synthetic_sentences(20, seed=5)
    references = ["" if number % 5 == 2 else sentence.upper() for number, sentence in enumerate(sources)]
    prefix = write_pair(tmp_path, "test", sources, references)
    code, output = invoke("eval", "--test", prefix, "--checkpoint", tiny_checkpoint, "-o", tmp_path / "out.txt",
                          "--json", tmp_path / "scores.json")
    assert code == 0, output
    assert "(20 sentences)" in output and "4 pair(s) with an empty side (line 3, line 8, line 13, line 18)" in output
    translated = invoke("translate", "-i", f"{prefix}.en", "--checkpoint", tiny_checkpoint)[1]
    assert (tmp_path / "out.txt").read_text() == translated and json.loads((tmp_path / "scores.json").read_text())["sentences"] == 20
    (tmp_path / "hyp.txt").write_text("x\n" * 20)
    code, output = invoke("eval", "--test", prefix, "--src", "en", "--tgt", "de", "--hyp", tmp_path / "hyp.txt")
    assert code == 0 and "(20 sentences)" in output, output
    (tmp_path / "hyp.txt").write_text("x\n" * 19)
    code, output = invoke("eval", "--test", prefix, "--src", "en", "--tgt", "de", "--hyp", tmp_path / "hyp.txt")
    assert code == 2 and "hyp.txt has 19 lines but" in output and "test.de has 20 sentence pairs" in output, output
