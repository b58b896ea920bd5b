"""How the commands draw on a terminal (mt.console): user text, training, the sentence progress bar, scores."""

import io

from rich.console import Console

from mt.config import DecodeConfig
from mt.console import (AttentionViews, TrainingDisplay, attentions_table, clock, print_evaluation, print_serving,
                        print_training_end, sentence_progress, shown)
from mt.evaluate import EvalReport
from mt.metrics import Score


def start_event(**fields):
    """A training 'start' event as mt.train logs it, for the display tests."""
    return {"event": "start", "step": 0, "limits": {}, "updates_per_epoch": 8, "parameters": 10, "device": "cpu",
            "precision": "float32", "threads": 1, "train_pairs": 5, "dropped_long": 0, "dropped_empty": 0,
            "batches_per_epoch": 8, "padding_fraction": 0.1, "prepare_seconds": 1.0, "corpora": [], **fields}


def test_training_display_reaches_the_last_step_without_a_logged_loss():
    out = Console(file=io.StringIO(), width=200)
    start = start_event(limits={"max_steps": 6})
    with TrainingDisplay(out) as display:
        display(start)
        display({"event": "validation", "step": 6, "epoch": 0, "elapsed": 9.0, "dev_loss": 8.7, "dev_ppl": 6000.0,
                 "dev_bleu": 0.0, "best_dev_bleu": 0.0, "validation_seconds": 1.0})
        display({"event": "end", "step": 6, "epoch": 0, "elapsed": 10.0})
        task = display.progress.tasks[0]
        assert (task.completed, task.total, task.fields["step"], task.fields["loss"]) == (6, 6, 6, "–")
    output = out.file.getvalue()
    assert "step 6: dev loss 8.700" in output and "nan" not in output


def test_the_progress_line_moves_from_the_first_update():
    start = start_event(limits={"max_time": 120.0})
    with TrainingDisplay(Console(file=io.StringIO(), width=200)) as display:
        display(start)
        display({"event": "progress", "step": 1, "epoch": 0.125, "elapsed": 0.5, "loss": 9.1, "lr": 1e-5,
                 "tgt_tokens_per_s": 2500.0})
        task = display.progress.tasks[0]
        assert (task.completed, task.fields["step"], task.fields["loss"], task.fields["speed"]) == (0.5, 1, "9.100", 2500.0)


def test_training_output_to_a_file_is_plain_lines_every_logged_step_never_cut():
    out = Console(file=io.StringIO(), force_terminal=False, width=40)  # a log file; narrower than any line
    with TrainingDisplay(out) as display:
        display(start_event(limits={"max_steps": 200}))
        for step in range(1, 201):
            display({"event": "progress", "step": step, "epoch": step / 80, "elapsed": step * 0.6, "loss": 9.0 - step / 40,
                     "lr": 1e-3, "tgt_tokens_per_s": 6352.0})
            if step % 50 == 0:
                display({"event": "train", "step": step, "epoch": step / 80, "elapsed": step * 0.6, "loss": 9.0 - step / 40,
                         "lr": 1e-3, "tgt_tokens_per_s": 6352.0})
        display({"event": "end", "step": 200, "epoch": 2.5, "elapsed": 121.0})
    text = out.file.getvalue()
    assert "\x1b" not in text and "\r" not in text and "…" not in text
    steps = [line for line in text.splitlines() if line.startswith("step ")]
    assert steps[0] == ("step 50/200  ep 0.62  loss 7.750  lr 1.00e-03  6,352 tgt tok/s  elapsed 0:00:30  ETA 0:01:30")
    assert [line.split()[1] for line in steps] == ["50/200", "100/200", "150/200", "200/200"]


def test_sentence_progress_is_drawn_only_on_a_terminal():
    for terminal in (True, False):
        out = Console(file=io.StringIO(), force_terminal=terminal, width=120)
        with sentence_progress(3, out) as advance:
            advance(1)
            advance(2)
        assert ("3/3 sentences" in out.file.getvalue()) == terminal


def test_user_text_is_printed_literally_and_times_as_rich_shows_them():
    out = Console(file=io.StringIO(), width=200)
    out.print(shown("[bold]a path\x1b[31m"), highlight=False)
    assert out.file.getvalue() == "[bold]a path\\x1b[31m\n"
    assert (clock(3725.4), clock(-3.0)) == ("1:02:05", "0:00:00")


def test_scores_are_one_unwrapped_line_each_and_the_speed_a_note():
    signature = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.0" * 2  # longer than the console is wide
    report = EvalReport("test.tsv", 2, "run", [Score("BLEU", 12.345, signature), Score("chrF", 40.0, "chrF-sig")],
                        ["A", "B"], [], seconds=0.5, decode=DecodeConfig(beam_size=4))
    out, notes = Console(file=io.StringIO(), width=60), Console(file=io.StringIO(), width=60)
    print_evaluation(report, out, notes)
    assert out.file.getvalue().splitlines() == ["test.tsv (2 sentences)", f"BLEU   12.35  {signature}", "chrF   40.00  chrF-sig"]
    assert notes.file.getvalue() == "translated 2 sentences in 0.5s (4.0 sentences/s, beam 4)\n"


def test_the_end_of_training_says_how_to_resume_a_stopped_run_and_sums_up_a_finished_one(tmp_path):
    end = {"step": 40, "elapsed": 90.0, "best_dev_bleu": 12.5, "validation_share": 0.1, "nonfinite_total": 2,
           "stopped_by": "max_time"}
    out = Console(file=io.StringIO(), width=400)
    print_training_end(out, end, tmp_path, interrupted_by="SIGTERM")
    assert out.file.getvalue() == (f"stopped by SIGTERM at step 40; saved {tmp_path / 'last'}. "
                                   f"Resume with: mt train --resume {tmp_path}\n")
    out = Console(file=io.StringIO(), width=400)
    print_training_end(out, end, tmp_path)
    assert out.file.getvalue().splitlines() == [
        "warning: 2 batches had a non-finite loss and were skipped",
        "done: 40 steps in 1.5 min, best dev BLEU 12.50, validation took 10.0% of the time (inside the --max-time budget); "
        f"checkpoints in {tmp_path}"]


def test_attention_views_draw_a_table_and_a_page_and_refuse_what_they_cannot_show(tiny_checkpoint, tmp_path):
    import pytest

    from mt.errors import ConfigError
    from mt.translate import Translator

    translator = Translator.from_checkpoint(tiny_checkpoint, device="cpu")
    [translation] = translator.translate(["a b c"], return_attention=True)
    out, model = Console(file=io.StringIO(), width=200), translator.config.model
    with pytest.raises(ConfigError, match="--attention-level must be word or piece"):
        AttentionViews(out, out, model, level="letter")
    views = AttentionViews(out, out, model, show=True, page=tmp_path / "page.html", level="piece", head="0")
    views.add(1, translation)
    views.write_page("en → de", [])
    assert "columns: source pieces" in out.file.getvalue() and f"attention page -> {tmp_path / 'page.html'}" in out.file.getvalue()
    assert "attention" in (tmp_path / "page.html").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="--head all draws a grid"):
        AttentionViews(out, out, model, show=True, head="all")  # refused before any translation is shown
    with pytest.raises(ConfigError, match="--head must be a head's number or 'all', got 'first'"):
        AttentionViews(out, out, model, plot=tmp_path / "a.png", head="first")


def test_serving_warns_when_the_api_is_open_to_the_network_and_lists_the_attention_mechanisms():
    out = Console(file=io.StringIO(), width=400)
    print_serving(out, "127.0.0.1", 8080, ["en->de"], authenticated=False)
    assert out.file.getvalue() == "serving en->de on http://127.0.0.1:8080/ (Ctrl-C stops)\n"
    out = Console(file=io.StringIO(), width=400)
    print_serving(out, "0.0.0.0", 80, ["en->de", "en->zh"], authenticated=False)
    assert out.file.getvalue().splitlines()[0] == ("warning: listening on 0.0.0.0: the API is open to the network and has "
                                                   "no authentication (add --api-key)")
    from mt.models.rnn import ATTENTIONS

    out.print(attentions_table(ATTENTIONS))
    assert all(name in out.file.getvalue() for name in ATTENTIONS)
