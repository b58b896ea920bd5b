"""Training in several processes with PyTorch's DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc_per_node=N $(which mt) train ...`` starts N copies of ``mt train`` with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` in their environment;
``Distributed.from_env`` joins them into one process group (NCCL on CUDA, gloo on CPU). Each
process computes its share of every update's batches; DDP averages the gradients across them
(Li et al., 2020, "PyTorch Distributed: Experiences on Accelerating Data Parallel Training").
Without those variables it describes a single process and every method is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mt.errors import ConfigError


def is_main_process() -> bool:
    """Whether this process is rank 0 of a ``torchrun`` launch, or runs alone: the one that reports
    (torchrun's ``RANK``, read without joining the process group)."""
    return os.environ.get("RANK", "0") == "0"


@dataclass
class Distributed:
    """This process' place among the processes of one training run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the logs and checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, device: torch.device) -> "Distributed":
        """Read torchrun's variables; with more than one process, join the process group on
        ``device`` (CUDA: this process takes GPU ``LOCAL_RANK``). Raises ``ConfigError`` when
        there are fewer GPUs than processes on this node."""
        env = os.environ
        world_size = int(env.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls()
        place = cls(int(env["RANK"]), world_size, int(env.get("LOCAL_RANK", "0")), int(env.get("LOCAL_WORLD_SIZE", "1")))
        if device.type == "cuda":
            if place.local_rank >= torch.cuda.device_count():
                raise ConfigError(f"process {place.local_rank} of this node has no GPU: "
                                  f"{torch.cuda.device_count()} GPU(s) for {place.local_world_size} processes")
            torch.cuda.set_device(place.local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return place

    def device(self, device: torch.device) -> torch.device:
        """The device of this process: its own GPU under DDP on CUDA."""
        return torch.device("cuda", self.local_rank) if self.active and device.type == "cuda" else device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model as the forward pass should call it: DDP-wrapped when there are several processes."""
        if not self.active:
            return model
        device_ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return DistributedDataParallel(model, device_ids=device_ids)

    @staticmethod
    def no_sync(model: torch.nn.Module):
        """Skip DDP's gradient all-reduce in a backward pass (every accumulation batch but the last)."""
        return model.no_sync() if isinstance(model, DistributedDataParallel) else contextlib.nullcontext()

    def sum(self, *values: float) -> list[float]:
        """The sums over all processes of a few numbers (one small all-reduce)."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
