"""One writer per run directory, nothing followed out of it, nothing left behind (mt.rundir)."""

import multiprocessing
import os

import pytest

from mt import rundir
from mt.errors import CheckpointError, ConfigError, TrainingError


def _hold_lock(run_dir, ready, release):
    with rundir.locked(run_dir):
        ready.set()
        release.wait(30)


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(tmp_path / "run", ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(TrainingError, match=rf"being written by another mt train \(pid {holder.pid}\)"):
            with rundir.locked(tmp_path / "run"):
                pass
    finally:
        release.set()
        holder.join(30)
    with rundir.locked(tmp_path / "run"):  # released when its holder ended
        pass


def test_a_file_where_a_directory_of_the_run_belongs_is_named_before_any_data_is_read(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "steps").write_text("not a directory")
    missing = ["--train", str(tmp_path / "absent"), "--dev", str(tmp_path / "absent"), "--src", "en", "--tgt", "de"]
    result = CliRunner().invoke(app, ["train", *missing, "--output", str(run_dir)])
    assert result.exit_code == 2 and "steps is a file where the run's steps directory belongs" in result.output, result.output
    (run_dir / "steps").unlink()
    (run_dir / "train_log.jsonl").mkdir()
    with pytest.raises(CheckpointError, match="train_log.jsonl is a directory where the run's train_log.jsonl file belongs"):
        rundir.check_contained(run_dir)
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(app, ["train", *missing, "--output", str(tmp_path / "file")])
    assert result.exit_code == 2 and "file is a file where the run directory belongs" in result.output, result.output


def make_step(run_dir, step):
    directory = rundir.step_directory(run_dir, step)
    directory.mkdir(parents=True)
    (directory / "config.json").write_text("{}")
    return directory


def test_links_out_of_the_run_directory_are_refused(tmp_path):
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir.mkdir()
    (run_dir / "steps").symlink_to(elsewhere)
    with pytest.raises(CheckpointError, match="steps is a symlink"):
        rundir.check_contained(run_dir)
    (run_dir / "steps").unlink()
    (run_dir / "train_log.jsonl").symlink_to(elsewhere / "log")
    with pytest.raises(CheckpointError, match="train_log.jsonl is a symlink"):
        rundir.locked(run_dir).__enter__()
    (run_dir / "train_log.jsonl").unlink()
    make_step(run_dir, 1)
    (run_dir / "last").symlink_to(elsewhere)
    with pytest.raises(CheckpointError, match="last points to .*elsewhere"):
        rundir.check_contained(run_dir)
    (run_dir / "last").unlink()
    (run_dir / "last").symlink_to("steps/step-0000001")
    rundir.check_contained(run_dir)


def test_pruning_deletes_only_the_step_checkpoints_mt_wrote(tmp_path):
    run_dir = tmp_path / "run"
    steps = [make_step(run_dir, step) for step in (10, 20, 30, 40)]
    (run_dir / "best").symlink_to("steps/step-0000010")
    (run_dir / "last").symlink_to("steps/step-0000040")
    outside = tmp_path / "outside" / "step-0000005"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text("{}")
    (run_dir / "steps" / "step-0000005").symlink_to(outside)
    (run_dir / "steps" / "step-0000001").mkdir()  # no config.json: not a checkpoint mt wrote
    rundir.prune(run_dir, keep=1)
    assert sorted(os.listdir(run_dir / "steps")) == ["step-0000001", "step-0000005", "step-0000010", "step-0000040"]
    assert (outside / "config.json").exists() and not steps[1].exists() and not steps[2].exists()


def test_what_a_killed_save_left_is_removed(tmp_path):
    run_dir = tmp_path / "run"
    kept = make_step(run_dir, 45)
    staging = run_dir / "steps" / ".step-0000045.xtzrfrt0"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"\0" * 1000)
    (run_dir / "steps" / ".step-0000040.old.abc123").mkdir()
    (run_dir / ".last.4242.link").symlink_to("steps/step-0000045")
    assert rundir.remove_staging(run_dir) == 3
    assert os.listdir(run_dir / "steps") == [kept.name] and not (run_dir / ".last.4242.link").is_symlink()


def _overrides(**sections):
    return {"data": {}, "model": {}, "train": {}, **sections}


def test_a_new_run_is_named_after_its_model_and_languages_unless_told(tmp_path):
    data = {"train": ["corpus"], "dev": "dev", "src_lang": "en", "tgt_lang": "de"}
    plan = rundir.plan_run(_overrides(data=data))
    assert plan.run_dir == rundir.RUNS_DIR / "transformer-en-de" and not plan.resume
    assert plan.config.model.arch == "transformer" and plan.config.data.train == ["corpus"]
    rnn = rundir.plan_run(_overrides(data=data, model={"arch": "rnn"}))  # the rnn preset, named by its attention
    assert rnn.run_dir == rundir.RUNS_DIR / "rnn-bahdanau-en-de" and rnn.config.model.attention == "bahdanau"
    assert rundir.plan_run(_overrides(data=data), run_name="mine").run_dir == rundir.RUNS_DIR / "mine"
    assert rundir.plan_run(_overrides(data=data), output=tmp_path / "out", run_name="mine").run_dir == tmp_path / "out"
    with pytest.raises(ConfigError, match="give --train and --dev"):
        rundir.plan_run(_overrides(data={"train": ["corpus"], "src_lang": "en", "tgt_lang": "de"}))
    (tmp_path / "out" / "last").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already holds a run: continue it with --resume"):
        rundir.plan_run(_overrides(data=data), output=tmp_path / "out")


def test_a_fine_tuned_run_keeps_its_checkpoints_model_and_tokenizer(tmp_path, tiny_checkpoint):
    data = {"train": ["corpus"], "dev": "dev", "src_lang": "en", "tgt_lang": "de"}
    with pytest.raises(ConfigError, match=r"drop model.hidden_size, data.vocab_size when using --init-from"):
        rundir.plan_run(_overrides(data={**data, "vocab_size": 100}, model={"hidden_size": 8},
                                   train={"init_from": str(tiny_checkpoint)}))
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        rundir.plan_run(_overrides(data=data, train={"init_from": str(tmp_path / "absent")}))
    plan = rundir.plan_run(_overrides(data=data, train={"init_from": str(tiny_checkpoint), "max_steps": 3}))
    assert plan.config.train.init_from == str(tiny_checkpoint) and plan.config.train.max_steps == 3


def test_a_resumed_run_takes_its_last_configuration_and_keeps_model_data_and_batches(tmp_path, tiny_checkpoint):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="has no last/ checkpoint to resume from"):
        rundir.plan_run(_overrides(), resume=run_dir)
    run_dir.mkdir()
    (run_dir / "last").symlink_to(tiny_checkpoint)
    with pytest.raises(ConfigError, match=r"drop data.dev, train.batch_tokens, train.seed when using --resume"):
        rundir.plan_run(_overrides(data={"dev": "x"}, train={"batch_tokens": 10, "max_steps": 5, "seed": 2}), resume=run_dir)
    plan = rundir.plan_run(_overrides(train={"max_steps": 5}), resume=run_dir)
    assert plan.resume and plan.run_dir == run_dir and plan.config.train.max_steps == 5
    assert plan.config.model.d_model == 32  # the checkpoint's model, not a preset's
