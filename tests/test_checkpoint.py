import json
import os
import pickle

import pytest
import torch

from mt.checkpoint import (CONFIG_FILE, DEFAULT_CHECKPOINT, TRAINER_STATE_FILE, VALIDATION_FILE, WEIGHTS_FILE, default_checkpoint,
                           export_checkpoint, load_checkpoint, load_trainer_state, point_link, resolve_checkpoint, write_checkpoint)
from mt.config import RunConfig
from mt.errors import CheckpointError
from mt.models import build_model
from mt.search import greedy_search
from mt.config import DecodeConfig


@pytest.fixture
def saved(tmp_path, tiny_tokenizer):
    torch.manual_seed(0)
    config = RunConfig()
    config.model.d_model, config.model.ff_dim, config.model.encoder_layers, config.model.decoder_layers = 32, 64, 1, 1
    config.model.src_vocab_size = config.model.tgt_vocab_size = tiny_tokenizer.src_vocab_size
    model = build_model(config.model).eval()
    directory = write_checkpoint(tmp_path / "ckpt", model, tiny_tokenizer, config, {"step": 7}, {"step": torch.tensor(7)})
    return directory, model, config


def test_round_trip_gives_identical_outputs(saved, tiny_tokenizer):
    directory, model, config = saved
    loaded, tokenizer, loaded_config, meta = load_checkpoint(directory)
    assert loaded_config == config and meta["summary"] == {"step": 7}
    src = torch.tensor([tiny_tokenizer.encode_src(["a b c d"])[0] + [3]])
    mask = src != 0
    decode = DecodeConfig(beam_size=1, max_length=8)
    assert greedy_search(model, src, mask, decode)[0][0].tokens == greedy_search(loaded, src, mask, decode)[0][0].tokens
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_writing_leaves_no_temporary_files_and_links_resolve(saved, tmp_path):
    directory, _, _ = saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    point_link(tmp_path / "best", directory)
    assert resolve_checkpoint(tmp_path) == tmp_path / "best"
    assert load_trainer_state(directory)["step"] == 7


def test_missing_and_corrupted_files_are_clear_errors(saved, tmp_path):
    directory, _, _ = saved
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nowhere")
    weights = directory / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(directory)
    weights.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(directory)


def test_newer_format_version_is_refused(saved):
    directory, _, _ = saved
    meta = json.loads((directory / CONFIG_FILE).read_text())
    meta["format_version"] = 99
    (directory / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 99.*upgrade"):
        load_checkpoint(directory)


def test_a_null_config_is_named(saved):
    directory, _, _ = saved
    meta = json.loads((directory / CONFIG_FILE).read_text())
    (directory / CONFIG_FILE).write_text(json.dumps({**meta, "config": None}))
    with pytest.raises(CheckpointError, match='"config" must be a mapping .* got None'):
        load_checkpoint(directory)


def test_a_save_that_fails_says_so_and_leaves_nothing(saved, tiny_tokenizer, tmp_path, monkeypatch):
    import mt.checkpoint

    _, model, config = saved

    def disk_full(*args, **kwargs):  # what torch.save raises when the disk fills mid-write
        raise RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(mt.checkpoint.torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="cannot write .*new.* MiB are free there; the checkpoints saved before are intact"):
        write_checkpoint(tmp_path / "run" / "new", model, tiny_tokenizer, config, trainer_state={"step": 1})
    assert list((tmp_path / "run").iterdir()) == []


def test_tokenizer_that_does_not_match_the_embeddings_is_refused(saved):
    directory, _, _ = saved
    meta = json.loads((directory / CONFIG_FILE).read_text())
    meta["config"]["model"]["src_vocab_size"] += 5
    (directory / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="different runs"):
        load_checkpoint(directory)


class CreatesAFile:
    """Unpickling this would run code: create a file named by ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_that_runs_code_is_rejected_and_does_not_run(saved, tmp_path):
    directory, _, _ = saved
    marker = tmp_path / "pwned"
    (directory / TRAINER_STATE_FILE).write_bytes(pickle.dumps({"x": CreatesAFile(str(marker))}))
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_trainer_state(directory)
    assert not marker.exists()


def test_export_with_bf16_weights_halves_the_file_and_loads_as_fp32(saved, tmp_path):
    directory, model, _ = saved
    exported = export_checkpoint(directory, tmp_path / "small", torch.bfloat16)
    assert not (exported / TRAINER_STATE_FILE).exists()
    assert (exported / WEIGHTS_FILE).stat().st_size < 0.6 * (directory / WEIGHTS_FILE).stat().st_size
    loaded = load_checkpoint(exported)[0]
    for name, tensor in loaded.state_dict().items():
        assert tensor.dtype == torch.float32
        assert torch.allclose(tensor, model.state_dict()[name], atol=1e-2, rtol=1e-2), name


def test_export_never_writes_over_its_input_or_into_its_run_nor_deletes_files_mt_did_not_write(saved, tmp_path):
    from typer.testing import CliRunner

    from cli import app

    run = tmp_path / "run"
    step = run / "steps" / "step-0000020"
    step.parent.mkdir(parents=True)
    saved[0].rename(step)
    (step / VALIDATION_FILE).write_text("{}")
    point_link(run / "best", step)
    point_link(run / "last", step)
    files = {path.name: path.read_bytes() for path in step.iterdir()}
    for source, output, *options in ((step, step, "--dtype", "bf16"), (run, run / "best"), (run / "last", run),
                                     (run / "best", run / "steps" / "step-0000030"), (run, tmp_path),
                                     (run, run / "ct2", "--format", "ctranslate2")):
        result = CliRunner().invoke(app, ["export", str(source), str(output), *options])
        assert result.exit_code == 2 and "could destroy what is being read" in result.output, (source, output, result.output)
    assert {path.name: path.read_bytes() for path in step.iterdir()} == files
    assert (run / "best").is_symlink() and sorted(os.listdir(run / "steps")) == ["step-0000020"]
    load_trainer_state(run / "last")

    exported = export_checkpoint(run, tmp_path / "exported")
    (exported / "README.md").write_text("model card")
    with pytest.raises(CheckpointError, match="holds README.md, which mt did not write"):
        export_checkpoint(run, exported, torch.bfloat16)
    assert (exported / "README.md").read_text() == "model card"
    (tmp_path / "link").symlink_to(exported)
    with pytest.raises(CheckpointError, match="is a symlink"):
        export_checkpoint(run, tmp_path / "link")
    assert (tmp_path / "link").is_symlink()


def test_the_default_checkpoint_is_mt_checkpoint_else_the_shipped_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MT_CHECKPOINT", str(tmp_path))
    assert default_checkpoint() == tmp_path
    monkeypatch.setenv("MT_CHECKPOINT", str(tmp_path / "absent"))
    with pytest.raises(CheckpointError, match="or set MT_CHECKPOINT"):
        default_checkpoint()
    monkeypatch.delenv("MT_CHECKPOINT")
    assert default_checkpoint() == DEFAULT_CHECKPOINT and (DEFAULT_CHECKPOINT / CONFIG_FILE).is_file()
