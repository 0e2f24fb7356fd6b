"""Mini-batch training of the VAE, writing a run folder: the round loop, its checkpoints and its faults."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from typing import Any

import torch

from curvae.core.atomic import check_can_write
from curvae.core.errors import TrainingError
from curvae.training.checkpoints import Checkpointer, CheckpointPolicy, run_lock
from curvae.training.config import RunConfig
from curvae.training.parallel.distributed import RankLostError, from_env, leave
from curvae.training.trainer import MIN_TRAIN_CURVES, Trainer, lr_factor, resolve_device

EpochCallback = Callable[[dict[str, Any]], None]
__all__ = ["MIN_TRAIN_CURVES", "EpochCallback", "lr_factor", "resolve_device", "resume", "train"]


@contextlib.contextmanager
def _intra_op_threads(n: int):
    """torch's intra-op thread count set to ``n`` for the block (0 leaves it alone), restored after."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit(trainer: Trainer, out, *, force: bool, on_epoch: EpochCallback | None, stop_after: int | None,
         seconds_before: float = 0.0, policy: CheckpointPolicy = CheckpointPolicy(),
         published: bool = False) -> dict[str, Any]:
    """Run rounds up to ``stop_after`` (or the end), checkpointing as ``policy`` says, then write the run; faults
    keep the last good round. ``published``: ``out`` already holds this run's checkpoint (a resume in place)."""
    ckpt = Checkpointer(policy, published=published)
    dist = trainer.dist
    lock = run_lock(out) if dist.lead else contextlib.nullcontext()
    with _intra_op_threads(trainer.cfg.train.threads), lock:
        t0 = time.perf_counter() - seconds_before
        last = trainer.rounds if stop_after is None else min(stop_after, trainer.rounds)
        good = trainer.snapshot()

        def write(status: str, **kw) -> dict[str, Any]:
            return trainer.write(out, status, time.perf_counter() - t0, force=force, published=ckpt.published,
                                 extra={"checkpoints": ckpt.record()}, **kw)

        try:
            while trainer.epoch < last:
                row = trainer.run_epoch()
                if not (math.isfinite(row["recon"]) and math.isfinite(row["kl"])):
                    bad_epoch = row["epoch"]
                    trainer.restore(good)
                    status = f"failed: non-finite loss at epoch {bad_epoch}"
                    where = _keep_last_good(trainer, out, write, status, "retrain with a lower --lr")
                    far = trainer.data.far_rows()
                    cause = ("curves far outside the others, in robust units: "
                             + ", ".join(f"row {r} ({d:.0f}x the median distance)" for r, d in far)
                             + "; remove or fix them" if far else
                             f"lower --lr (now {trainer.cfg.train.lr}) or check the data for extreme values")
                    raise TrainingError(
                        f"loss became non-finite at epoch {bad_epoch} (recon={row['recon']}, kl={row['kl']}); "
                        f"{cause}; {where}")
                good = trainer.snapshot()
                due = torch.tensor([float(dist.lead and trainer.epoch < last and ckpt.due(trainer.epoch))],
                                   device=trainer.device)  # NCCL reduces device tensors only
                if dist.all_sum(due).item() > 0:  # rank 0's clock decides, for every rank
                    with ckpt.timed():
                        write(f"running: checkpoint after round {trainer.epoch} of {trainer.rounds} (if no "
                              "process is training it, it was stopped: resume it)", light=True)
                if on_epoch is not None and dist.lead:
                    on_epoch(row)
        except RankLostError as exc:
            where = (f"the last checkpoint in {str(out)!r} is good" if ckpt.published else "no checkpoint was written")
            raise TrainingError(f"{exc}; the job stops: {where}; resume with the same number of processes "
                                f"(`curvae train --resume {out} --nproc {dist.world}`)") from None
        except KeyboardInterrupt:
            if dist.active:  # the ranks may stand at different points: no collective now; the checkpoint holds
                if not ckpt.published:
                    raise TrainingError("training interrupted before its first checkpoint; nothing was written")
                raise TrainingError(f"training interrupted; the last checkpoint in {str(out)!r} is kept: continue "
                                    f"with `curvae train --resume {out} --nproc {dist.world}`") from None
            trainer.restore(good)
            where = _keep_last_good(trainer, out, write, f"interrupted after epoch {trainer.epoch}",
                                    f"continue with `curvae train --resume {out}`")
            raise TrainingError(f"training interrupted; {where}") from None
        status = "complete" if trainer.epoch == trainer.rounds else f"stopped after epoch {trainer.epoch}"
        summary = write(status)
        dist.barrier()  # no rank leaves (and tears its connections down) while rank 0 still writes
        return summary


def _keep_last_good(trainer: Trainer, out, write: Callable[..., Any], status: str, fix: str) -> str:
    """Write the run as it stood after its last good round; say where, and what to do next."""
    if trainer.epoch == 0:
        return "no epoch completed, so nothing was written"
    write(status)
    return f"the last good epoch ({trainer.epoch}) is kept in {str(out)!r}, nothing was exported: {fix}"


def train(
    cfg: RunConfig,
    out: str | os.PathLike[str],
    *,
    force: bool = False,
    on_epoch: EpochCallback | None = None,
    stop_after: int | None = None,
    checkpoints: CheckpointPolicy = CheckpointPolicy(),
) -> dict[str, Any]:
    """Train a VAE as ``cfg`` says and write the run folder ``out``.

    Parameters
    ----------
    cfg : RunConfig
    out : path-like
        Run folder; written atomically, refused if it exists unless ``force``.
    force : bool
        Replace an existing ``out``.
    on_epoch : callable, optional
        Called after each epoch with that epoch's history row.
    stop_after : int, optional
        Stop after this epoch (the schedule still plans ``cfg.train.epochs``);
        :func:`resume` continues exactly where it stopped.
    checkpoints : CheckpointPolicy
        When the resumable state is written while training runs (:mod:`curvae.training.checkpoints`): the
        folder is published after the first round, so a killed process leaves a run that resumes.

    Returns
    -------
    dict
        The run summary (also written as ``summary.json``). A non-finite
        loss or Ctrl-C raises :class:`TrainingError` after writing the last
        good epoch, resumable.
    """
    check_can_write(out, force=force)  # fail before training, not after
    dist = from_env(cfg.train.device)
    try:
        return _fit(Trainer(cfg, dist), out, force=force, on_epoch=on_epoch, stop_after=stop_after,
                    policy=checkpoints)
    finally:
        leave()


def resume(
    run: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    on_epoch: EpochCallback | None = None,
    stop_after: int | None = None,
    checkpoints: CheckpointPolicy = CheckpointPolicy(),
) -> dict[str, Any]:
    """Continue a stopped, interrupted, failed or killed run from its last checkpoint.

    Model, optimiser, schedule position and noise generator are restored, so
    on CPU ``k`` epochs plus a resume equal the same run done straight.
    ``out`` defaults to ``run`` itself (replaced atomically when done).
    """
    from curvae.training.run import load_checkpoint

    ckpt = load_checkpoint(run)
    dist = from_env(ckpt.config.train.device)
    try:
        return _resume(run, ckpt, dist, out=out, on_epoch=on_epoch, stop_after=stop_after, checkpoints=checkpoints)
    finally:
        leave()


def _resume(run, ckpt, dist, *, out, on_epoch, stop_after, checkpoints) -> dict[str, Any]:
    ranks = len(ckpt.state.get("ranks", [None]))
    if ranks != dist.world:
        raise TrainingError(f"run {str(run)!r} was trained by {ranks} process{'es' if ranks > 1 else ''} and this "
                            f"job has {dist.world}; resume it with --nproc {ranks} (or torchrun --nproc-per-node "
                            f"{ranks})")
    trainer = Trainer(ckpt.config, dist)
    if trainer.data.sha256 != ckpt.summary.get("data_sha256"):
        raise TrainingError(f"the training data differ from those of run {str(run)!r} (sha256 "
                            f"{trainer.data.sha256[:12]}… vs {str(ckpt.summary.get('data_sha256'))[:12]}…); "
                            "resume needs the same data file")
    trainer.restore(ckpt.state, ckpt.history)
    trainer.resumed_from.append(trainer.epoch)
    if trainer.epoch >= trainer.rounds:
        raise TrainingError(f"run {str(run)!r} is already complete ({trainer.epoch} of "
                            f"{trainer.rounds} epochs); nothing to resume")
    dest = run if out is None else out
    if out is not None:
        check_can_write(out, force=False)
    return _fit(trainer, dest, force=True, on_epoch=on_epoch, stop_after=stop_after,
                seconds_before=float(ckpt.summary.get("seconds", 0.0)), policy=checkpoints, published=out is None)
