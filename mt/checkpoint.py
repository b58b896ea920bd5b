"""The on-disk checkpoint format: written atomically, loaded without unpickling anything.

A checkpoint is a directory::

    model.safetensors      weights (safetensors: tensors only, no code)
    config.json            format version, the RunConfig, languages, special ids, training summary
    tokenizer.json, *.model   the SentencePiece tokenizer
    trainer_state.pt       optional: optimizer/scheduler/step/RNG to resume (torch.load(weights_only=True))
    validation.json        optional: the dev scores of a training checkpoint (mt.train)

A run directory holds ``steps/step-NNNNNNN/`` checkpoints and two symlinks, ``best`` and
``last``. A checkpoint is written under a temporary name, fsynced, then renamed into place,
and the symlinks are replaced with ``os.replace``: a process killed at any moment leaves
``best`` and ``last`` pointing at complete checkpoints. A checkpoint replaces an existing one only
if that one holds nothing but the files above, and never where it would destroy what it is made
from (``check_destination``).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from mt.config import RunConfig, config_from_dict
from mt.errors import CheckpointError, ConfigError
from mt.files import atomic_output, describe_write_error
from mt.models import EncoderDecoder, build_model
from mt.tokenizer import (BOS_ID, EOS_ID, JOINT_MODEL_FILE, PAD_ID, SRC_MODEL_FILE, TGT_MODEL_FILE, TOKENIZER_FILE, UNK_ID,
                          Tokenizer)

FORMAT_VERSION = 1
WEIGHTS_FILE, CONFIG_FILE, TRAINER_STATE_FILE = "model.safetensors", "config.json", "trainer_state.pt"
VALIDATION_FILE = "validation.json"  # a checkpoint's dev scores, written once they are known
# Everything mt writes into a checkpoint directory: replacing a checkpoint deletes only these.
CHECKPOINT_FILES = frozenset({WEIGHTS_FILE, CONFIG_FILE, TRAINER_STATE_FILE, VALIDATION_FILE, TOKENIZER_FILE,
                              JOINT_MODEL_FILE, SRC_MODEL_FILE, TGT_MODEL_FILE})
STEPS_DIR = "steps"  # a run directory's step checkpoints (mt.rundir)
DEFAULT_CHECKPOINT_ENV = "MT_CHECKPOINT"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "default"  # the model shipped beside cli.py


def _fsync_directory(directory: Path) -> None:
    """Make a rename or new entry in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        path.chmod(0o644)
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    directory.chmod(0o755)
    _fsync_directory(directory)


def write_checkpoint(
    directory: Path,
    model: EncoderDecoder,
    tokenizer: Tokenizer,
    config: RunConfig,
    summary: dict[str, Any] | None = None,
    trainer_state: dict[str, Any] | None = None,
    weights_dtype: torch.dtype | None = None,
) -> Path:
    """Write a complete checkpoint to ``directory`` atomically (temporary sibling, fsync, rename).

    ``weights_dtype`` (e.g. ``torch.bfloat16``) stores the weights in that type, halving the file
    of an fp32 model; they are cast back to fp32 on loading. An existing checkpoint at
    ``directory`` holding only ``CHECKPOINT_FILES`` is replaced (the old one is moved aside first,
    then deleted); a symlink, any other directory, or a checkpoint holding other files (a model
    card) is refused with ``CheckpointError``, never deleted. A write that fails (a full disk)
    raises ``CheckpointError`` saying so, with nothing left of the new checkpoint. Returns ``directory``.
    """
    directory = Path(directory)
    if directory.is_symlink():
        raise CheckpointError(f"{directory} is a symlink (to {os.readlink(directory)}): mt writes a checkpoint as a "
                              "directory of its own, never in place of a link; pick a new directory")
    if directory.exists():
        if not (directory / CONFIG_FILE).is_file():
            raise CheckpointError(f"{directory} exists and is not a checkpoint: refusing to replace it; pick a new directory")
        foreign = sorted(entry.name for entry in directory.iterdir()
                         if entry.name not in CHECKPOINT_FILES or entry.is_symlink() or not entry.is_file())
        if foreign:
            raise CheckpointError(f"{directory} holds {', '.join(foreign)}, which mt did not write: replacing the checkpoint "
                                  "would delete them; move them elsewhere, or pick a new directory")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        stored = model if weights_dtype is None else copy.deepcopy(model).to(weights_dtype)
        save_model(stored, str(staging / WEIGHTS_FILE), metadata={"format_version": str(FORMAT_VERSION)})
        tokenizer.save(staging)
        meta = {
            "format_version": FORMAT_VERSION,
            "src_lang": tokenizer.src_lang,
            "tgt_lang": tokenizer.tgt_lang,
            "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
            "config": config.to_dict(),
            "summary": summary or {},
        }
        (staging / CONFIG_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if trainer_state is not None:
            torch.save(trainer_state, staging / TRAINER_STATE_FILE)
        _fsync_tree(staging)
        old = None
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, old / directory.name)
        os.rename(staging, directory)
        _fsync_directory(directory.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except (OSError, RuntimeError, SafetensorError) as error:  # torch.save reports a full disk as RuntimeError
        shutil.rmtree(staging, ignore_errors=True)
        reason = describe_write_error(error, directory) if isinstance(error, OSError) else f"cannot write {directory}: {error}"
        free = shutil.disk_usage(directory.parent).free / 2**20
        raise CheckpointError(f"{reason}. {free:,.0f} MiB are free there; the checkpoints saved before are intact. "
                              "If the disk is full, free some space, then continue with mt train --resume") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically (see ``mt.files.atomic_output``)."""
    with atomic_output(path) as handle:
        handle.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def point_link(link: Path, target: Path) -> None:
    """Make ``link`` a relative symlink to ``target``, replacing any old link atomically."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.link")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(os.path.relpath(target, link.parent))
    os.replace(temporary, link)
    _fsync_directory(link.parent)


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint directory, or a run directory (meaning its ``best``); ``CheckpointError`` otherwise."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if (path / CONFIG_FILE).is_file():
        return path
    for name in ("best", "last"):
        if (path / name / CONFIG_FILE).is_file():
            return path / name
    raise CheckpointError(f"{path} is neither a checkpoint (no {CONFIG_FILE}) nor a run directory (no best/ or last/)")


def default_checkpoint() -> Path:
    """``$MT_CHECKPOINT`` if set, else the model shipped in ``checkpoints/default``; ``CheckpointError``
    if there is none."""
    path = Path(os.environ.get(DEFAULT_CHECKPOINT_ENV) or DEFAULT_CHECKPOINT)
    if not path.exists():
        raise CheckpointError(f"no model at {path}: pass --checkpoint DIR (a checkpoint or run directory) "
                              f"or set {DEFAULT_CHECKPOINT_ENV}")
    return path


def read_meta(directory: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint, checked for format version."""
    path = Path(directory) / CONFIG_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(version, int):
        raise CheckpointError(f"{path} has no format_version: not an mt checkpoint")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {version}, newer than this mt understands ({FORMAT_VERSION}): upgrade mt"
        )
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: \"config\" must be a mapping of the run's settings, got {meta.get('config')!r}; "
                              "the file was edited or damaged: take config.json from the run that trained the model")
    return meta


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[EncoderDecoder, Tokenizer, RunConfig, dict]:
    """Load a checkpoint (or a run directory's ``best``) for inference.

    Returns (model in eval mode on ``device``, tokenizer, config, meta). Raises
    ``CheckpointError`` for missing/corrupted files, a newer format, or a tokenizer whose
    vocabulary does not match the model's embeddings.
    """
    directory = resolve_checkpoint(path)
    meta = read_meta(directory)
    try:
        config = config_from_dict(meta["config"], str(directory / CONFIG_FILE))
        config.validate()
    except (ConfigError, KeyError) as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: invalid configuration: {error}") from None
    tokenizer = Tokenizer.load(directory)
    if (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size) != (config.model.src_vocab_size, config.model.tgt_vocab_size):
        raise CheckpointError(
            f"{directory}: the tokenizer has {tokenizer.src_vocab_size}/{tokenizer.tgt_vocab_size} pieces but the model "
            f"embeds {config.model.src_vocab_size}/{config.model.tgt_vocab_size}: they come from different runs"
        )
    model = build_model(config.model)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing")
    try:
        load_model(model, str(weights), strict=True, device=str(device))
    except (SafetensorError, RuntimeError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights} is corrupted or does not match {CONFIG_FILE}: {error}") from None
    return model.to(device).eval(), tokenizer, config, meta


def check_destination(destination: Path, sources: list[Path]) -> None:
    """Raise ``CheckpointError`` if writing ``destination`` could replace or delete what ``sources``
    (checkpoints, or run directories meaning their best) are read from: ``destination`` is,
    contains or lies inside one of their checkpoints or the run directory holding it, links resolved."""
    target = Path(destination).resolve()
    for source in sources:
        checkpoint = resolve_checkpoint(source).resolve()
        given = Path(source).resolve()
        roots = [checkpoint.parent.parent] if checkpoint.parent.name == STEPS_DIR else []
        roots += [given] if given != checkpoint else []  # a run directory given by name
        for root in dict.fromkeys(roots + [checkpoint]):
            kind = "checkpoint" if root == checkpoint else "run directory"
            relation = ("is" if target == root else "lies inside" if root in target.parents
                        else "contains" if target in root.parents else None)
            if relation:
                raise CheckpointError(f"cannot write {destination}: it {relation} the {kind} {root} that {source} is read "
                                      f"from, and writing there could destroy what is being read; pick a directory outside {root}")


def export_checkpoint(source: Path, destination: Path, weights_dtype: torch.dtype | None = None) -> Path:
    """Copy a checkpoint for inference only: no optimizer state, weights optionally in ``weights_dtype``.
    Raises ``CheckpointError`` for a ``destination`` over the source (``check_destination``)."""
    check_destination(destination, [source])
    model, tokenizer, config, meta = load_checkpoint(source)
    summary = {**meta.get("summary", {}), "exported_from": str(resolve_checkpoint(source)),
               "weights_dtype": str(weights_dtype or torch.float32).split(".")[-1]}
    return write_checkpoint(destination, model, tokenizer, config, summary, weights_dtype=weights_dtype)


def load_trainer_state(directory: Path) -> dict[str, Any]:
    """The resumable training state of a checkpoint, loaded with ``weights_only=True`` (no code runs)."""
    path = Path(directory) / TRAINER_STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: this checkpoint cannot resume training")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unsafe or corrupted files
        raise CheckpointError(f"{path} cannot be loaded safely: {error}") from None
