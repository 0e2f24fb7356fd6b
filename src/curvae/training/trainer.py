"""The state of a training run between rounds: data, model, optimiser, noise generator, schedule, and writing it."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from typing import Any

import numpy as np
import torch

from curvae import __version__
from curvae.core.errors import TrainingError
from curvae.core.pca import PCA
from curvae.training.adam import FlatAdam
from curvae.training.config import ModelConfig, RunConfig
from curvae.training.data import build_dataset
from curvae.training.model import VAE
from curvae.training.parallel.distributed import SINGLE, Dist
from curvae.training.run import weights_bytes, write_run
from curvae.training.step import LossGradient, flatten_parameters

#: Rank r of a multi-process run seeds its batches and noise with seed + r·RANK_SEED_STRIDE.
RANK_SEED_STRIDE = 1_000_003
#: Fewest training curves (after the held-out share) a run accepts.
MIN_TRAIN_CURVES = 8


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device='cuda' was requested but torch sees no CUDA device; use --device cpu or auto")
    return torch.device(device)


def lr_factor(step: int, *, total: int, warmup: int, final_ratio: float) -> float:
    """Linear warm-up to 1, then exponential decay to ``final_ratio`` at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup - 1)
    return final_ratio ** (min(step - warmup, span) / span)


class Trainer:
    """Everything a run needs between epochs: data, model, optimiser, noise generator, schedule."""

    def __init__(self, cfg: RunConfig, dist: Dist = SINGLE) -> None:
        tc = cfg.train
        self.dist = dist
        if tc.lr_final > tc.lr:
            raise TrainingError(f"lr_final={tc.lr_final} is above lr={tc.lr}; the schedule decays: "
                                "pass lr_final <= lr")
        self.device = resolve_device(tc.device)
        if dist.active and self.device.type == "cuda":
            self.device = torch.device("cuda", dist.local_rank)
        self.data = build_dataset(cfg.data, seed=tc.seed)
        need = max(MIN_TRAIN_CURVES, cfg.model.latent_dim + 2)
        if len(self.data.train) < need:
            total = len(self.data.train) + len(self.data.val)
            raise TrainingError(
                f"{total} curves are too few to train on: after the {cfg.data.val_fraction:g} held-out share, "
                f"{len(self.data.train)} remain, and the scaling, the PCA start and the fit need at least {need}; "
                f"give at least {int(need / (1 - cfg.data.val_fraction)) + 2} curves")
        n_points = self.data.train.shape[1]
        if n_points != cfg.model.n_points:
            cfg = RunConfig(data=cfg.data, model=ModelConfig(**{**cfg.model.to_dict(), "n_points": n_points}),
                            train=tc)
        self.cfg = cfg
        torch.manual_seed(tc.seed)
        # Each rank draws its own batches and noise: rank 0 from the seed itself, so one process is the plain run.
        self.gen = torch.Generator(device=self.device).manual_seed(tc.seed + RANK_SEED_STRIDE * dist.rank)
        self.x_train = torch.from_numpy(self.data.train).to(self.device)
        self.x_val = torch.from_numpy(self.data.val).to(self.device)
        self.model = VAE(cfg.model).to(self.device)
        self.model.set_normalisation(self.x_train)
        self.x_scaled = (self.x_train - self.model.x_mean) / self.model.x_std  # (N, P), the encoder's input
        if cfg.model.linear_path:
            self.model.init_from_pca(self.x_scaled)
        self.flat = flatten_parameters(self.model)  # one buffer: one fused Adam kernel per step
        self.gradient = LossGradient(self.model)
        self.gradient.calibrated = tc.loss == "calibrated"
        self.opt = FlatAdam(self.flat.data, self.flat.grad, betas=(0.9, tc.adam_beta2))
        # Running average of the weights (what is shipped), kept un-debiased as Adam keeps its moments.
        self.average = torch.zeros_like(self.flat.data) if tc.ema else torch.zeros(0, device=self.device)
        n = self.data.n_train  # all of them, also when streamed (x_train is then a bounded sample)
        self.rounds, self.steps_per_epoch = tc.plan(n)  # an epoch, or a share of one within a step budget
        if dist.active:  # a 1/world share of the steps on each rank, over its own rows (rank::world)
            self.x_scaled = self.x_scaled[dist.rank::dist.world]
            self.steps_per_epoch = -(-self.steps_per_epoch // dist.world)
            n = n // dist.world  # every rank the same count (the smallest share), so their steps stay in step
            if self.data.stream is not None:
                n = min(self.data.stream.rank_rows(r, dist.world) for r in range(dist.world))
        self.round_rows = min(n, self.steps_per_epoch * tc.batch_size)  # curves seen per round, none twice
        sizes = [min(tc.batch_size, self.round_rows - i) for i in range(0, self.round_rows, tc.batch_size)]
        self.batch_sizes = torch.tensor(sizes, dtype=torch.float32, device=self.device)  # (steps_per_epoch,)
        self.steps_per_epoch = len(sizes)
        total = self.rounds * self.steps_per_epoch
        # Precomputed: per-step scheduler objects cost more than the tiny model's step.
        self.lrs = [tc.lr * lr_factor(s, total=total, warmup=tc.warmup_epochs * self.steps_per_epoch,
                                      final_ratio=tc.lr_final / tc.lr) for s in range(total)]
        self.history: list[dict[str, Any]] = []
        self.resumed_from: list[int] = []  # the round each resume of this run started after

    @property
    def epoch(self) -> int:
        return len(self.history)

    def snapshot(self) -> dict[str, Any]:
        """Resume state after the last completed epoch (tensors and plain values only)."""
        return {"model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
                "optimizer": self.opt.state_dict(), "generator": self.gen.get_state().cpu().clone(),
                "average": self.average.detach().cpu().clone(), "epoch": self.epoch}

    def sync_weights(self) -> None:
        """Average the flat parameters and the weight average over the ranks, in one all-reduce."""
        k = self.flat.data.numel()
        both = self.dist.average(torch.cat([self.flat.data, self.average]))
        self.flat.data.copy_(both[:k])
        self.average.copy_(both[k:])

    def rank_states(self) -> list[dict[str, Any]]:
        """Every rank's own optimiser and noise state, gathered (all ranks call this; tensors only)."""
        mine = self.opt.state_dict()
        parts = {key: self.dist.gather(value.to(self.device)) for key, value in mine.items()}
        gens = self.dist.gather(self.gen.get_state().to(self.device))
        return [{"optimizer": {key: parts[key][r].cpu() for key in mine}, "generator": gens[r].cpu()}
                for r in range(self.dist.world)]

    def checkpoint_state(self, seconds: float) -> dict[str, Any]:
        """What ``checkpoint.pt`` holds: the snapshot, with the history, the time spent and the resumes, so that
        the one file restores the run on its own (it is replaced atomically, the other files one by one)."""
        state = {**self.snapshot(), "history": [dict(row) for row in self.history], "seconds": float(seconds),
                 "resumed_from": list(self.resumed_from)}
        if self.dist.active:
            state["ranks"] = self.rank_states()
        return state

    def restore(self, snap: dict[str, Any], history: list[dict[str, Any]] | None = None) -> None:
        """Return to ``snap``; the history is cut to its epoch (``history`` defaults to the trainer's own)."""
        self.model.load_state_dict(snap["model"])  # copies into the views of the flat parameter
        own = snap["ranks"][self.dist.rank] if "ranks" in snap else snap
        self.opt.load_state_dict(own["optimizer"])
        self.gen.set_state(own["generator"])
        self.average.copy_(snap["average"])
        self.history = list((self.history if history is None else history)[:snap["epoch"]])
        self.resumed_from = list(snap.get("resumed_from", self.resumed_from))

    @contextlib.contextmanager
    def shipped_weights(self, steps: int | None = None):
        """Within the block the model holds the weights that are written: the debiased average, if kept.

        ``steps`` is how many optimiser steps the average holds (default: those of the completed epochs).
        """
        decay = self.cfg.train.ema
        steps = self.epoch * self.steps_per_epoch if steps is None else steps
        if not decay or steps == 0:
            yield
            return
        raw = self.flat.data.clone()
        self.flat.data.copy_(self.average / (1.0 - decay ** steps))
        try:
            yield
        finally:
            self.flat.data.copy_(raw)

    def run_epoch(self) -> dict[str, Any]:
        """One pass over the training curves; returns its history row (losses may be non-finite)."""
        tc, gen, dev, latent = self.cfg.train, self.gen, self.device, self.cfg.model.latent_dim
        te = time.perf_counter()
        epoch = self.epoch + 1
        kl_w = tc.beta * min(1.0, epoch / tc.kl_warmup_epochs) if tc.kl_warmup_epochs else tc.beta
        n, bs = self.round_rows, tc.batch_size
        sync, n_steps = (tc.sync_every if self.dist.active else 0), len(self.batch_sizes)
        if self.data.stream is not None:  # this round's rows, read by blocks (depends only on the round number)
            rows = torch.from_numpy(self.data.stream.round_rows(epoch, n, self.dist.rank, self.dist.world))
            xs = (rows.to(dev) - self.model.x_mean) / self.model.x_std
        else:
            order = torch.randperm(self.x_scaled.shape[0], generator=gen, device=dev)[:n]
            xs = self.x_scaled[order]  # (n, P), one gather per round
        eps_all = torch.randn(n, latent, generator=gen, device=dev)  # (n, D)
        posterior = torch.empty(n, 2 * latent, device=dev)  # (N, 2D): [μ, log σ²] as each step saw them
        sse = torch.empty(self.steps_per_epoch, device=dev)  # (steps,): (2/B)·SSE of each batch
        step = (epoch - 1) * self.steps_per_epoch
        flat, average, keep = self.flat.data, self.average, 1.0 - tc.ema
        with torch.no_grad():
            for k, i in enumerate(range(0, n, bs)):
                self.gradient(xs[i:i + bs], eps_all[i:i + bs], kl_w, posterior_out=posterior[i:i + bs],
                              sse_out=sse[k])
                self.opt.step(self.lrs[step])
                if tc.ema:
                    average.lerp_(flat, keep)
                step += 1
                if sync and (k + 1) % sync == 0 and k + 1 < n_steps:
                    self.sync_weights()
            mu, logvar = posterior.chunk(2, dim=1)
            stats = torch.stack([(sse * self.batch_sizes).sum() / (2 * n),
                                 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum() / n])
            if self.dist.active:  # the round ends in step: weights averaged, losses averaged over the ranks
                self.sync_weights()
                self.dist.average(stats)
            recon, kl_mean = (float(v) for v in stats)
            with self.shipped_weights(steps=step):
                mu_v, _ = self.model.posterior(self.x_val)
                val_recon = float((self.model.decode(mu_v) - self.x_val).pow(2).sum(1).mean())
        row = {"epoch": epoch, "rounds": self.rounds, "budget": self.cfg.train.budget_text(), "recon": recon, "kl": kl_mean, "val_recon": val_recon,
               "val_rmse": math.sqrt(val_recon / self.x_val.shape[1]), "lr": self.lrs[step - 1], "beta": kl_w,
               "seconds": time.perf_counter() - te}
        self.history.append(row)
        return row

    def summary(self, status: str, seconds: float, *, light: bool = False) -> dict[str, Any]:
        """The run summary; ``light`` (a checkpoint's) leaves out what costs a pass over the data."""
        last = self.history[-1] if self.history else {}
        if light:
            codes = None  # a checkpoint's summary: no pass over the training curves
            extra: dict[str, Any] = {}
        else:
            with torch.no_grad():
                codes = self.model.posterior(self.x_train)[0].cpu().numpy()
            far = self.data.far_rows()
            extra = {"pca": self.pca_baseline(last.get("val_rmse")),
                     **({"far_rows": [[r, round(d, 1)] for r, d in far]} if far else {})}
        return {
            **extra,
            **({"resumed_from": list(self.resumed_from)} if self.resumed_from else {}),
            "status": status,
            "epochs_done": self.epoch,
            "family": self.data.family,
            "data_sha256": self.data.sha256,
            "grid": [float(v) for v in self.data.grid],
            "n_train": int(self.data.n_train),
            "n_val": int(self.x_val.shape[0]),
            "epochs": self.rounds,
            "budget": self.cfg.train.budget_text(),
            "steps": self.rounds * self.steps_per_epoch * self.dist.world,
            "final": {k: last.get(k) for k in ("recon", "kl", "val_recon", "val_rmse")},
            "latent_mean": None if codes is None else [float(v) for v in codes.mean(0)],
            "latent_std": None if codes is None else [float(v) for v in codes.std(0)],
            "seconds": seconds,
            "device": str(self.device),
            **({"world_size": self.dist.world, "sync_every": self.cfg.train.sync_every,
                "steps_per_rank": self.rounds * self.steps_per_epoch} if self.dist.active else {}),
            "versions": {"curvae": __version__, "torch": torch.__version__, "numpy": np.__version__},
        }

    @contextlib.contextmanager
    def standard_latent(self, complete: bool):
        """Within the block the shipped model's latent is standardised on the training codes (mean 0, std 1 per
        dimension; :meth:`VAE.standardise_latent`), so that N(0, I) samples cover the data as the codes do.

        The calibrated loss weighs reconstruction far above the KL term, and left to itself the codes' spread
        drifts from the prior's (std 1.2-1.4 on Beta). The seed recipe is left as the worked example trained it.
        """
        if not (complete and self.cfg.model.linear_path):
            yield
            return
        raw = self.flat.data.clone()
        mu, _ = self.model.posterior(self.x_train)
        self.model.standardise_latent(mu.mean(0), mu.std(0))
        try:
            yield
        finally:
            self.flat.data.copy_(raw)

    @contextlib.contextmanager
    def linear_if_better(self, complete: bool):
        """Within the block the model is its own PCA start (MLPs off) when that fits the held-out curves at least
        as well as the trained model; yields "pca", "model", or "" when there was no choice to make.

        The trained model's family contains its PCA start, so choosing the better of the two on the held-out
        split (model selection, not the test curves) keeps it never worse than PCA of its size: on curves that
        are exactly linear in ``latent_dim`` functions, the shipped model is exactly that basis.
        """
        if not (complete and self.cfg.model.linear_path):
            yield ""
            return
        def held_out_median() -> float:
            mu, _ = self.model.posterior(self.x_val)
            return float(torch.linalg.norm(self.model.decode(mu) - self.x_val, dim=1).median())

        trained = held_out_median()
        raw = self.flat.data.clone()
        self.model.init_from_pca(self.x_scaled, lr_logvar=-12.0)
        if held_out_median() <= trained:
            try:
                yield "pca"
            finally:
                self.flat.data.copy_(raw)
            return
        self.flat.data.copy_(raw)
        yield "model"

    def pca_baseline(self, val_rmse: float | None) -> dict[str, Any]:
        """PCA of the training curves at the same latent size, scored on the held-out curves like the model
        (RMSE per point of the best linear fit), and how many components match the model."""
        basis = PCA.fit(self.data.train, seed=self.cfg.train.seed)
        d, val = self.cfg.model.latent_dim, self.data.val

        def rmse(residuals: np.ndarray) -> float:  # RMS error per point over the held-out curves
            return float(np.sqrt(np.mean(residuals ** 2) / val.shape[1]))

        match = None
        if val_rmse is not None and math.isfinite(val_rmse):
            match = basis.components_to_match(val, val_rmse, measure=rmse)
        return {"latent_dim": d, "val_rmse": rmse(basis.residuals(val, d)), "components_to_match": match}

    def write(self, out: str | os.PathLike[str], status: str, seconds: float, *, force: bool,
              published: bool = False, light: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the run folder: config, weights, resume checkpoint, history, summary (rank 0 writes; with several
        ranks every rank must call this, and only rank 0 gets the summary back).

        A folder this run has not written yet is built beside ``out`` and renamed into place; one it has
        (``published``, after a checkpoint) is updated file by file, each atomically, ``checkpoint.pt`` first and
        ``summary.json`` last (:func:`curvae.training.run.write_run`, ``in_place``). ``light`` writes a checkpoint's summary.
        """
        state = self.checkpoint_state(seconds)  # every rank takes part (its optimiser and noise state travel)
        if not self.dist.lead:
            return {}
        complete = status == "complete"
        with torch.no_grad(), self.shipped_weights(), self.linear_if_better(complete) as chosen, \
                self.standard_latent(complete):
            blob = weights_bytes(self.model)
            summary = {"run_id": hashlib.sha256(blob).hexdigest()[:16], **self.summary(status, seconds, light=light),
                       **({"selected": chosen} if chosen else {}), **(extra or {})}
        files = dict(config=self.cfg, weights=blob, checkpoint=state, history=self.history,
                     summary=summary)
        write_run(out, **files, force=force, in_place=published)
        return summary


