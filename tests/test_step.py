import pytest
import torch

import mt.train
from mt.batching import Shape, TrainingBatches, Update, collate
from mt.config import ModelConfig, TrainConfig
from mt.loss import LabelSmoothedLoss
from mt.models import build_model
from mt.store import TokenizedCorpus
from mt.train import Updater, train

from conftest import log_events, tiny_run_config


def tiny_model(seed=0):
    torch.manual_seed(seed)
    config = ModelConfig(arch="transformer", d_model=32, ff_dim=64, heads=4, encoder_layers=2, decoder_layers=2, dropout=0.0,
                         src_vocab_size=40, tgt_vocab_size=40)
    return build_model(config)


def copy_corpus(count=300, seed=0):
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.randint(4, 40, (int(torch.randint(1, 12, (1,), generator=generator)),), generator=generator).tolist()
            for _ in range(count)]
    return TokenizedCorpus.from_lists(rows, rows)


def test_a_batch_padded_to_a_shape_gives_the_loss_and_gradients_of_the_unpadded_batch():
    model = tiny_model()
    objective = LabelSmoothedLoss(model, epsilon=0.1)
    src, tgt = [[5, 6, 7], [8, 9]], [[10, 11], [12, 13, 14, 15]]
    results = []
    for shape in (None, Shape(rows=5, src_len=9, tgt_len=8)):
        batch = collate([0, 1], src, tgt, shape=shape)
        model.zero_grad()
        loss = objective(batch.src, batch.src_mask, batch.tgt_in, batch.tgt_out)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()], batch.n_tgt_tokens))
    (loss, grads, tokens), (padded_loss, padded_grads, padded_tokens) = results
    assert tokens == padded_tokens == 8
    torch.testing.assert_close(padded_loss, loss, rtol=1e-5, atol=1e-5)
    for grad, padded_grad in zip(grads, padded_grads):
        torch.testing.assert_close(padded_grad, grad, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_the_compiled_step_makes_the_updates_of_the_eager_step():
    # fp32, the same batches (one shape), no dropout: inductor fuses and reorders the elementwise
    # sums, so the losses agree to float rounding grown over the updates, not bit for bit.
    batches = TrainingBatches(copy_corpus(), batch_tokens=200, seed=1, shapes=1)
    losses = {}
    for compile in (False, True):
        updater = Updater(tiny_model(), TrainConfig(compile=compile, warmup_steps=5, learning_rate=0.003),
                          torch.device("cpu"), torch.float32)
        losses[compile] = [updater.step(Update.of(batch)) for batch, _ in zip(batches.epoch(0), range(6))]
        assert updater.compile_seconds == 0 if not compile else updater.compile_seconds > 0
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    assert losses[True][-1] < losses[True][0]


@pytest.mark.slow
def test_a_compiled_run_reaches_the_dev_loss_of_the_same_run_uncompiled_and_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(mt.train, "SHAPE_BUCKETS", 2)  # two shapes to compile, not eight
    settings = {"compile": True, "log_every": 1, "validate_every": 60, "max_steps": 60}
    runs = {"compiled": mt.train.compile_features, "eager": lambda model, device: None}
    dev_loss, ends = {}, {}
    for name, compile_features in runs.items():  # the same shape-bucketed batches and fused Adam
        monkeypatch.setattr(mt.train, "compile_features", compile_features)
        (tmp_path / name).mkdir()
        ends[name] = train(tiny_run_config(tmp_path / name, **settings), tmp_path / name / "run")
        dev_loss[name] = log_events(tmp_path / name / "run", "validation")[-1]["dev_loss"]
    # fp32: inductor fuses and reorders the elementwise sums, and 60 updates grow that rounding
    assert dev_loss["compiled"] == pytest.approx(dev_loss["eager"], rel=1e-3), dev_loss
    assert ends["compiled"]["compiled_shapes"] == 2 and 0 < ends["compiled"]["compile_seconds"] < ends["compiled"]["elapsed"]
    start = log_events(tmp_path / "compiled" / "run", "start")[0]
    assert len(start["batch_shapes"]) == 2 and start["padding_fraction"] > 0
    # stop after 21 updates (a save_every point) and resume: the losses of the uninterrupted run
    monkeypatch.setattr(mt.train, "compile_features", runs["compiled"])
    (tmp_path / "resumed").mkdir()
    config = tiny_run_config(tmp_path / "resumed", **{**settings, "max_steps": 21, "save_every": 7})
    stops = iter([None] * 21 + ["SIGTERM"])
    train(config, tmp_path / "resumed" / "run", stop_requested=lambda: next(stops, None))
    config.train.max_steps = 60
    train(config, tmp_path / "resumed" / "run", resume=True)
    uninterrupted = [e["loss"] for e in log_events(tmp_path / "compiled" / "run", "train")]
    resumed = [e["loss"] for e in log_events(tmp_path / "resumed" / "run", "train")]
    assert len(resumed) == 60 and resumed == pytest.approx(uninterrupted, rel=1e-5)
