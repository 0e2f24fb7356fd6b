"""Mini-batch training of the VAE, writing a run folder."""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from curvae import __version__
from curvae.runtime.atomic import atomic_dir, check_can_write, write_bytes, write_json
from curvae.runtime.errors import TrainingError
from curvae.training.config import RunConfig
from curvae.training.data import build_dataset
from curvae.training.model import VAE, vae_loss
from curvae.training.run import weights_bytes

EpochCallback = Callable[[dict[str, Any]], None]


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


def train(
    cfg: RunConfig,
    out: str | os.PathLike[str],
    *,
    force: bool = False,
    on_epoch: EpochCallback | None = None,
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

    Returns
    -------
    dict
        The run summary (also written as ``summary.json``).
    """
    t0 = time.perf_counter()
    tc = cfg.train
    if tc.lr_final > tc.lr:
        raise TrainingError(f"lr_final={tc.lr_final} is above lr={tc.lr}; the schedule decays: pass lr_final <= lr")
    device = resolve_device(tc.device)
    data = build_dataset(cfg.data, seed=tc.seed)
    n_points = data.train.shape[1]
    if n_points != cfg.model.n_points:
        cfg = RunConfig(data=cfg.data, model=type(cfg.model)(**{**cfg.model.to_dict(), "n_points": n_points}),
                        train=tc)
    check_can_write(out, force=force)  # fail before training, not after

    torch.manual_seed(tc.seed)
    gen = torch.Generator(device=device).manual_seed(tc.seed)
    x_train = torch.from_numpy(data.train).to(device)
    x_val = torch.from_numpy(data.val).to(device)
    model = VAE(cfg.model).to(device)
    model.set_normalisation(x_train)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, fused=True)  # one kernel per step: ~20% faster here
    n_train, steps_per_epoch = x_train.shape[0], math.ceil(x_train.shape[0] / tc.batch_size)
    total = tc.epochs * steps_per_epoch
    # The schedule is precomputed: per-step scheduler objects cost more than the tiny model's step.
    lrs = [tc.lr * lr_factor(s, total=total, warmup=tc.warmup_epochs * steps_per_epoch,
                             final_ratio=tc.lr_final / tc.lr) for s in range(total)]
    group = opt.param_groups[0]
    history: list[dict[str, Any]] = []
    step = 0
    for epoch in range(1, tc.epochs + 1):
        te = time.perf_counter()
        model.train()
        kl_w = tc.beta * min(1.0, epoch / tc.kl_warmup_epochs) if tc.kl_warmup_epochs else tc.beta
        xs = x_train[torch.randperm(n_train, generator=gen, device=device)]  # (N, P), one gather per epoch
        eps_all = torch.randn(n_train, cfg.model.latent_dim, generator=gen, device=device)  # (N, D)
        sums = torch.zeros(2, device=device)
        for i in range(0, n_train, tc.batch_size):
            xb, eps = xs[i:i + tc.batch_size], eps_all[i:i + tc.batch_size]
            group["lr"] = lrs[step]
            x_hat, _, mu, logvar = model(xb, eps)
            sse, kl = vae_loss(xb, x_hat, mu, logvar)
            loss = sse + kl_w * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            with torch.no_grad():
                sums[0] += sse * xb.shape[0]
                sums[1] += kl * xb.shape[0]
        recon, kl_mean = (sums / n_train).tolist()
        if not (math.isfinite(recon) and math.isfinite(kl_mean)):
            raise TrainingError(
                f"loss became non-finite at epoch {epoch} (recon={recon}, kl={kl_mean}); "
                f"lower --lr (now {tc.lr}) or check the data for extreme values; nothing was written"
            )
        model.eval()
        with torch.no_grad():
            mu_v, _ = model.posterior(x_val)
            val_recon = float((model.decode(mu_v) - x_val).pow(2).sum(1).mean())
        row = {"epoch": epoch, "recon": recon, "kl": kl_mean, "val_recon": val_recon,
               "val_rmse": math.sqrt(val_recon / n_points), "lr": group["lr"],
               "beta": kl_w, "seconds": time.perf_counter() - te}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)

    model.eval()
    with torch.no_grad():
        mu_t, _ = model.posterior(x_train)
    codes = mu_t.cpu().numpy()
    blob = weights_bytes(model)
    summary = {
        "run_id": hashlib.sha256(blob).hexdigest()[:16],
        "family": data.family,
        "grid": [float(v) for v in data.grid],
        "n_train": int(x_train.shape[0]),
        "n_val": int(x_val.shape[0]),
        "epochs": tc.epochs,
        "final": {k: history[-1][k] for k in ("recon", "kl", "val_recon", "val_rmse")},
        "latent_mean": [float(v) for v in codes.mean(0)],
        "latent_std": [float(v) for v in codes.std(0)],
        "seconds": time.perf_counter() - t0,
        "device": str(device),
        "versions": {"curvae": __version__, "torch": torch.__version__, "numpy": np.__version__},
    }
    with atomic_dir(out, force=force) as tmp:
        write_json(tmp / "config.json", cfg.to_dict())
        write_bytes(tmp / "weights.pt", blob)
        write_json(tmp / "history.json", history)
        write_json(tmp / "summary.json", summary)
    return summary
