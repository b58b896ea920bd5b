"""Checkpoint averaging: the element-wise mean of several checkpoints' weights.

Averaging the last checkpoints of a run smooths the noise of the last updates and usually
gains BLEU (Vaswani et al. 2017, section 6.1: the last 5 checkpoints; Wu et al. 2021 average the
last 10 for Transformer-Tiny on Multi30k). The checkpoints must share the architecture and the
tokenizer; the result is an ordinary checkpoint whose ``config.json`` summary names its sources.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mt import rundir
from mt.checkpoint import CONFIG_FILE, check_destination, load_checkpoint, resolve_checkpoint, write_checkpoint
from mt.errors import CheckpointError


def last_checkpoints(run_dir: Path, count: int) -> list[Path]:
    """The ``count`` newest step checkpoints of a run directory, oldest first; ``CheckpointError``
    when it holds fewer (train with ``--keep`` at least ``count``)."""
    steps = sorted(path for path in (Path(run_dir) / rundir.STEPS_DIR).iterdir()
                   if rundir.STEP_NAME.fullmatch(path.name) and (path / CONFIG_FILE).is_file())
    if len(steps) < count:
        raise CheckpointError(f"{run_dir} keeps {len(steps)} step checkpoint(s), fewer than the {count} asked for: "
                              f"train with --keep {count} (or more) to average them")
    return steps[-count:]


def expand_sources(sources: list[Path], last: int) -> list[Path]:
    """Checkpoint directories as given, run directories as their ``last`` newest step checkpoints."""
    expanded: list[Path] = []
    for source in map(Path, sources):
        expanded += [source] if (source / CONFIG_FILE).is_file() else last_checkpoints(source, last)
    return expanded


def average_checkpoints(paths: list[Path], output: Path) -> Path:
    """Write to ``output`` the checkpoint whose every floating-point weight is the mean of those
    of ``paths`` (computed in float64, stored as the first checkpoint stores it); integer buffers
    are the first checkpoint's. Returns ``output``. Raises ``CheckpointError`` for fewer than two
    checkpoints, one given twice (links resolved: ``last`` and the ``steps/step-N`` it points to),
    ones of another architecture, shape or vocabulary than the first, or an ``output`` over one of
    them or their run directory (``mt.checkpoint.check_destination``)."""
    if len(paths) < 2:
        raise CheckpointError(f"averaging needs at least two checkpoints, got {len(paths)}")
    seen: dict[Path, Path] = {}
    for path in paths:
        real = resolve_checkpoint(path).resolve()
        if real in seen:
            raise CheckpointError(f"{seen[real]} and {path} are the same checkpoint ({real}): it would count twice in "
                                  "the average; give each checkpoint once")
        seen[real] = path
    check_destination(output, paths)
    model, tokenizer, config, meta = load_checkpoint(paths[0])
    reference = {name: tensor for name, tensor in model.state_dict().items()}
    sums = {name: tensor.double().clone() for name, tensor in reference.items() if tensor.is_floating_point()}
    vocabulary = (tokenizer.src.serialized_model_proto(), tokenizer.tgt.serialized_model_proto())
    for path in paths[1:]:
        other, other_tokenizer, other_config, _ = load_checkpoint(path)
        if other_config.model != config.model:
            differing = [key for key, value in vars(config.model).items() if getattr(other_config.model, key) != value]
            raise CheckpointError(f"{resolve_checkpoint(path)} is another model than {resolve_checkpoint(paths[0])} "
                                  f"(model.{', model.'.join(differing)} differ): only checkpoints of one run can be averaged")
        if (other_tokenizer.src.serialized_model_proto(), other_tokenizer.tgt.serialized_model_proto()) != vocabulary:
            raise CheckpointError(f"{resolve_checkpoint(path)} has another vocabulary than {resolve_checkpoint(paths[0])}: "
                                  "only checkpoints of one run can be averaged")
        for name, tensor in other.state_dict().items():
            if name in sums:
                sums[name] += tensor.double()
    averaged = {name: (sums[name] / len(paths)).to(tensor.dtype) if name in sums else tensor
                for name, tensor in reference.items()}
    model.load_state_dict(averaged)
    summary = {**meta.get("summary", {}), "averaged_from": [str(resolve_checkpoint(path)) for path in paths]}
    with torch.no_grad():
        return write_checkpoint(output, model, tokenizer, config, summary)
