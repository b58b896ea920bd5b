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
from pathlib import Path
from typing import Iterator

from mt.checkpoint import CONFIG_FILE, STEPS_DIR
from mt.errors import CheckpointError, TrainingError

LOCK_FILE, LOG_FILE = ".lock", "train_log.jsonl"
LINKS = ("best", "last")
STEP_NAME = re.compile(r"step-\d{7}")
# What a process killed mid-save leaves: write_checkpoint's staging and set-aside directories
# (tempfile.mkdtemp(prefix=".step-NNNNNNN.")) and point_link's temporary links (".last.PID.link").
STAGING_NAME = re.compile(r"\.step-\d{7}\..+")
LINK_TEMPORARY_NAME = re.compile(r"\.(best|last)\.\d+\.link")


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
