"""Training: label-smoothed cross-entropy, Adam with warmup + inverse-sqrt decay (+ cooldown), validation, checkpoints.

``train()`` is the whole pipeline: read corpora -> tokenizer -> token batches -> model ->
optimisation loop, validating on the dev set every ``validate_every`` steps (loss, perplexity,
greedy BLEU) and keeping the ``best`` (by dev BLEU) and ``last`` checkpoints. Progress goes to a
callback and to ``train_log.jsonl`` (one JSON object per event); nothing is printed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mt import checkpoint, rundir
from mt.batching import TrainingBatches, Update
from mt.config import RunConfig, TrainConfig
from mt.data import CorpusReader, ParallelCorpus, read_corpus, weighted_spec
from mt.device import autocast, resolve_device, resolve_precision, set_threads
from mt.distributed import Distributed
from mt.errors import TrainingError
from mt.loss import LabelSmoothedLoss
from mt.metrics import bleu, default_tokenize
from mt.models import EncoderDecoder, build_model, check_model_config
from mt.step import SHAPE_BUCKETS, adam, compile_features
from mt.store import TokenizedCorpus, cached_tokenizer, tokenize_corpus
from mt.terminology import read_term_dictionary
from mt.tokenizer import Tokenizer
from mt.translate import Translator

Event = dict[str, Any]
ESTIMATE_SENTENCES = 64  # dev sentences validated once to estimate a whole validation (Run.closing_validation_seconds)
LIMITS = ("max_steps", "epochs", "max_time")  # what end["stopped_by"] says when a budget ended the run


def peak_rss_mb() -> float:
    """This process' peak resident memory so far, in MB (getrusage; a long run's growth shows in the train log)."""
    kilobytes_or_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes_or_bytes / (2**20 if sys.platform == "darwin" else 2**10)


@dataclass
class PreparedData:
    """Tokenized training and dev data, and what preparing it dropped."""

    tokenizer: Tokenizer
    batches: TrainingBatches
    dev: ParallelCorpus
    dev_src_ids: list[list[int]]
    dev_tgt_ids: list[list[int]]
    corpora: list[dict[str, Any]]  # per training corpus: its origin, weight, pairs kept and dropped, skipped header
    dev_truncated: int  # dev pairs cut to decode.max_source_tokens pieces on a side


def inverse_sqrt_schedule(warmup_steps: int, max_steps: int = 0, cooldown_steps: int = 0) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at update ``step`` (0-based): linear warmup, then decay
    ~ 1/sqrt(step) (Vaswani et al., 2017, eq. 3); with ``cooldown_steps``, the last that many
    updates before ``max_steps`` also scale it linearly down towards 0 (the "cooldown" of a
    warmup-stable-decay schedule, Hägele et al., 2024, which lets a run's last checkpoint match one
    whose schedule knew the budget from the start)."""
    def factor(step: int) -> float:
        step = max(step, 1)
        decay = min(step / max(warmup_steps, 1), math.sqrt(max(warmup_steps, 1) / step))
        if cooldown_steps:
            decay *= min(1.0, max(max_steps - step, 0) / cooldown_steps)
        return decay
    return factor


def prepare_data(config: RunConfig, tokenizer: Tokenizer | None = None,
                 distributed: Distributed = Distributed()) -> PreparedData:
    """Stream the training corpora into the tokenizer (``data.tokenizer``, the given one, or one
    trained on their union and cached) and each into a memory-mapped Arrow file of ids
    (``mt.store``, cached per corpus), batched together with each corpus' weight; read the dev
    set, cutting its sentences to ``decode.max_source_tokens`` pieces as translation does (a 1 MB dev
    line would otherwise ask validation for terabytes). Under DDP, rank 0 prepares first and the
    other processes then open its cache entries. Raises ``DataError`` on bad input."""
    data = config.data
    specs = [weighted_spec(entry) for entry in data.train]
    readers = [CorpusReader(spec, data.src_lang, data.tgt_lang, data.encoding_errors) for spec, _ in specs]
    if not distributed.is_main:
        distributed.barrier()
    if tokenizer is None:
        tokenizer = Tokenizer.load(Path(data.tokenizer)) if data.tokenizer else cached_tokenizer(readers, data)
    terminology = read_term_dictionary(Path(data.terminology)) if data.terminology else None
    parts = [tokenize_corpus(reader, tokenizer, data, terminology) for reader in readers]
    if distributed.is_main:
        distributed.barrier()
    dev = read_corpus(data.dev, data.src_lang, data.tgt_lang, data.encoding_errors)
    weights = [weight for _, weight in specs]
    per_pair = None if set(weights) == {1.0} else np.repeat(weights, [len(part) for part in parts])
    batches = TrainingBatches(TokenizedCorpus.concatenate(parts), config.train.batch_tokens, config.train.seed, per_pair,
                              shapes=SHAPE_BUCKETS if config.train.compile else 0)
    corpora = [{"corpus": part.origin, "weight": weight, "pairs": len(part), "dropped_long": part.dropped_long,
                "dropped_empty": part.dropped_empty, "tsv_header": reader.header}
               for part, weight, reader in zip(parts, weights, readers)]
    dev_src_ids, dev_tgt_ids = tokenizer.encode_src(dev.sources), tokenizer.encode_tgt(dev.targets)
    limit = config.decode.max_source_tokens
    dev_truncated = sum(max(len(s), len(t)) > limit for s, t in zip(dev_src_ids, dev_tgt_ids))
    return PreparedData(tokenizer, batches, dev, [s[:limit] for s in dev_src_ids], [t[:limit] for t in dev_tgt_ids],
                        corpora, dev_truncated)


@torch.no_grad()
def validate(model: EncoderDecoder, data: PreparedData, config: RunConfig, device: torch.device, dtype: torch.dtype) -> Event:
    """Dev loss (per target token, no label smoothing), perplexity, and the BLEU of the dev
    sources translated greedily as ``mt translate`` translates them (``mt.translate.Translator``),
    the model's weights in fp32 under the autocast of ``dtype``, as in training."""
    model.eval()
    limit = config.train.dev_max_sentences or len(data.dev_src_ids)
    src_ids, tgt_ids = data.dev_src_ids[:limit], data.dev_tgt_ids[:limit]
    total_loss, total_tokens = 0.0, 0
    greedy = dataclasses.replace(config.decode, beam_size=1, n_best=1, sampling=False)
    batches = TrainingBatches(TokenizedCorpus.from_lists(src_ids, tgt_ids), config.train.batch_tokens, seed=0)
    dev_loss = LabelSmoothedLoss(model, epsilon=0.0)
    with autocast(device, dtype):
        for batch in batches.epoch(0):
            batch = batch.to(device)
            total_loss += float(dev_loss(batch.src, batch.src_mask, batch.tgt_in, batch.tgt_out))
            total_tokens += batch.n_tgt_tokens
        translator = Translator(model, data.tokenizer, config, device)  # dtype fp32: it adds no autocast to this one
        hypotheses = [translation.text for translation in translator.translate(data.dev.sources[:limit], greedy)]
    model.train()
    loss = total_loss / max(total_tokens, 1)
    score = bleu(hypotheses, data.dev.targets[:limit], tokenize=default_tokenize(config.data.tgt_lang))
    return {"dev_loss": loss, "dev_ppl": math.exp(min(loss, 50.0)), "dev_bleu": score.score, "bleu_signature": score.signature}


class RunLog:
    """Appends events to ``train_log.jsonl`` (flushed per line, never through a symlink) and
    forwards them to a callback; ``path`` None (a DDP process other than rank 0) writes nothing.
    ``progress`` events (one per update) go to the callback only."""

    def __init__(self, path: Path | None, callback: Callable[[Event], None] | None):
        self.path, self.callback = path, callback

    def __call__(self, event: Event) -> None:
        if self.path is None:
            return
        event = {"time": time.time(), **event}
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        with open(descriptor, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, ensure_ascii=False) + "\n")
        self.progress(event)

    def progress(self, event: Event) -> None:
        if self.path is not None and self.callback:
            self.callback(event)


@dataclass
class TrainState:
    """Where the loop is: enough, with the model and optimizer, to resume exactly."""

    step: int = 0  # updates made
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this epoch consumed (skipped ones included)
    elapsed: float = 0.0  # training seconds up to the last checkpoint
    best_bleu: float = -1.0
    nonfinite_total: int = 0  # batches whose loss was NaN/inf (their update was skipped)



class Updater:
    """Model + Adam + warmup/inverse-sqrt schedule: turns updates (groups of batches) into parameter
    updates. ``objective`` is the model with its loss (``mt.loss.LabelSmoothedLoss``) as the
    forward pass calls it: DDP-wrapped under torchrun; with ``compile``, compiled once per batch
    shape and run with fused Adam (``mt.step``), and ``compile_seconds`` adds up the first step
    of each shape (its compiling, and that step's own work)."""

    def __init__(self, model: EncoderDecoder, settings: TrainConfig, device: torch.device, dtype: torch.dtype,
                 distributed: Distributed = Distributed()):
        self.model, self.settings, self.device, self.dtype = model, settings, device, dtype
        features = compile_features(model, device) if settings.compile else None
        self.objective = distributed.wrap(LabelSmoothedLoss(model, settings.label_smoothing, features))
        self.world_size = distributed.world_size
        self.compile_seconds, self.compiled_shapes = 0.0, set()
        self.optimizer = adam(model.parameters(), settings.learning_rate, settings.adam_betas, settings.weight_decay,
                              fused=settings.compile)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, inverse_sqrt_schedule(
            settings.warmup_steps, settings.max_steps, settings.cooldown_steps))
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None

    def step(self, update: Update) -> float | None:
        """One update: gradients of the label-smoothed loss summed over this process' batches and
        (by DDP's all-reduce, on the last batch only) over all processes, divided by the update's
        label tokens, so K accumulated batches or N processes equal one batch K*N times the size.
        Returns this process' summed loss, or None if the gradient norm was not finite (a NaN/inf
        loss, or fp16 overflow): then nothing is updated."""
        self.optimizer.zero_grad(set_to_none=True)
        scale = self.world_size / update.n_tgt_tokens  # DDP averages over processes; we want the sum
        total = torch.zeros((), device=self.device)
        for number, batch in enumerate(update.batches, start=1):
            batch = batch.to(self.device)
            last = number == len(update.batches)
            shape = (*batch.src.shape, batch.tgt_in.size(1))
            compiling = self.settings.compile and shape not in self.compiled_shapes  # a new shape: timed as compiling
            began = time.perf_counter()
            with contextlib.nullcontext() if last else Distributed.no_sync(self.objective):
                with autocast(self.device, self.dtype):
                    loss = self.objective(batch.src, batch.src_mask, batch.tgt_in, batch.tgt_out)
                scaled = loss * scale
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            total += loss.detach()
            if compiling:
                self.compiled_shapes.add(shape)
                self.compile_seconds += time.perf_counter() - began
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.clip_grad_norm or float("inf"))
        if self.scaler is not None:
            scale_before = self.scaler.get_scale()
            self.scaler.step(self.optimizer)  # skipped by the scaler on inf/NaN gradients
            self.scaler.update()
            if self.scaler.get_scale() < scale_before:
                return None
        elif torch.isfinite(norm):
            self.optimizer.step()
        else:
            return None
        self.scheduler.step()
        return float(total)


@dataclass
class LossWindow:
    """The updates since the last logged training loss: their summed loss, their target and source
    tokens, and when the window opened."""

    loss: float = 0.0
    tokens: int = 0
    src_tokens: int = 0
    start: float = field(default_factory=time.time)

    def tgt_tokens_per_s(self) -> float:
        """Target tokens a second since the window opened."""
        return self.tokens / max(time.time() - self.start, 1e-9)


class Run:
    """One training run on disk: its updater, position, log, and the steps of its loop: an update's
    bookkeeping (``record_update``, ``skip_nonfinite``), logging, validating or saving, and
    deciding when to stop (``stopped_by_limit``)."""

    def __init__(self, run_dir: Path, config: RunConfig, updater: Updater, data: PreparedData, log: RunLog,
                 resume_state: dict[str, Any] | None, distributed: Distributed = Distributed()):
        self.run_dir, self.config, self.updater, self.data, self.log = run_dir, config, updater, data, log
        self.distributed = distributed
        self.state = TrainState()
        if resume_state is not None:
            updater.optimizer.load_state_dict(resume_state["optimizer"])
            updater.scheduler.load_state_dict(resume_state["scheduler"])
            self.state = TrainState(**json.loads(resume_state["train_state"]))
            # last/ is saved before its validation: that validation's best is in validation.json
            scores = run_dir / "last" / checkpoint.VALIDATION_FILE
            if scores.is_file():
                self.state.best_bleu = max(self.state.best_bleu, json.loads(scores.read_text())["best_dev_bleu"])
            torch.set_rng_state(resume_state["torch_rng"])
            if "cuda_rng" in resume_state and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(list(resume_state["cuda_rng"]))
        self.validation_seconds = 0.0
        self.validation_estimate: tuple[float, float] | None = None  # (seconds, training seconds when measured)
        self.window = LossWindow()
        self.nonfinite_in_row = 0
        self.time_up = False  # agreed by all processes after every update
        self.last_save = time.time()

    def epoch_position(self, updates_per_epoch: int) -> float:
        """Epochs done, the current one's batches consumed included."""
        settings = self.config.train
        return self.state.epoch + self.state.batch_in_epoch / (updates_per_epoch * settings.accum_steps
                                                               * self.distributed.world_size)

    def stopped_by_limit(self) -> str | None:
        """Which limit of ``LIMITS`` ended the run, if one did."""
        settings, state = self.config.train, self.state
        reached = {"max_steps": settings.max_steps and state.step >= settings.max_steps,
                   "epochs": settings.epochs and state.epoch >= settings.epochs, "max_time": self.time_up}
        return next((limit for limit in LIMITS if reached[limit]), None)

    def time_is_up(self) -> bool:
        """Whether ``max_time`` is reached, the closing validation counted in (on rank 0 only)."""
        if not self.config.train.max_time:
            return False
        reserve = self.closing_validation_seconds() if self.distributed.is_main else 0.0
        return self.state.elapsed + reserve >= self.config.train.max_time

    def skip_nonfinite(self) -> None:
        """Count an update whose loss was NaN/inf (nothing was updated); ``TrainingError`` after
        ``max_nonfinite`` in a row."""
        state = self.state
        state.nonfinite_total += 1
        self.nonfinite_in_row += 1
        self.log({"event": "nonfinite", "step": state.step, "in_a_row": self.nonfinite_in_row, "total": state.nonfinite_total})
        if self.nonfinite_in_row >= self.config.train.max_nonfinite:
            raise TrainingError(
                f"the loss was NaN or infinite for {self.nonfinite_in_row} updates in a row at step {state.step}; "
                f"the last good checkpoint is in {self.run_dir / 'last'}. Lower train.learning_rate or use --precision fp32.")

    def record_update(self, loss_sum: float, update: Update, src_tokens: int, updates_per_epoch: int) -> None:
        """Count a finished update (``loss_sum`` over all processes), show its progress, and log
        the loss, validate and save at the steps ``train`` settings name."""
        settings, state, window = self.config.train, self.state, self.window
        self.nonfinite_in_row = 0
        state.step += 1
        window.loss += loss_sum
        window.tokens += update.n_tgt_tokens
        window.src_tokens += int(src_tokens)
        self.log.progress({"event": "progress", "step": state.step, "elapsed": state.elapsed,
                           "epoch": self.epoch_position(updates_per_epoch), "loss": window.loss / window.tokens,
                           "lr": self.updater.scheduler.get_last_lr()[0], "tgt_tokens_per_s": window.tgt_tokens_per_s(),
                           **self.compile_report()})
        if state.step % settings.log_every == 0:
            self.log_losses(updates_per_epoch)
        is_main = self.distributed.is_main
        if state.step % settings.validate_every == 0:
            if is_main:
                self.validate_and_save()
            self.last_save = self.window.start = time.time()
        elif is_main and ((settings.save_every and state.step % settings.save_every == 0)
                          or (settings.save_every_minutes and time.time() - self.last_save >= 60 * settings.save_every_minutes)):
            self.save()
            self.last_save = time.time()

    def log_losses(self, updates_per_epoch: int) -> None:
        """Log the training loss of the updates since the last such line, and open a new window."""
        window, state = self.window, self.state
        seconds = max(time.time() - window.start, 1e-9)
        self.log({"event": "train", "step": state.step, "epoch": self.epoch_position(updates_per_epoch),
                  "loss": window.loss / window.tokens, "lr": self.updater.scheduler.get_last_lr()[0],
                  "tgt_tokens_per_s": window.tokens / seconds, "tokens_per_s": (window.tokens + window.src_tokens) / seconds,
                  "elapsed": state.elapsed, "peak_rss_mb": peak_rss_mb(), **self.compile_report()})
        self.window = LossWindow()

    def compile_report(self) -> Event:
        """With ``train.compile``: the seconds spent so far on first steps of a batch shape (inside
        ``elapsed``, so within ``max_time``), and how many shapes were compiled."""
        if not self.config.train.compile:
            return {}
        return {"compile_seconds": self.updater.compile_seconds, "compiled_shapes": len(self.updater.compiled_shapes)}

    def closing_validation_seconds(self) -> float:
        """How long the validation at the end of the run will take, for ``max_time`` to stop the
        updates that much early: as long as the last validation, or a validation of the first
        ``ESTIMATE_SENTENCES`` dev sentences, timed and scaled to the whole dev set. An estimate
        that would end the run is measured again if it is older than a tenth of the budget (an
        untrained model decodes to the length limit, so the first estimate runs long)."""
        elapsed, budget = self.state.elapsed, self.config.train.max_time
        stale = self.validation_estimate is None or (
            elapsed + self.validation_estimate[0] >= budget and elapsed - self.validation_estimate[1] > budget / 10)
        if stale:
            sentences = min(len(self.data.dev_src_ids), ESTIMATE_SENTENCES)
            sample = dataclasses.replace(self.config, train=dataclasses.replace(self.config.train, dev_max_sentences=sentences))
            began = time.time()
            validate(self.updater.model, self.data, sample, self.updater.device, self.updater.dtype)
            self.validation_estimate = ((time.time() - began) * len(self.data.dev_src_ids) / sentences, elapsed)
        return self.validation_estimate[0]

    def save(self) -> Path:
        """Write ``steps/step-N`` atomically, point ``last`` at it, prune old ones; return it.

        A step already saved (a stop right after a validation) is not written again."""
        state, updater = self.state, self.updater
        target = rundir.step_directory(self.run_dir, state.step)
        if not (target / checkpoint.CONFIG_FILE).is_file():
            trainer_state = {"optimizer": updater.optimizer.state_dict(), "scheduler": updater.scheduler.state_dict(),
                             "train_state": json.dumps(dataclasses.asdict(state)), "torch_rng": torch.get_rng_state()}
            if torch.cuda.is_available():
                trainer_state["cuda_rng"] = torch.cuda.get_rng_state_all()
            summary = {"step": state.step, "epoch": state.epoch, "train_seconds": state.elapsed}
            checkpoint.write_checkpoint(target, updater.model, self.data.tokenizer, self.config, summary, trainer_state)
        checkpoint.point_link(self.run_dir / "last", target)
        rundir.prune(self.run_dir, self.config.train.keep)
        self.log({"event": "checkpoint", "step": state.step, "path": str(target)})
        return target

    def validate_and_save(self) -> None:
        """Save ``last`` first (a crash while validating never costs the training done), then
        validate, write the scores beside the checkpoint, and point ``best`` at it if they improved."""
        target = self.save()
        began = time.time()
        scores = validate(self.updater.model, self.data, self.config, self.updater.device, self.updater.dtype)
        self.validation_estimate = (time.time() - began, self.state.elapsed)
        self.validation_seconds += self.validation_estimate[0]
        improved = scores["dev_bleu"] > self.state.best_bleu
        self.state.best_bleu = max(self.state.best_bleu, scores["dev_bleu"])
        event = {"event": "validation", "step": self.state.step, "epoch": self.state.epoch, "elapsed": self.state.elapsed,
                 "validation_seconds": time.time() - began, **scores, "best_dev_bleu": self.state.best_bleu,
                 "best": improved}
        checkpoint.write_json(target / checkpoint.VALIDATION_FILE, event)
        if improved:
            checkpoint.point_link(self.run_dir / "best", target)
        self.log(event)


def train(config: RunConfig, run_dir: Path, callback: Callable[[Event], None] | None = None, resume: bool = False,
          stop_requested: Callable[[], str | None] = lambda: None) -> Event:
    """Train a model as ``config`` says, writing checkpoints and ``train_log.jsonl`` into ``run_dir``.

    With ``resume``, continues from ``run_dir/last`` (model, optimizer, schedule, data position,
    RNG), so the losses equal those of an uninterrupted run. With ``train.init_from`` (and no
    ``resume``), starts from that checkpoint's weights, tokenizer and model section with a fresh
    optimizer and schedule: fine-tuning, e.g. on more data. Stops at ``max_steps``, ``epochs`` or
    ``max_time`` seconds, whichever comes first (``max_time`` includes the closing validation:
    the updates stop as long before it as that validation is expected to take, see
    ``Run.closing_validation_seconds``), or after the current update when
    ``stop_requested()`` returns a reason (e.g. ``"SIGINT"``), saving ``last`` first. An update
    whose loss is NaN/inf is skipped and counted. Each update accumulates ``accum_steps`` batches.
    Launched by ``torchrun`` (see ``mt.distributed``), every process trains on its share of each
    update's batches, the processes agree on when to stop, and only rank 0 validates and writes
    logs and checkpoints (the same checkpoints a single process writes). Returns the final event
    (step, epoch, seconds, best dev BLEU, ``stopped_by``: the limit of ``LIMITS`` or the signal
    that ended the run).

    The writing process holds ``run_dir``'s lock throughout (``mt.rundir.locked``) and first
    removes what a process killed mid-save left there. Raises ``DataError``, ``ConfigError``,
    ``CheckpointError`` on bad input or a run directory that links outside itself,
    ``TrainingError`` when another process writes ``run_dir`` or after ``max_nonfinite``
    non-finite losses in a row.
    """
    check_model_config(config.model)  # a misspelt attention fails now, not after minutes of preparing data
    run_dir = Path(run_dir)
    distributed = Distributed.from_env(resolve_device(config.train.device))
    with rundir.locked(run_dir) if distributed.is_main else contextlib.nullcontext():
        removed = rundir.remove_staging(run_dir) if distributed.is_main else 0
        return _train(config, run_dir, distributed, callback, resume, stop_requested, removed)


def _train(config: RunConfig, run_dir: Path, distributed: Distributed, callback: Callable[[Event], None] | None,
           resume: bool, stop_requested: Callable[[], str | None], removed_staging: int) -> Event:
    """``train``'s steps, top to bottom: start (or resume), prepare the data, then updates until a
    limit or a signal, each followed by its bookkeeping, and the closing save or validation."""
    config = copy.deepcopy(config)  # the caller's stays as given: the model section is completed below
    settings = config.train
    device = distributed.device(resolve_device(settings.device))
    dtype = resolve_precision(settings.precision, device)
    threads = set_threads(settings.threads, processes=distributed.local_world_size)
    torch.manual_seed(settings.seed)
    model, tokenizer, resume_state = _starting_point(config, run_dir, resume, device)
    started = time.time()
    data = prepare_data(config, tokenizer, distributed)
    config.model.src_vocab_size, config.model.tgt_vocab_size = data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size
    config.model.joint_vocab = data.tokenizer.joint
    if model is None:
        model = build_model(config.model).to(device)
    model.train()
    log = RunLog(run_dir / rundir.LOG_FILE if distributed.is_main else None, callback)
    run = Run(run_dir, config, Updater(model, settings, device, dtype, distributed), data, log, resume_state, distributed)
    if distributed.active:  # different dropout masks in each process
        torch.manual_seed(settings.seed + distributed.rank)
    log(_start_event(run, "resume" if resume else "start", threads, removed_staging, time.time() - started))
    process_start = time.time()
    clock_start = process_start - run.state.elapsed
    stopped_by = _update_until_stopped(run, clock_start, stop_requested)
    if run.window.tokens:  # the updates after the last log_every multiple: the curve reaches the last step
        run.log_losses(data.batches.updates_per_epoch(run.state.epoch, settings.accum_steps, distributed.world_size))
    if distributed.is_main:
        stopped_by = stopped_by or stop_requested()
        if stopped_by:
            run.save()
        elif run.state.step % settings.validate_every:
            run.validate_and_save()
    end = {"event": "end", "step": run.state.step, "epoch": run.state.epoch, "elapsed": time.time() - clock_start,
           "best_dev_bleu": run.state.best_bleu, "nonfinite_total": run.state.nonfinite_total,
           "stopped_by": stopped_by or run.stopped_by_limit(),
           "validation_share": run.validation_seconds / max(time.time() - process_start, 1e-9), **run.compile_report()}
    log(end)
    distributed.close()
    return end


def _starting_point(config: RunConfig, run_dir: Path, resume: bool, device: torch.device
                    ) -> tuple[EncoderDecoder | None, Tokenizer | None, dict[str, Any] | None]:
    """The model, tokenizer and trainer state a run starts from: ``run_dir/last``'s when resuming;
    ``train.init_from``'s weights and tokenizer (its model section copied into ``config``) when
    fine-tuning; else none of them (a new model is built once the data says the vocabulary sizes)."""
    if resume:
        model, tokenizer, _, _ = checkpoint.load_checkpoint(run_dir / "last", device)
        return model, tokenizer, checkpoint.load_trainer_state(run_dir / "last")
    if config.train.init_from:  # fine-tuning: a fresh optimizer and schedule
        model, tokenizer, init_config, _ = checkpoint.load_checkpoint(Path(config.train.init_from), device)
        config.model = init_config.model
        return model.float(), tokenizer, None
    return None, None, None


def _start_event(run: Run, kind: str, threads: int, removed_staging: int, prepare_seconds: float) -> Event:
    """The first line of a run's log (``kind`` start or resume): where and on what it trains."""
    data, state, settings, updater = run.data, run.state, run.config.train, run.updater
    accum, world = settings.accum_steps, run.distributed.world_size
    return {
        "event": kind, "step": state.step, "device": str(updater.device), "precision": str(updater.dtype).split(".")[-1],
        "threads": threads, "processes": world, "accum_steps": accum,
        "parameters": sum(p.numel() for p in updater.model.parameters()),
        "train_pairs": len(data.batches), "dropped_long": sum(c["dropped_long"] for c in data.corpora),
        "dropped_empty": sum(c["dropped_empty"] for c in data.corpora), "corpora": data.corpora,
        "dev_pairs": len(data.dev_src_ids), "dev_truncated": data.dev_truncated,
        "removed_staging": removed_staging, "vocab": [data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size],
        "batches_per_epoch": len(data.batches.plan(state.epoch)),
        "updates_per_epoch": data.batches.updates_per_epoch(state.epoch, accum, world),
        "padding_fraction": data.batches.padding_fraction(), "prepare_seconds": prepare_seconds,
        "batch_shapes": [[shape.rows, shape.src_len, shape.tgt_len] for shape in data.batches.shapes],
        "config": run.config.to_dict(),
        "limits": {"max_steps": settings.max_steps, "epochs": settings.epochs, "max_time": settings.max_time},
    }


def _update_until_stopped(run: Run, clock_start: float, stop_requested: Callable[[], str | None]) -> str | None:
    """Updates, epoch after epoch, until a limit (``Run.stopped_by_limit``) or ``stop_requested``
    ends the run; the processes agree after every update on the loss, the signals and the time.
    Returns the signal that stopped the run, or None."""
    data, state, distributed = run.data, run.state, run.distributed
    accum, world = run.config.train.accum_steps, distributed.world_size
    stopped_by = stop_requested()  # a signal while the data was being prepared
    while not run.stopped_by_limit() and stopped_by is None:
        updates_per_epoch = data.batches.updates_per_epoch(state.epoch, accum, world)
        for update in data.batches.updates(state.epoch, state.batch_in_epoch, accum, world, distributed.rank):
            loss = run.updater.step(update)
            state.batch_in_epoch += accum * world
            state.elapsed = time.time() - clock_start
            signal = stop_requested()
            src_tokens = sum(batch.n_src_tokens for batch in update.batches)
            loss_sum, src_tokens, signals, times_up = distributed.sum(loss or 0.0, src_tokens, signal is not None,
                                                                      run.time_is_up())
            stopped_by = (signal or "a signal to another process") if signals else None
            run.time_up = times_up > 0
            if loss is None:
                run.skip_nonfinite()
            else:
                run.record_update(loss_sum, update, src_tokens, updates_per_epoch)
            if stopped_by or run.stopped_by_limit():
                break
        else:
            state.epoch += 1
            state.batch_in_epoch = 0
    return stopped_by
