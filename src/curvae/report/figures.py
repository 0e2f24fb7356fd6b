"""One function per figure; each takes computed arrays and writes one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

DPI = 110


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # non-interactive: reports are written, never shown
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)


def training_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Reconstruction (train, held-out) and KL per epoch."""
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.semilogy(ep, [h["recon"] for h in history], label="train (with posterior noise)")
    a.semilogy(ep, [h["val_recon"] for h in history], label="held-out (at μ)")
    a.set(xlabel="epoch", ylabel="sum of squared errors per curve", title="Reconstruction")
    a.legend()
    b.plot(ep, [h["kl"] for h in history], color="tab:green")
    b.set(xlabel="epoch", ylabel="KL to N(0, I), nats", title="KL divergence")
    _save(fig, path)


def family_curves(grid: NDArray, curves: NDArray, labels: list[str], path: Path) -> None:
    """A few curves of the family, as densities (exp of the log-PDF)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for c, lab in zip(curves, labels):
        ax.plot(grid, np.exp(c), label=lab)
    ax.set(xlabel="x", ylabel="density", title="Curves of the family")
    ax.legend(fontsize=8)
    _save(fig, path)


def latent_histograms(codes: NDArray, path: Path) -> None:
    """Histogram of each latent dimension with the N(0, 1) density over it."""
    plt = _plt()
    d = codes.shape[1]
    fig, axes = plt.subplots(1, d, figsize=(3.6 * d, 3.2), squeeze=False)
    xs = np.linspace(-4, 4, 200)
    for k, ax in enumerate(axes[0]):
        ax.hist(codes[:, k], bins=50, range=(-4, 4), density=True, alpha=0.6)
        ax.plot(xs, np.exp(-xs ** 2 / 2) / np.sqrt(2 * np.pi), "k-", lw=1.5, label="N(0, 1)")
        ax.set(title=f"z[{k}]: mean {codes[:, k].mean():+.3f}, std {codes[:, k].std():.3f}", xlabel="code")
        ax.legend(fontsize=8)
    _save(fig, path)


def latent_scatter(codes: NDArray, theta: NDArray, names: list[str], path: Path) -> None:
    """2-D codes coloured by each family parameter."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(4.4 * len(names), 3.8), squeeze=False)
    for k, (ax, name) in enumerate(zip(axes[0], names)):
        sc = ax.scatter(codes[:, 0], codes[:, 1], c=theta[:, k], s=4, cmap="viridis")
        fig.colorbar(sc, ax=ax, label=name)
        ax.set(xlabel="z[0]", ylabel="z[1]", title=f"codes coloured by {name}")
    _save(fig, path)


def decoded_lattice(grid: NDArray, z: NDArray, curves: NDArray, side: int, as_density: bool, path: Path) -> None:
    """Curves decoded across a side × side lattice of 2-D codes."""
    plt = _plt()
    fig, axes = plt.subplots(side, side, figsize=(1.5 * side, 1.3 * side), sharex=True)
    for i, ax in enumerate(axes.flat):
        ax.plot(grid, np.exp(curves[i]) if as_density else curves[i], lw=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"({z[i, 0]:+.1f}, {z[i, 1]:+.1f})", fontsize=6)
    fig.suptitle("Decoded curves across the latent plane")
    _save(fig, path)


def reconstructions(grid: NDArray, targets: NDArray, fitted: NDArray, as_density: bool, path: Path,
                    title: str, residuals: NDArray | None = None) -> None:
    """Targets against their fitted decodings (top) and the error curve (bottom), per column.

    NaN in ``targets`` (unobserved points) leaves gaps; ``residuals`` (n,) titles the panels.
    """
    plt = _plt()
    n = len(targets)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 5), squeeze=False, sharex=True)
    for k in range(n):
        f = np.exp if as_density else (lambda v: v)
        axes[0, k].plot(grid, f(targets[k]), "k-", lw=1.5, label="target")
        axes[0, k].plot(grid, f(fitted[k]), "r--", lw=1.2, label="fit")
        res = np.linalg.norm(targets[k] - fitted[k]) if residuals is None else residuals[k]
        axes[0, k].set_title(f"residual {res:.4f}", fontsize=9)
        axes[1, k].plot(grid, fitted[k] - targets[k], color="tab:purple")
        axes[1, k].axhline(0, color="gray", lw=0.5)
        axes[1, k].set_xlabel("x")
    axes[0, 0].set_ylabel("density" if as_density else "value")
    axes[1, 0].set_ylabel("fit − target (log-PDF)" if as_density else "fit − target")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    _save(fig, path)


def measured_fits(grid: NDArray, fitted: NDArray, points: list[tuple[NDArray, NDArray]],
                  missing: list[NDArray], path: Path) -> None:
    """Targets with gaps or their own grid: observed points, the decoded fit, and where points were missing."""
    plt = _plt()
    n = len(fitted)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.4), squeeze=False)
    for ax, f, (x, y), gone in zip(axes[0], fitted, points, missing):
        ax.plot(grid, f, color="tab:red", lw=1.2, label="decoded fit")
        ax.plot(x, y, "s", color="k", ms=3, label="observed")
        if len(gone):
            ax.plot(grid[gone], f[gone], "x", color="tab:orange", ms=5, label="not observed")
        ax.set_xlabel("x")
    axes[0, 0].set_ylabel("value")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Targets with missing points or their own grid, over the decoded curve")
    _save(fig, path)


def residual_histogram(residual: NDArray, path: Path) -> None:
    """Distribution of fit residuals with the median and p90 marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.hist(residual, bins=60, color="tab:blue", alpha=0.7)
    for q, style in ((50, "k-"), (90, "k--")):
        v = np.percentile(residual, q)
        ax.axvline(v, color="k", ls=style[1:], label=f"p{q} = {v:.4f}")
    ax.set(xlabel="residual (L2 norm over grid points)", ylabel="targets", title="Fit residuals")
    ax.legend()
    _save(fig, path)


def baseline(pca: dict[int, float], model_residual: float, latent_dim: int, path: Path) -> None:
    """PCA's held-out fit residual against its number of components, with the model's point at its latent size."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ks = sorted(pca)
    ax.plot(ks, [max(pca[k], 1e-12) for k in ks], "o-", color="0.4", label="PCA (projection, fitted on the training curves)")
    ax.plot([latent_dim], [max(model_residual, 1e-12)], "*", color="tab:red", markersize=14,
            label=f"curvae, latent size {latent_dim}")
    ax.set(xlabel="components (latent size)", ylabel="median fit residual on held-out curves", yscale="log",
           title="The model against a linear basis")
    ax.legend(fontsize=8)
    _save(fig, path)


def emulated(grid: NDArray, truth: NDArray, emulated_curves: NDArray, labels: list[str], as_density: bool, path: Path,
             title: str) -> None:
    """True curves (black) against the emulator's curves at the same θ (dashed), one panel each."""
    plt = _plt()
    n = len(truth)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.6), squeeze=False)
    for ax, y, e, label in zip(axes[0], truth, emulated_curves, labels):
        show = (lambda v: np.exp(np.minimum(v, 700.0))) if as_density else (lambda v: v)  # a poor model's curve
        ax.plot(grid, show(y), "k-", lw=1.4, label="true curve")
        ax.plot(grid, show(e), "--", color="#d62728", lw=1.2, label="emulated")
        ax.set_title(label, fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6)
    fig.suptitle(title, fontsize=8)
    _save(fig, path)
