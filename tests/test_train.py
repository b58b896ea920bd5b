import json

import pytest
import torch

from mt.train import inverse_sqrt_schedule, train

from conftest import log_events, synthetic_sentences, tiny_run_config, write_pair


@pytest.mark.slow
def test_a_tiny_transformer_learns_to_copy(tmp_path):
    end = train(tiny_run_config(tmp_path, max_steps=400), tmp_path / "run")
    assert end["best_dev_bleu"] > 90
    assert (tmp_path / "run" / "best" / "model.safetensors").exists() and (tmp_path / "run" / "last").exists()
    validations = log_events(tmp_path / "run", "validation")
    assert [v["step"] for v in validations] == [100, 200, 300, 400]
    assert validations[-1]["dev_loss"] < validations[0]["dev_loss"]
    peaks = [event["peak_rss_mb"] for event in log_events(tmp_path / "run", "train")]
    assert 50 < peaks[0] <= peaks[-1] < 24 * 1024  # MB of a process that imported torch, never falling


def test_the_training_loss_is_logged_up_to_the_last_step(tmp_path):
    train(tiny_run_config(tmp_path, max_steps=30, log_every=25, validate_every=1000), tmp_path / "run")
    assert [event["step"] for event in log_events(tmp_path / "run", "train")] == [25, 30]


@pytest.mark.slow
def test_resumed_training_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    # dropout on (the RNG state must be restored); stop between validations at a save_every point,
    # and run across an epoch boundary (about 40 batches an epoch here).
    settings = {"log_every": 1, "validate_every": 1000, "save_every": 7, "max_steps": 50}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    uninterrupted_config = tiny_run_config(tmp_path / "a", **settings)
    uninterrupted_config.model.dropout = 0.1
    train(uninterrupted_config, tmp_path / "a" / "run")
    config = tiny_run_config(tmp_path / "b", **{**settings, "max_steps": 21})
    config.model.dropout = 0.1
    stops = iter([None] * 21 + ["SIGTERM"])  # stop after step 21, a save_every point
    train(config, tmp_path / "b" / "run", stop_requested=lambda: next(stops, None))
    config.train.max_steps = 50
    train(config, tmp_path / "b" / "run", resume=True)
    uninterrupted = [e["loss"] for e in log_events(tmp_path / "a" / "run", "train")]
    resumed = [e["loss"] for e in log_events(tmp_path / "b" / "run", "train")]
    assert log_events(tmp_path / "a" / "run", "end")[0]["epoch"] >= 1
    assert len(uninterrupted) == 50 and resumed == uninterrupted


def test_only_a_limited_number_of_step_checkpoints_are_kept(tmp_path):
    run = tmp_path / "run"
    train(tiny_run_config(tmp_path, max_steps=40, validate_every=10, keep=2), run)
    kept = {path.name for path in (run / "steps").iterdir()}
    best = (run / "best").resolve().name
    assert kept == {"step-0000030", "step-0000040", best}
    assert (run / "last").resolve().name == "step-0000040"


def test_schedule_warms_up_linearly_then_decays_as_inverse_square_root():
    factor = inverse_sqrt_schedule(100)
    assert factor(50) == pytest.approx(0.5) and factor(100) == pytest.approx(1.0)
    assert factor(400) == pytest.approx(0.5)


def test_cooldown_scales_the_last_updates_linearly_down_to_zero_at_max_steps():
    plain, cooled = inverse_sqrt_schedule(100), inverse_sqrt_schedule(100, max_steps=1000, cooldown_steps=200)
    assert [cooled(step) for step in (50, 400, 800)] == pytest.approx([plain(step) for step in (50, 400, 800)])
    assert cooled(900) == pytest.approx(plain(900) / 2) and cooled(999) == pytest.approx(plain(999) / 200)
    assert cooled(1000) == 0.0 and cooled(1200) == 0.0


def test_a_1_mb_dev_line_is_cut_and_counted_not_a_crash_at_the_first_validation(tmp_path):
    config = tiny_run_config(tmp_path, max_steps=10, validate_every=10)
    for lang in ("en", "de"):
        with open(f"{config.data.dev}.{lang}", "a", encoding="utf-8") as handle:
            handle.write(" ".join(["a"] * 500_000) + "\n")
    end = train(config, tmp_path / "run")
    assert end["step"] == 10 and log_events(tmp_path / "run", "start")[0]["dev_truncated"] == 1
    assert len(log_events(tmp_path / "run", "validation")) == 1


def test_last_is_saved_before_validating_so_a_crash_there_keeps_the_training(tmp_path, monkeypatch):
    import mt.train

    def crash(*args):
        raise MemoryError("validation ran out of memory")

    monkeypatch.setattr(mt.train, "validate", crash)
    with pytest.raises(MemoryError):
        train(tiny_run_config(tmp_path, max_steps=10, validate_every=10), tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "last" / "config.json").read_text())["summary"]
    assert saved["step"] == 10 and not (tmp_path / "run" / "best").exists()


def test_a_validation_s_best_survives_a_resume_from_its_checkpoint(tmp_path):
    run = tmp_path / "run"
    config = tiny_run_config(tmp_path, max_steps=100, validate_every=100)
    train(config, run)
    scores = json.loads((run / "last" / "validation.json").read_text())
    assert scores["step"] == 100 and scores["best"] and (run / "best").resolve() == (run / "last").resolve()
    end = train(config, run, resume=True)  # nothing left to do: the end reports the state resumed
    assert end["step"] == 100 and end["best_dev_bleu"] == scores["best_dev_bleu"] > 0


def test_several_weighted_corpora_train_one_tokenizer_and_are_reported_each(tmp_path):
    config = tiny_run_config(tmp_path, max_steps=5, validate_every=5)
    numbers = synthetic_sentences(200, seed=7)
    extra = write_pair(tmp_path, "extra", [s.replace("a", "k") for s in numbers], [s.replace("a", "k") for s in numbers])
    (tmp_path / "h.tsv").write_text("en\tde\n" + "".join(f"{s}\t{s}\n" for s in numbers[:50]))
    config.data.train = [config.data.train[0], f"{extra}@2", f"{tmp_path / 'h.tsv'}@0.5"]
    train(config, tmp_path / "run")
    start = log_events(tmp_path / "run", "start")[0]
    assert [(c["weight"], c["pairs"], c["tsv_header"]) for c in start["corpora"]] == [(1.0, 1200, None), (2.0, 200, None),
                                                                                      (0.5, 50, "en\tde")]
    assert start["train_pairs"] == 1450 and start["config"]["data"]["train"] == config.data.train
    from mt.checkpoint import load_checkpoint
    tokenizer = load_checkpoint(tmp_path / "run" / "last")[1]
    assert "k" in "".join(tokenizer.src.id_to_piece(i) for i in range(tokenizer.src_vocab_size))  # learned from the mix


@pytest.mark.slow
def test_max_time_includes_the_closing_validation_and_the_end_says_what_stopped_the_run(tmp_path):
    import time

    config = tiny_run_config(tmp_path, max_time=4.0, validate_every=10_000)
    config.data.dev = write_pair(tmp_path, "bigdev", *[synthetic_sentences(4000, seed=5)] * 2)
    events = []
    began = time.time()
    end = train(config, tmp_path / "run", callback=events.append)
    assert end["stopped_by"] == "max_time" and time.time() - began < 4.0 + 3.0  # + data preparation
    closing = [e for e in events if e["event"] == "validation"][-1]["validation_seconds"]
    assert closing > 0.5 and end["elapsed"] <= 4.0 + 0.3 * closing, (end, closing)  # not 4.0 + closing
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == list(range(1, end["step"] + 1)) and progress[0]["tgt_tokens_per_s"] > 0
    (tmp_path / "steps").mkdir()
    config = tiny_run_config(tmp_path / "steps", max_steps=3)
    given = config.to_dict()
    assert train(config, tmp_path / "steps" / "run")["stopped_by"] == "max_steps"
    assert config.to_dict() == given  # the run fills in the vocabulary sizes on its own copy


@pytest.mark.slow
def test_init_from_fine_tunes_a_checkpoint_with_its_tokenizer_and_a_fresh_schedule(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "more").mkdir()
    train(tiny_run_config(tmp_path / "base", max_steps=300, validate_every=300), tmp_path / "base" / "run")
    config = tiny_run_config(tmp_path / "more", max_steps=25, validate_every=25, warmup_steps=10)
    config.model.d_model = 32  # replaced by the checkpoint's model section
    config.train.init_from = str(tmp_path / "base" / "run")
    end = train(config, tmp_path / "more" / "run")
    fresh = train(tiny_run_config(tmp_path / "more", max_steps=25, validate_every=25, warmup_steps=10), tmp_path / "fresh")
    assert end["best_dev_bleu"] > 80 > fresh["best_dev_bleu"]  # 25 updates start where the base run ended
    base_meta = json.loads((tmp_path / "base" / "run" / "best" / "config.json").read_text())
    meta = json.loads((tmp_path / "more" / "run" / "best" / "config.json").read_text())
    assert meta["config"]["model"] == base_meta["config"]["model"]
    assert (tmp_path / "more" / "run" / "best" / "spm.model").read_bytes() == (tmp_path / "base" / "run" / "best" / "spm.model").read_bytes()
    start = log_events(tmp_path / "more" / "run", "start")[0]
    assert start["step"] == 0
