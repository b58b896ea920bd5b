"""mt average: the mean of checkpoints' weights, refused across models (mt.average)."""

import pytest
import torch
from typer.testing import CliRunner

from cli import app
from mt.average import average_checkpoints, last_checkpoints
from mt.checkpoint import load_checkpoint, write_checkpoint
from mt.config import RunConfig
from mt.errors import CheckpointError
from mt.models import build_model
from mt.train import train

from conftest import tiny_run_config


def tiny(tmp_path, tokenizer, name, seed, d_model=32):
    torch.manual_seed(seed)
    config = RunConfig()
    config.model.d_model, config.model.ff_dim, config.model.encoder_layers, config.model.decoder_layers = d_model, 64, 1, 1
    config.model.src_vocab_size = config.model.tgt_vocab_size = tokenizer.src_vocab_size
    return write_checkpoint(tmp_path / name, build_model(config.model), tokenizer, config)


def test_the_average_is_the_mean_of_the_weights(tmp_path, tiny_tokenizer):
    paths = [tiny(tmp_path, tiny_tokenizer, f"c{seed}", seed) for seed in (1, 2, 3)]
    averaged = load_checkpoint(average_checkpoints(paths, tmp_path / "avg"))[0].state_dict()
    models = [load_checkpoint(path)[0].state_dict() for path in paths]
    for name, tensor in averaged.items():
        assert torch.allclose(tensor, sum(m[name] for m in models) / 3, atol=1e-6), name


def test_checkpoints_of_different_shapes_are_refused_by_name(tmp_path, tiny_tokenizer):
    paths = [tiny(tmp_path, tiny_tokenizer, "small", 1), tiny(tmp_path, tiny_tokenizer, "wide", 1, d_model=64)]
    result = CliRunner().invoke(app, ["average", *map(str, paths), "-o", str(tmp_path / "avg")])
    assert result.exit_code == 2 and "model.d_model differ" in result.output and not (tmp_path / "avg").exists()


def test_a_run_directory_gives_its_last_step_checkpoints(tmp_path):
    train(tiny_run_config(tmp_path, max_steps=30, validate_every=10, keep=5), tmp_path / "run")
    result = CliRunner().invoke(app, ["average", str(tmp_path / "run"), "--last", "3", "-o", str(tmp_path / "avg")])
    assert result.exit_code == 0 and "averaged 3 checkpoints (step-0000010, step-0000020, step-0000030)" in result.output
    summary = load_checkpoint(tmp_path / "avg")[3]["summary"]
    assert [path.rsplit("/", 1)[1] for path in summary["averaged_from"]] == ["step-0000010", "step-0000020", "step-0000030"]
    with pytest.raises(CheckpointError, match="keeps 3 step checkpoint"):
        last_checkpoints(tmp_path / "run", 10)
    run = tmp_path / "run"
    for duplicated in ([run / "last", run / "steps" / "step-0000030", run / "steps" / "step-0000020"],
                       [run / "steps" / "step-0000020", run / "steps" / "step-0000020"]):
        result = CliRunner().invoke(app, ["average", *map(str, duplicated), "-o", str(tmp_path / "avg2")])
        assert result.exit_code == 2 and "are the same checkpoint" in result.output, result.output
    result = CliRunner().invoke(app, ["average", str(run), "--last", "2", "-o", str(run / "steps" / "step-0000030")])
    assert result.exit_code == 2 and "could destroy what is being read" in result.output, result.output
    assert not (tmp_path / "avg2").exists() and (run / "steps" / "step-0000030" / "trainer_state.pt").is_file()
