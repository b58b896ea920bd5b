"""Gradient accumulation and DistributedDataParallel (2 processes, gloo on CPU, launched by torchrun)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from mt.average import average_checkpoints, expand_sources
from mt.batching import TrainingBatches, Update, collate
from mt.checkpoint import load_checkpoint
from mt.models import build_model
from mt.store import TokenizedCorpus
from mt.train import Updater, train
from mt.translate import Translator

from conftest import log_events, tiny_run_config


def test_accumulating_two_batches_equals_one_batch_twice_the_size(tmp_path):
    config = tiny_run_config(tmp_path)
    config.model.src_vocab_size = config.model.tgt_vocab_size = 30
    generator = torch.Generator().manual_seed(0)
    sources = [torch.randint(4, 30, (int(n),), generator=generator).tolist() for n in torch.randint(2, 12, (16,), generator=generator)]
    targets = [s[::-1] for s in sources]
    first, second, both = range(0, 7), range(7, 16), range(16)
    batch = lambda rows: collate(rows, [sources[i] for i in rows], [targets[i] for i in rows])  # noqa: E731
    updaters = []
    for update in (Update([batch(first), batch(second)], batch(both).n_tgt_tokens), Update.of(batch(both))):
        torch.manual_seed(0)
        updater = Updater(build_model(config.model), config.train, torch.device("cpu"), torch.float32)
        updater.loss = updater.step(update)
        updaters.append(updater)
    accumulated, whole = updaters
    assert abs(accumulated.loss - whole.loss) < 1e-4 * whole.loss
    torch.manual_seed(0)
    initial = build_model(config.model).state_dict()
    changed = 0
    for name, parameter in accumulated.model.named_parameters():
        assert torch.allclose(parameter, whole.model.state_dict()[name], atol=1e-6), name
        changed += not torch.equal(parameter, initial[name])
    assert changed > 0, "the update changed nothing"


def test_updates_give_each_process_its_own_batches_and_count_every_label_token(tmp_path):
    sources = [[5] * (1 + i % 9) for i in range(200)]
    batches = TrainingBatches(TokenizedCorpus.from_lists(sources, sources), batch_tokens=40, seed=1)
    plan = batches.plan(0)
    per_rank = [list(batches.updates(0, accum_steps=2, world_size=2, rank=rank)) for rank in (0, 1)]
    assert len(per_rank[0]) == len(per_rank[1]) == len(plan) // 4 == batches.updates_per_epoch(0, 2, 2)
    for step, (mine, theirs) in enumerate(zip(*per_rank)):
        group = plan[4 * step: 4 * step + 4]
        assert [b.indices for b in mine.batches + theirs.batches] == [g.tolist() for g in group]
        assert mine.n_tgt_tokens == theirs.n_tgt_tokens == sum(b.n_tgt_tokens for b in mine.batches + theirs.batches)


@pytest.mark.slow
def test_two_processes_equal_one_process_with_the_same_total_batch(tmp_path):
    # Each update of the 2-process run is batches (2k, 2k+1) of the plan, one per process; the
    # 1-process run accumulates the same two batches. Dropout is off, so the runs must agree.
    config = tiny_run_config(tmp_path, max_steps=4, log_every=1, validate_every=4, save_every=2, batch_tokens=200,
                             device="cpu")  # gloo
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.to_dict()))
    mt_script = Path(sys.executable).parent / "mt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(mt_script),
         "train", "--config", str(config_file), "--output", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=300)
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    config.train.accum_steps = 2
    train(config, tmp_path / "single")

    ddp_losses = [e["loss"] for e in log_events(tmp_path / "ddp", "train")]
    single_losses = [e["loss"] for e in log_events(tmp_path / "single", "train")]
    assert len(ddp_losses) == len(single_losses) == 4
    print("2 processes:", ddp_losses, "\n1 process, --accum-steps 2:", single_losses)
    assert all(abs(a - b) < 1e-5 * b for a, b in zip(ddp_losses, single_losses)), (ddp_losses, single_losses)
    assert ddp_losses[-1] < ddp_losses[0]
    start = log_events(tmp_path / "ddp", "start")[0]
    assert start["processes"] == 2 and start["threads"] == 1

    # The DDP checkpoint is an ordinary one: it loads in one process and translates like the other.
    ddp_model = load_checkpoint(tmp_path / "ddp" / "last")[0]
    single_model = load_checkpoint(tmp_path / "single" / "last")[0]
    for (name, a), (_, b) in zip(ddp_model.named_parameters(), single_model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-5), name
    sentences = ["a b c d", "j i h g f", "c c a"]
    ddp_out = [h.text for h in Translator.from_checkpoint(tmp_path / "ddp" / "last", device="cpu").translate(sentences)]
    single_out = [h.text for h in Translator.from_checkpoint(tmp_path / "single" / "last", device="cpu").translate(sentences)]
    assert ddp_out == single_out

    # mt average on the DDP run: the mean of its last 2 step checkpoints, as of the 1-process run's
    for run in ("ddp", "single"):
        average_checkpoints(expand_sources([tmp_path / run], 2), tmp_path / f"{run}-average")
    steps = [load_checkpoint(path)[0] for path in expand_sources([tmp_path / "ddp"], 2)]
    assert [path.name for path in expand_sources([tmp_path / "ddp"], 2)] == ["step-0000002", "step-0000004"]
    ddp_average, single_average = (load_checkpoint(tmp_path / f"{run}-average")[0] for run in ("ddp", "single"))
    for (name, mean), first, second, other in zip(ddp_average.named_parameters(), steps[0].parameters(),
                                                  steps[1].parameters(), single_average.parameters()):
        assert torch.allclose(mean, (first + second) / 2, atol=1e-6) and torch.allclose(mean, other, atol=1e-5), name
