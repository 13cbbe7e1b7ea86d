"""Data parallel training in one object: ``Distributed`` (a no-op in a single process).

Started by torchrun (WORLD_SIZE > 1), every process holds the whole data set, takes its share of
each global batch (``batch_size`` is global) and of the evaluation batches, and only rank 0 writes
the run folder. Everything the loop needs from torch.distributed goes through this object, so the
loop has no ``world > 1`` branches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Distributed"]


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes.

    Attributes:
        rank: global index of this process (0 writes the run folder).
        local_rank: index on this machine (picks the GPU).
        world: number of processes; 1 without torchrun.
    """

    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> Distributed:
        """From torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE); one process without it."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))

    @property
    def active(self) -> bool:
        """Several processes train together."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """This process writes the run folder and prints."""
        return self.rank == 0

    def start(self, device: torch.device) -> None:
        """Join the process group (nccl on CUDA, gloo elsewhere), once."""
        import torch.distributed as dist

        if self.active and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")

    def finish(self) -> None:
        """Leave the process group (the end of a torchrun command)."""
        import torch.distributed as dist

        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """What the loop calls: DistributedDataParallel(model) under torchrun, else the model."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This process's share of a global batch's indices."""
        return idx[self.rank :: self.world] if self.active else idx

    def owns_batch(self, k: int) -> bool:
        """Whether evaluation batch ``k`` is this process's (every ``world``-th)."""
        return k % self.world == self.rank

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """``t`` summed (``op="max"``: maximised) over all processes, in place; unchanged alone."""
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return t

    def any_of(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Each flag or-ed over all processes: stopping is agreed on (one small all-reduce)."""
        if not self.active:
            return list(flags)
        t = self.all_reduce(torch.tensor([float(f) for f in flags], device=device), "max")
        return [bool(v) for v in t.tolist()]

    def share_buffers(self, model: nn.Module) -> None:
        """Give every process rank 0's buffers (BatchNorm statistics moved apart in each process)."""
        if self.active:
            import torch.distributed as dist

            for buf in model.buffers():
                dist.broadcast(buf, 0)

    def drop_last_partial(self, remainder: int) -> bool:
        """Whether a last batch of ``remainder`` images is dropped: under DDP one smaller than the
        process count would leave a process without images."""
        return self.active and remainder < self.world
