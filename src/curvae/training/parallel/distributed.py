"""Data-parallel training over processes: torch.distributed, launched by ``torchrun`` (or ``curvae train --nproc``).

One process per core (gloo) or per GPU (NCCL). Each rank reads its own share of
the training curves (rows ``rank::world``) and takes its own optimiser steps, a
``1/world`` share of the step budget; every ``sync_every`` steps, and at the
end of each round, the ranks average their flat parameter buffer and the weight
average in one all-reduce (local SGD, as torch's ``PostLocalSGDOptimizer`` with
a ``PeriodicModelAverager``; Adam's moments stay local). Syncing every step
cannot pay here: an all-reduce of the default network's weights costs two to
seven batch-32 steps (``benchmarks/bench_train_scale.py``, ``docs/scale.md``). Rank 0 writes the
checkpoints and the run folder; the other ranks' optimiser and noise states
travel to it by all-gather (tensors only, never pickles).

A rank that dies ends every other rank's next collective with an error (or,
if it hangs, after ``timeout`` seconds), which curvae turns into one line
saying that the last checkpoint is good and how to resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch

from curvae.core.errors import TrainingError

#: Seconds a collective waits for a silent rank before the job fails (a dead rank usually fails it at once).
DEFAULT_TIMEOUT_S = 120.0


class RankLostError(TrainingError):
    """Another rank died or stopped answering: the job cannot go on."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: rank, world size and local rank (the GPU it takes)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def lead(self) -> bool:
        """Rank 0: the one that writes."""
        return self.rank == 0

    def _run(self, fn, *args):
        try:
            return fn(*args)
        except RuntimeError as exc:  # gloo/NCCL: connection closed, timeout, ...
            msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise RankLostError(f"rank {self.rank} of {self.world} lost the other ranks ({msg})") from None

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over the ranks, in place; returns it."""
        if self.active:
            import torch.distributed as dist

            self._run(dist.all_reduce, t)
        return t

    def average(self, t: torch.Tensor) -> torch.Tensor:
        """Average ``t`` over the ranks, in place; returns it."""
        if self.active:
            self.all_sum(t).div_(self.world)
        return t

    def gather(self, t: torch.Tensor) -> list[torch.Tensor]:
        """``t`` of every rank, in rank order (every rank gets the list)."""
        if not self.active:
            return [t]
        import torch.distributed as dist

        out = [torch.empty_like(t) for _ in range(self.world)]
        self._run(dist.all_gather, out, t.contiguous())
        return out

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            self._run(dist.barrier)


SINGLE = Dist()


def from_env(device: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Dist:
    """The job this process belongs to, from torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``);
    :data:`SINGLE` outside one. Joins the process group on first use: NCCL for CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return SINGLE
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(local)
        try:
            dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
        except (RuntimeError, ValueError) as exc:
            raise TrainingError(f"joining the training job failed ({str(exc).splitlines()[0][:200]}); launch with "
                                "torchrun (or `curvae train --nproc N`), which sets RANK, WORLD_SIZE and "
                                "MASTER_ADDR") from None
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local)


def leave() -> None:
    """Leave the process group, if this process joined one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
