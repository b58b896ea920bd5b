"""Bad input gets a clear error and never loses work; nothing `mt` loads can run code.

Corpus, checkpoint and config cases that belong to one module live in its test file
(test_data.py, test_checkpoint.py, test_config.py); this file holds the cases that cross
modules: translation edge cases, the CLI's exit codes, faults during training, fuzzing.
"""

import contextlib
import fcntl
import itertools
import json
import os
import pty
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import mt.loss
from cli import app
from mt.data import read_corpus
from mt.errors import DataError, TrainingError
from mt.train import train
from mt.config import DecodeConfig
from mt.translate import Translator

from conftest import log_events, tiny_run_config, write_pair

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def translator(tiny_checkpoint):
    return Translator.from_checkpoint(tiny_checkpoint, device="cpu")


# --- corpora ---------------------------------------------------------------------------------

def test_control_characters_are_removed(tmp_path):
    prefix = write_pair(tmp_path, "c", ["a\x00b\x07 c\x1b", "\x0c"], ["x\x7fy", "z"])
    corpus = read_corpus(prefix, "en", "de")
    assert corpus.sources == ["a b c"] and corpus.targets == ["x y"] and corpus.dropped_empty == 1


def test_a_line_of_100000_characters_is_read_and_filtered_out_of_training(tmp_path):
    config = tiny_run_config(tmp_path, max_steps=2, validate_every=2)
    huge = " ".join(["a"] * 50_000)
    for lang in ("en", "de"):
        with open(f"{config.data.train[0]}.{lang}", "a", encoding="utf-8") as handle:
            handle.write(huge + "\n")
    assert max(map(len, read_corpus(config.data.train[0], "en", "de").sources)) == 99_999
    train(config, tmp_path / "run")
    assert log_events(tmp_path / "run", "start")[0]["dropped_long"] == 1


# --- translation -----------------------------------------------------------------------------

def test_empty_and_whitespace_inputs_translate_to_empty_lines(translator):
    results = list(translator.translate(["", "   \t ", "a b c"]))
    assert [r.text for r in results[:2]] == ["", ""] and len(results) == 3


def test_a_line_of_only_zero_width_characters_translates_to_an_empty_line(translator):
    results = list(translator.translate(["\u200b\u200b\u200d\ufeff", "\u2060\u200c", "a b"]))
    assert [r.text for r in results[:2]] == ["", ""] and results[2].text


def test_characters_no_training_data_had_do_not_crash(translator):
    (result,) = translator.translate(["日本語 🙂 Ω ∑ a b"])
    assert isinstance(result.text, str)


def test_a_5000_word_input_is_truncated_with_a_flag(translator):
    (result,) = translator.translate([" ".join(["a b c d e"] * 1000)])
    assert result.truncated and len(result.src_pieces) == DecodeConfig().max_source_tokens


def test_input_is_streamed_not_read_whole(translator):
    endless = itertools.cycle(["a b", "c d e"])  # an input that never ends
    first = list(itertools.islice(translator.translate(endless), 3))
    assert len(first) == 3


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_random_unicode_never_crashes_translation(translator, text):
    (result,) = translator.translate([text])
    assert isinstance(result.text, str)


@settings(max_examples=50, deadline=None)
@given(source=st.binary(max_size=300), target=st.binary(max_size=300))
def test_random_bytes_give_a_corpus_or_a_data_error(tmp_path_factory, source, target):
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "x.en").write_bytes(source)
    (directory / "x.de").write_bytes(target)
    for errors in ("strict", "replace"):
        try:
            corpus = read_corpus(str(directory / "x"), "en", "de", errors)
        except DataError:
            continue
        assert len(corpus.sources) == len(corpus.targets) > 0


# --- CLI exit codes and messages ---------------------------------------------------------------

def run_cli(*args, input=None):
    result = runner.invoke(app, [str(a) for a in args], input=input)
    return result.exit_code, result.output


def test_cli_reports_bad_input_with_exit_code_2(tiny_checkpoint, tmp_path):
    cases = [
        (["translate", "a", "--checkpoint", tiny_checkpoint, "--beam-size", "0"], "beam size must be at least 1"),
        (["translate", "a", "--checkpoint", tiny_checkpoint, "--src", "en", "--tgt", "zh"], "translates en->de, not en->zh"),
        (["eval", "--test", tmp_path / "none", "--checkpoint", tiny_checkpoint, "--src", "fr"], "not fr->de"),
        (["translate", "-i", tmp_path / "absent.txt", "--checkpoint", tiny_checkpoint], "file not found"),
        (["train", "--resume", tmp_path], "no last/ checkpoint"),
    ]
    for args, message in cases:
        code, output = run_cli(*args)
        assert code == 2 and message in output and "Traceback" not in output, (args, output)
    code, output = run_cli("translate", "--checkpoint", tiny_checkpoint, input=b"fine\n\xff\xfe\n")
    assert code == 2 and "stdin, line 2: not valid UTF-8" in output
    code, output = run_cli("translate", "--checkpoint", tiny_checkpoint, "--encoding-errors", "replace", input=b"fine\n\xff\n")
    assert code == 0 and len(output.splitlines()) == 2


def test_unknown_config_key_is_named_with_a_suggestion(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  d_modle: 64\n")
    code, output = run_cli("train", "--train", "x", "--dev", "y", "--src", "en", "--tgt", "de", "--config", config)
    assert code == 2 and "unknown key 'd_modle'" in output and "Did you mean 'd_model'" in output


# --- faults during training ---------------------------------------------------------------------

def test_non_finite_losses_are_skipped_and_counted(tmp_path, monkeypatch):
    calls = itertools.count()
    real_loss = mt.loss.label_smoothed_loss

    def sometimes_nan(features, weight, labels, epsilon):
        loss = real_loss(features, weight, labels, epsilon)
        return loss * float("nan") if next(calls) in (3, 4) else loss

    monkeypatch.setattr(mt.loss, "label_smoothed_loss", sometimes_nan)
    end = train(tiny_run_config(tmp_path, max_steps=10, validate_every=10), tmp_path / "run")
    assert end["nonfinite_total"] == 2 and end["step"] == 10
    from mt.checkpoint import load_checkpoint
    model = load_checkpoint(tmp_path / "run" / "last")[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_loss_that_stays_non_finite_stops_the_run_keeping_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = itertools.count()
    real_loss = mt.loss.label_smoothed_loss
    monkeypatch.setattr(mt.loss, "label_smoothed_loss",
                        lambda *a: real_loss(*a) * (float("nan") if next(calls) >= 6 else 1.0))
    with pytest.raises(TrainingError, match="NaN or infinite for 5 updates in a row"):
        train(tiny_run_config(tmp_path, max_steps=50, validate_every=5), tmp_path / "run")
    assert (tmp_path / "run" / "last" / "model.safetensors").exists()


def start_training(tmp_path, *extra, terminal=None):
    """``mt train`` of a tiny model for good, its output a pipe, or the terminal of pty ``terminal``
    (a slave descriptor), which it then has as its controlling terminal, as a login shell's jobs do."""
    config = tiny_run_config(tmp_path, max_steps=100000, validate_every=1000)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(config.to_dict()))  # JSON is YAML
    streams = (dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT) if terminal is None else
               dict(stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
                    preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0)))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "train", "--config", str(config_file), "--output", str(tmp_path / "run"),
         "--save-every", "5", "--log-every", "5", *extra],
        cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, **streams)


def wait_for(predicate, seconds=120):
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.slow
def test_kill_9_mid_training_leaves_a_loadable_checkpoint_and_resumes(tmp_path):
    from mt.checkpoint import load_checkpoint

    process = start_training(tmp_path)
    last = tmp_path / "run" / "last"
    wait_for(lambda: last.exists() and len(list((tmp_path / "run" / "steps").iterdir())) >= 2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    load_checkpoint(last)  # complete, whatever moment the kill hit
    saved_step = json.loads((last / "config.json").read_text())["summary"]["step"]
    code, output = run_cli("train", "--resume", tmp_path / "run", "--max-steps", str(saved_step + 5), "--validate-every", "5")
    assert code == 0, output
    assert json.loads((last / "config.json").read_text())["summary"]["step"] == saved_step + 5


@pytest.mark.slow
def test_sigterm_saves_last_and_exits_143_with_a_resume_hint(tmp_path):
    process = start_training(tmp_path)
    wait_for(lambda: (tmp_path / "run" / "train_log.jsonl").exists()
             and '"train"' in (tmp_path / "run" / "train_log.jsonl").read_text())
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 143, output
    assert "Resume with: mt train --resume" in output
    end = log_events(tmp_path / "run", "end")[0]
    assert end["stopped_by"] == "SIGTERM"
    saved = json.loads((tmp_path / "run" / "last" / "config.json").read_text())["summary"]["step"]
    assert saved == end["step"]


@pytest.mark.slow
def test_a_closed_terminal_sighup_saves_last_as_sigterm_does(tmp_path):
    master, slave = pty.openpty()
    process = start_training(tmp_path, terminal=slave)
    os.close(slave)
    shown = bytearray()
    reader = threading.Thread(target=read_until_hangup, args=(master, shown), daemon=True)
    reader.start()
    wait_for(lambda: (tmp_path / "run" / "train_log.jsonl").exists()
             and '"train"' in (tmp_path / "run" / "train_log.jsonl").read_text())
    os.close(master)  # the terminal goes away (a closed window, a dropped SSH session): the kernel sends SIGHUP
    process.wait(120)
    assert process.returncode == 129, shown.decode(errors="replace")
    end = log_events(tmp_path / "run", "end")[0]
    assert end["stopped_by"] == "SIGHUP"
    assert json.loads((tmp_path / "run" / "last" / "config.json").read_text())["summary"]["step"] == end["step"]


def read_until_hangup(descriptor, into: bytearray) -> None:
    """Keep a pty's output drained (a full pty blocks its writer) until it is closed."""
    with contextlib.suppress(OSError):
        while chunk := os.read(descriptor, 4096):
            into.extend(chunk)


# --- the faults of issue 19: outputs, markup, disks, locks, links -------------------------------

def test_an_output_over_an_input_is_refused_and_the_input_kept(tiny_checkpoint, tmp_path):
    source = tmp_path / "s.txt"
    source.write_text("a b c\nd e f\n")
    (tmp_path / "link.txt").symlink_to(source)
    for output in (source, tmp_path / "link.txt"):
        code, output_text = run_cli("translate", "--checkpoint", tiny_checkpoint, "-i", source, "-o", output)
        assert code == 2 and "is also an input" in output_text, output_text
    prefix = write_pair(tmp_path, "test", ["a b", "c d"], ["A B", "C D"])
    code, output_text = run_cli("eval", "--checkpoint", tiny_checkpoint, "--test", prefix, "-o", f"{prefix}.de")
    assert code == 2 and "is also an input" in output_text
    assert source.read_text() == "a b c\nd e f\n" and (tmp_path / "test.de").read_text() == "A B\nC D\n"


def test_unwritable_outputs_are_one_paragraph_and_leave_nothing_half_written(tiny_checkpoint, tmp_path):
    code, output = run_cli("translate", "a b", "--checkpoint", tiny_checkpoint, "-o", "/dev/full")
    assert code == 2 and "cannot write /dev/full: No space left on device" in output and "Traceback" not in output
    code, output = run_cli("translate", "a b", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "nodir" / "out.txt")
    assert code == 2 and "does not exist; create it first" in output
    kept = tmp_path / "kept.txt"
    kept.write_text("old\n")
    code, output = run_cli("translate", "--checkpoint", tiny_checkpoint, "-o", kept, input=b"a b\n\xff\n")
    assert code == 2 and "not valid UTF-8" in output and kept.read_text() == "old\n" and os.listdir(tmp_path) == ["kept.txt"]


@pytest.mark.parametrize("args, message", [
    (["--threads", "-3"], "--threads must be 0"),
    (["--max-length", "0"], "maximum output length must be at least 1"),
    (["--length-penalty", "nan"], "length penalty alpha must be a finite number"),
])
def test_impossible_decoding_options_are_refused(tiny_checkpoint, args, message):
    code, output = run_cli("translate", "a b", "--checkpoint", tiny_checkpoint, *args)
    assert code == 2 and message in output


def test_eval_reports_an_unknown_bleu_tokenizer_and_reads_hypotheses_with_replace(tmp_path):
    prefix = write_pair(tmp_path, "test", ["a b", "c d"], ["A B", "C D"])
    (tmp_path / "hyp.txt").write_bytes(b"A B\nC \xff D\n")
    code, output = run_cli("eval", "--test", prefix, "--src", "en", "--tgt", "de", "--hyp", tmp_path / "hyp.txt",
                           "--encoding-errors", "replace", "--tokenize", "bogus")
    assert code == 2 and "unknown BLEU tokenizer 'bogus'" in output
    code, output = run_cli("eval", "--test", prefix, "--src", "en", "--tgt", "de", "--hyp", tmp_path / "hyp.txt",
                           "--encoding-errors", "replace")
    assert code == 0 and "BLEU" in output, output


def test_user_text_is_never_markup_nor_terminal_control(tiny_checkpoint, tmp_path):
    odd = tmp_path / "d[/x]"
    odd.mkdir(parents=True)
    code, output = run_cli("translate", "--checkpoint", tiny_checkpoint, "-i", odd / "none.txt")
    assert code == 2 and "d[/x]" in output and "MarkupError" not in output
    line = "[/bold]\x1b]0;TITLE\x07\x1b[2J " + "a b c d e " * 300
    code, output = run_cli("translate", "--checkpoint", tiny_checkpoint, input=(line + "\n").encode())
    assert code == 0, output
    assert "truncated" in output and "[/bold]\\x1b]0;TITLE\\x07\\x1b[2J" in output and "\x1b" not in output


def test_a_corpus_that_is_a_pipe_or_a_directory_is_refused_at_once(tmp_path):
    config = tiny_run_config(tmp_path)
    for fifo in ("fifo.en", "fifo.de"):
        os.mkfifo(tmp_path / fifo)
    (tmp_path / "adir").mkdir()
    for corpus, message in ((tmp_path / "fifo", "is not a regular file"), (tmp_path / "adir", "is a directory, not a corpus")):
        code, output = run_cli("train", "--train", corpus, "--dev", config.data.dev, "--src", "en", "--tgt", "de",
                               "--output", tmp_path / "run")
        assert code == 2 and message in output, output


@pytest.mark.slow
def test_a_full_disk_while_training_is_one_paragraph_keeping_the_checkpoints_before(tmp_path):
    import resource

    config = tiny_run_config(tmp_path, max_steps=20, validate_every=10)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(config.to_dict()))

    def cap_file_size():  # the checkpoint at step 10 fits, the optimizer state after it does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))

    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "--config", str(config_file), "--output",
                             str(tmp_path / "run")], capture_output=True, text=True, cwd=tmp_path, preexec_fn=cap_file_size,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "error: cannot write" in result.stderr and "File too large" in result.stderr
    assert not [p for p in (tmp_path / "run" / "steps").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_resuming_a_run_that_another_process_is_training_is_refused(tmp_path):
    process = start_training(tmp_path)
    try:
        wait_for(lambda: (tmp_path / "run" / "last").exists())
        code, output = run_cli("train", "--resume", tmp_path / "run", "--max-steps", "1000000")
        assert code == 2 and f"being written by another mt train (pid {process.pid})" in output, output
    finally:
        process.kill()
        process.wait()


def test_a_run_directory_linking_elsewhere_is_refused_and_leftovers_are_removed(tmp_path):
    run = tmp_path / "run"
    train(tiny_run_config(tmp_path, max_steps=10, validate_every=10, keep=0), run)
    staging = run / "steps" / ".step-0000045.xtzrfrt0"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"\0" * 1000)
    code, output = run_cli("train", "--resume", run, "--max-steps", "12")
    assert code == 0 and "removed 1 unfinished checkpoint" in output and not staging.exists(), output
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "step-0000001").mkdir(parents=True)
    for step in (run / "steps").iterdir():
        step.rename(elsewhere / step.name)
    (run / "steps").rmdir()
    (run / "steps").symlink_to(elsewhere)
    code, output = run_cli("train", "--resume", run, "--max-steps", "14")
    assert code == 2 and "steps is a symlink" in output and sorted(os.listdir(elsewhere))[0] == "step-0000001"
