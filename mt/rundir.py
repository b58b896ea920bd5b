"""The run directory that one ``mt train`` writes: its lock, its links, its pruning, its leftovers.

A run directory holds::

    train_log.jsonl        one JSON event a line (mt.train.RunLog)
    steps/step-NNNNNNN/    checkpoints (mt.checkpoint), each with validation.json once validated
    best, last             relative symlinks into steps/
    .lock                  held (flock) by the one process writing the run

Nothing here follows a symlink out of the run directory: ``steps`` and ``train_log.jsonl`` must
be real, ``best`` and ``last`` must point into ``steps/``, and pruning deletes only
``step-NNNNNNN`` directories that ``mt`` wrote (they hold a ``config.json``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from mt.checkpoint import CONFIG_FILE, STEPS_DIR, read_meta, resolve_checkpoint
from mt.config import RunConfig, apply_overrides, build_config, config_from_dict
from mt.errors import CheckpointError, ConfigError, TrainingError

LOCK_FILE, LOG_FILE = ".lock", "train_log.jsonl"
LINKS = ("best", "last")
STEP_NAME = re.compile(r"step-\d{7}")
# What a process killed mid-save leaves: write_checkpoint's staging and set-aside directories
# (tempfile.mkdtemp(prefix=".step-NNNNNNN.")) and point_link's temporary links (".last.PID.link").
STAGING_NAME = re.compile(r"\.step-\d{7}\..+")
LINK_TEMPORARY_NAME = re.compile(r"\.(best|last)\.\d+\.link")
RUNS_DIR = Path("checkpoints")  # where a run without --output goes, under its name
# What a run keeps when it goes on: a fine-tuned one its checkpoint's model and tokenizer, a resumed
# one its model, data and batches (the same batches in the same order make its losses equal).
FINE_TUNING_KEEPS = {"model": None, "data": ("tokenizer", "vocab_size", "model_type", "joint_vocab")}
RESUMING_KEEPS = {"model": None, "data": None, "train": ("batch_tokens", "seed", "init_from")}


@dataclass
class RunPlan:
    """What one ``mt train`` will do: train ``config`` in ``run_dir``, continuing it when ``resume``."""

    config: RunConfig
    run_dir: Path
    resume: bool = False


def _kept(overrides: dict[str, dict[str, Any]], keeps: dict[str, tuple[str, ...] | None]) -> list[str]:
    """The overrides that change what ``keeps`` says a run keeps (None: a whole section), as section.key."""
    return [f"{section}.{key}" for section, keys in keeps.items() for key in overrides.get(section, {})
            if keys is None or key in keys]


def plan_run(overrides: dict[str, dict[str, Any]], preset: str | None = None, config_file: Path | None = None,
             output: Path | None = None, run_name: str | None = None, resume: Path | None = None) -> RunPlan:
    """The configuration and run directory of a training run, from command-line ``overrides``
    (``{section: {key: value}}``, ``train.init_from`` included).

    A new run: defaults < ``preset`` (default ``rnn-bahdanau`` for ``model.arch`` rnn, else
    ``transformer-small``) < ``config_file`` < ``overrides``, in ``output`` or
    ``checkpoints/<run_name>``, the name defaulting to ``<model>-<src>-<tgt>`` (``rnn-<attention>``
    for an RNN). A fine-tuned run (``train.init_from``) keeps its checkpoint's model and tokenizer;
    ``resume`` continues the run in that directory from its ``last/`` checkpoint's configuration,
    keeping its model, data and batches (``RESUMING_KEEPS``).

    Raises ``ConfigError`` for an override of what a fine-tuned or resumed run keeps, a new run
    without training or dev data, one whose directory already holds a run, or a resumed one
    without ``last/``; ``CheckpointError`` for an ``init_from`` that is no checkpoint; what
    ``mt.config.build_config`` raises."""
    init_from = overrides.get("train", {}).get("init_from")
    if init_from:
        if fixed := _kept(overrides, FINE_TUNING_KEEPS):
            raise ConfigError(f"a fine-tuned run keeps the model and tokenizer of {init_from}: drop {', '.join(fixed)} "
                              "when using --init-from")
        resolve_checkpoint(Path(init_from))
    if resume:
        if fixed := _kept(overrides, RESUMING_KEEPS):
            raise ConfigError(f"a resumed run keeps its model, data and batches: drop {', '.join(fixed)} when using --resume")
        if not (resume / "last").exists():
            raise ConfigError(f"{resume} has no last/ checkpoint to resume from")
        meta = read_meta(resolve_checkpoint(resume / "last"))
        config = config_from_dict(meta["config"], str(resume / "last" / "config.json"))
        apply_overrides(config, overrides, "command-line options")
        config.validate()
        return RunPlan(config, resume, resume=True)
    arch = overrides.get("model", {}).get("arch")
    config = build_config(preset or ("rnn-bahdanau" if arch == "rnn" else "transformer-small"), config_file, overrides)
    if not config.data.train or not config.data.dev:
        raise ConfigError("give --train and --dev (or data.train / data.dev in --config)")
    model_name = "rnn-" + config.model.attention if config.model.arch == "rnn" else config.model.arch
    run_dir = output or RUNS_DIR / (run_name or f"{model_name}-{config.data.src_lang}-{config.data.tgt_lang}")
    if (run_dir / "last").exists():
        raise ConfigError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or pick another --output")
    return RunPlan(config, run_dir)


def step_directory(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of update ``step`` goes."""
    return Path(run_dir) / STEPS_DIR / f"step-{step:07d}"


def check_contained(run_dir: Path) -> None:
    """Raise ``CheckpointError`` if writing ``run_dir`` would follow a symlink out of it or meet
    the wrong kind of entry: ``steps``, ``train_log.jsonl`` or the lock file a symlink, ``steps``
    anything but a directory or the other two anything but files, or ``best``/``last`` not a
    symlink to a directory inside ``steps/``."""
    run_dir = Path(run_dir)
    for name in (STEPS_DIR, LOG_FILE, LOCK_FILE):
        path, kind = run_dir / name, "directory" if name == STEPS_DIR else "file"
        if path.is_symlink():
            raise CheckpointError(f"{path} is a symlink (to {os.readlink(path)}): mt writes only "
                                  f"inside its run directory; replace it with a real {kind}")
        if path.exists() and (path.is_dir() if kind == "file" else not path.is_dir()):
            raise CheckpointError(f"{path} is a {'directory' if path.is_dir() else 'file'} where the run's {name} "
                                  f"{kind} belongs: move it away, or give the run another directory")
    steps = (run_dir / STEPS_DIR).resolve()
    for name in LINKS:
        link = run_dir / name
        if not link.is_symlink() and not link.exists():
            continue
        if not link.is_symlink() or link.resolve().parent != steps:
            where = f"points to {os.readlink(link)}" if link.is_symlink() else "is not a symlink"
            raise CheckpointError(f"{link} {where}: {name} must be a symlink to a checkpoint in {run_dir / STEPS_DIR}")


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` (``flock`` on its ``.lock``, created if needed) while
    the block runs; the kernel releases it however the process ends, kill -9 included.

    Raises ``TrainingError`` naming the holder's pid when another process writes the run, and
    ``CheckpointError`` (``check_contained``) when the directory links outside itself."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is a file where the run directory belongs: move it away, or give the run "
                              "another directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    check_contained(run_dir)
    descriptor = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(descriptor)
            raise TrainingError(f"{run_dir} is being written by another mt train (pid {holder}): wait for it to end, "
                                "or give this run another --output") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)


def _holder(descriptor: int) -> str:
    """The pid the lock's holder wrote into the lock file (it writes it just after locking: wait
    up to a second for it), or "unknown"."""
    for _ in range(20):
        if pid := os.pread(descriptor, 32, 0).decode(errors="replace").strip():
            return pid
        time.sleep(0.05)
    return "unknown"


def remove_staging(run_dir: Path) -> int:
    """Delete what a process killed while saving left behind (staging directories in ``steps/``,
    temporary links); call it holding the lock, so no save is in progress. Returns the count."""
    run_dir = Path(run_dir)
    leftovers = [path for path in run_dir.iterdir() if LINK_TEMPORARY_NAME.fullmatch(path.name) and path.is_symlink()]
    if (run_dir / STEPS_DIR).is_dir():
        leftovers += [path for path in (run_dir / STEPS_DIR).iterdir()
                      if STAGING_NAME.fullmatch(path.name) and path.is_dir() and not path.is_symlink()]
    for path in leftovers:
        if path.is_symlink():
            path.unlink()
        else:
            shutil.rmtree(path)
    return len(leftovers)


def prune(run_dir: Path, keep: int) -> None:
    """Delete the step checkpoints beyond the ``keep`` newest, never one that ``best`` or ``last``
    points to, and nothing but ``step-NNNNNNN`` directories holding a ``config.json``."""
    run_dir = Path(run_dir)
    linked = {(run_dir / name).resolve() for name in LINKS if (run_dir / name).exists()}
    steps = sorted(path for path in (run_dir / STEPS_DIR).iterdir()
                   if STEP_NAME.fullmatch(path.name) and not path.is_symlink() and (path / CONFIG_FILE).is_file())
    for old in steps[: max(len(steps) - keep, 0)]:
        if old.resolve() not in linked:
            shutil.rmtree(old)
