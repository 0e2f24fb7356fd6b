"""Figures of a fit's uncertainty: bands, latent ellipses, calibration and the out-of-family flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from curvae.report.figures import _plt, _save


def fit_bands(grid: NDArray, targets: NDArray, x_hat: NDArray, lo: NDArray, hi: NDArray, path: Path) -> None:
    """A few targets with their fits and the ±2σ band of the decoded curve."""
    plt = _plt()
    k = len(targets)
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 3.2), squeeze=False)
    for ax, t, x, a, b in zip(axes[0], targets, x_hat, lo, hi):
        ax.fill_between(grid, np.clip(a, x.min() - 10, None), np.clip(b, None, x.max() + 10), color="tab:red",
                        alpha=0.3, label="±2σ band")
        ax.plot(grid, t, "k.", ms=2.5, label="target")
        ax.plot(grid, x, color="tab:red", lw=1, label="fit")
        ax.set(xlabel="x")
    axes[0][0].set(ylabel="value")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Fits with the ±2σ band of the true curve (z and the model's own error)")
    _save(fig, path)


def latent_ellipses(z: NDArray, cov: NDArray, path: Path) -> None:
    """Fitted 2-D codes with their 2σ (95%) error ellipses."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.scatter(z[:, 0], z[:, 1], s=6, color="tab:blue")
    t = np.linspace(0, 2 * np.pi, 60)
    circle = np.stack([np.cos(t), np.sin(t)])
    radius = np.sqrt(5.991)  # χ²(2) 95% quantile
    for zi, ci in zip(z, cov):
        if not np.isfinite(ci).all():
            continue
        vals, vecs = np.linalg.eigh(ci)
        pts = zi[:, None] + radius * vecs @ (np.sqrt(np.clip(vals, 0, None))[:, None] * circle)
        ax.plot(pts[0], pts[1], color="tab:red", lw=0.6, alpha=0.7)
    ax.set(xlabel="z₀", ylabel="z₁", title="Fitted codes with 95% error ellipses")
    ax.set_aspect("equal", adjustable="datalim")
    _save(fig, path)


def calibration(cal: dict[str, Any], path: Path) -> None:
    """Empirical against nominal coverage of the latent ellipses and of the ±2σ band."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, label="ideal")
    for label, marker in (("given", "o"), ("estimated", "s")):
        ax.plot(cal["levels"], cal[f"ellipse_{label}"], marker=marker, label=f"latent ellipses, σ {label}")
        ax.plot([cal["band_nominal"]], [cal[f"band_{label}"]], marker="*", ms=12, ls="none",
                label=f"±2σ band, σ {label}")
    if "band_family_given" in cal:
        ax.plot([cal["band_nominal"]], [cal["band_family_given"]], marker="P", ms=11, ls="none",
                label="±2σ band, real family curves (σ given)")
        ax.plot([cal["band_nominal"]], [cal["band_z_family_given"]], marker="x", ms=9, ls="none",
                label="z-only band, real family curves")
    ax.set(xlabel="nominal coverage", ylabel="empirical coverage", xlim=(0.4, 1.01), ylim=(0.4, 1.01),
           title=f"Calibration on {cal['n']} known codes and family curves (σ = {cal['sigma']:.3g})")
    ax.legend(fontsize=7)
    _save(fig, path)


def out_of_family(held_out: NDArray, threshold: float, quantile: float, groups: dict[str, NDArray],
                  path: Path) -> None:
    """RMS errors of held-out curves, of the targets and of foreign curves, against the flag's threshold."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    pos = np.concatenate([held_out, *groups.values()])
    bins = np.logspace(np.log10(max(pos[pos > 0].min(), 1e-6)), np.log10(pos.max() * 1.1), 50)
    ax.hist(held_out, bins=bins, alpha=0.6, label="held-out curves (export)")
    for name, res in groups.items():
        ax.hist(res, bins=bins, alpha=0.5, label=f"{name}: {np.mean(res > threshold):.0%} flagged")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"{quantile:g} quantile: {threshold:.3g}")
    ax.set(xscale="log", yscale="log", xlabel="fit RMS error per point", ylabel="curves", title="Out-of-family flag")
    ax.legend(fontsize=7)
    _save(fig, path)


def parameters(names: tuple[str, ...], truth: NDArray, theta: NDArray, lo: NDArray, hi: NDArray, sigma: float,
               path: Path) -> None:
    """True against recovered parameters, one panel per parameter, with the 95% intervals as error bars."""
    plt = _plt()
    k = len(names)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k, 3.6), squeeze=False)
    for j, ax in enumerate(axes[0]):
        t, e = truth[:, j], theta[:, j]
        inside = (lo[:, j] <= t) & (t <= hi[:, j])
        err = np.vstack([np.maximum(e - lo[:, j], 0), np.maximum(hi[:, j] - e, 0)])
        ax.errorbar(t, e, yerr=err, fmt="none", ecolor="0.7", lw=0.6)
        ax.scatter(t[inside], e[inside], s=6, c="#1f77b4", label="interval covers the truth")
        ax.scatter(t[~inside], e[~inside], s=8, c="#d62728", label="it does not")
        span = [float(np.nanmin(t)), float(np.nanmax(t))]
        ax.plot(span, span, "k--", lw=0.8)
        rel = np.abs(e - t) / np.maximum(np.abs(t), 1e-12)
        ax.set(xlabel=f"true {names[j]}", ylabel=f"recovered {names[j]}",
               title=f"{names[j]}: median error {np.nanmedian(rel):.2%}, 95% coverage {inside.mean():.2f}")
        ax.title.set_fontsize(8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Parameters from the fitted code (noise σ = {sigma:.3g}, σ given)", fontsize=9)
    _save(fig, path)
