"""Assemble a report folder: figures, the numbers behind them, and an index.html."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curvae.core.atomic import atomic_dir, write_bytes, write_json
from curvae.core.errors import CurvaeError, InputError
from curvae.core.seeding import rng
from curvae.families import FAMILIES, Family
from curvae.io.targets import read_fit_targets
from curvae.report.calibration import coverage, noise_level
from curvae.runtime.fitting.engine import FitResult
from curvae.runtime.fitting.observations import Observations, on_model_grid
from curvae.runtime.model import CurveModel

#: Every file of a report on a 2-D model of a built-in family whose bundle records held-out residuals and has a
#: parameter head, fitting fresh family curves (targets from a file have no known parameters: no params.png).
REPORT_FILES = frozenset({"index.html", "report.json", "training.png", "family.png", "latent_hist.png",
                          "latent_scatter.png", "decoded_grid.png", "reconstructions.png", "fit_residuals.png",
                          "worst_fits.png", "fit_bands.png", "latent_ellipses.png", "calibration.png", "ood.png",
                          "baseline.png", "params.png", "emulator.png"})


def _matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CurvaeError("matplotlib is not installed; reports need the plot extra: "
                          "pip install 'curvae[plot]'") from None


def build_report(
    bundle: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    targets: str | os.PathLike[str] | None = None,
    label: str | None = None,
    n_codes: int = 2000,
    n_targets: int = 500,
    seed: int = 0,
    force: bool = False,
    truth: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write the report of a bundle into the folder ``out`` and return its numbers.

    Parameters
    ----------
    bundle : path-like
        A bundle folder (for a run or a demo folder, see
        :func:`curvae.apps.report_source.report_source`).
    out : path-like
        Report folder (``index.html``, PNG figures, ``report.json``).
    targets : path-like, optional
        Curves to fit; by default fresh curves of the model's family (for a
        custom family: curves sampled from the model).
    label : str, optional
        How the page names the model; the bundle path by default.
    n_codes, n_targets : int
        Fresh curves encoded for the latent figures, and targets fitted.
    seed : int
        Seeds the fresh curves.
    truth : ndarray of shape (n_targets, k), optional
        The known parameters of ``targets`` (in the order of the bundle's parameter names): with a parameter
        head, the report then shows how well they are recovered (``params.png``), as for fresh family curves.

    Returns
    -------
    dict
        The numbers shown in the report (also ``report.json``).
    """
    _matplotlib()
    model = CurveModel.load(bundle)
    data = _data(model, targets, n_codes=n_codes, n_targets=n_targets, seed=seed, truth=truth)
    numbers = _numbers(model, data, label=label or str(bundle), targets_from_file=targets is not None)
    with atomic_dir(out, force=force) as tmp:
        figs = _figures(model, data, tmp)
        numbers["figures"] = [f for f, _ in figs]
        write_json(tmp / "report.json", numbers)
        write_bytes(tmp / "index.html", _html(numbers, figs).encode())
    return numbers


@dataclass(frozen=True)
class _Data:
    """What a report shows: fresh curves and their codes, the targets and their fits."""

    family: Family | None
    curves: np.ndarray  # (n_codes, n_points)
    theta: np.ndarray | None  # (n_codes, n_params) for a built-in family
    codes: np.ndarray  # (n_codes, latent_dim)
    targets: np.ndarray  # (n_targets, n_points)
    fit: FitResult
    calibration: dict[str, Any]  # coverage of known codes, see curvae.report.calibration
    foreign: dict[str, FitResult]  # fits of curves that are not the family's, for the out-of-family figure
    observations: Observations | None = None  # targets with gaps or on their own grid
    params: dict[str, Any] | None = None  # recovered parameters of curves whose truth is known (see _param_check)
    emulation: dict[str, Any] | None = None  # emulated against true curves at known θ (see _emulation)


def _data(model: CurveModel, targets, *, n_codes: int, n_targets: int, seed: int,
          truth: np.ndarray | None = None) -> _Data:
    """Fresh family curves (or prior samples for a custom family), the targets, and their fits."""
    m = model.manifest
    family = FAMILIES.get(m.family.get("name", ""))
    if family is not None and family.n_points != m.n_points:
        family = None  # a family run on another grid size: treat as custom
    g = rng(seed)
    if family is not None:
        curves, theta = family.sample(n_codes, seed=g)
    else:
        curves, theta = model.sample(n_codes, seed=g), None
    obs = None
    if targets is not None:
        read = read_fit_targets(targets, model_grid=model.grid, latent_dim=model.latent_dim, clip_range=True)
        obs = read.observations
        t = read.values if obs is None else np.full((obs.values.shape[0], model.n_points), np.nan, np.float32)
        if obs is None and np.isnan(t).any():
            obs = on_model_grid(t, latent_dim=model.latent_dim)
        if truth is not None:
            truth = np.asarray(truth, np.float64)
            k = 0 if m.params is None else m.params.k
            if obs is not None or truth.shape != (len(t), k):
                raise InputError(f"truth has shape {truth.shape}; it must hold the {k} known parameters of each of the "
                                 f"{len(t)} complete targets, row by row (or leave it out)")
    elif family is not None:
        t, truth = family.sample(n_targets, seed=g)
    elif m.held_out is not None:  # user data: its own held-out curves, kept in the bundle at export
        t = m.held_out.array()[:n_targets]
        truth = np.asarray(m.params.held_out)[:n_targets] if m.params is not None and m.params.held_out else None
    else:
        t, truth = model.sample(n_targets, seed=g), None
    fit = model.fit(t) if obs is None else model.fit(None, observations=obs)
    base = t if obs is None else fit.x_hat  # foreign curves are built from complete curves
    return _Data(family, curves, theta, model.encode(curves), t, fit, coverage(model, seed=seed, family=family),
                 _foreign_fits(model, base, g), obs, _param_check(model, t, truth, g),
                 _emulation(model, family, n_targets, g))


def _emulation(model: CurveModel, family: Family | None, n: int, g: np.random.Generator) -> dict[str, Any] | None:
    """Curves of known θ (fresh θ inside the emulator's range for a family, the held-out curves of user data)
    against their emulation: the error as a share of the curves' spread, and beside the latent fit's."""
    m = model.manifest
    if model.emulator is None:
        return None
    if family is not None:
        theta = g.uniform(m.emulator.low, m.emulator.high, (n, m.emulator.k))
        curves = family.curves(theta)
    elif m.held_out is not None and m.params is not None and m.params.held_out and m.params.names == m.emulator.names:
        theta, curves = np.asarray(m.params.held_out), m.held_out.array()
        keep = ~model.emulator.outside(theta)
        theta, curves = theta[keep], curves[keep]
    else:
        return None
    if len(theta) < 2:
        return None
    emulated = model.emulate(theta)
    err = np.linalg.norm(emulated.astype(np.float64) - curves, axis=1)
    spread = float(np.median(np.linalg.norm(curves - curves.mean(axis=0), axis=1)))
    floor = float(np.median(model.fit(curves, uncertainty=False, params=False).residual))
    return {"names": m.emulator.names, "theta": theta, "curves": curves, "emulated": emulated,
            "numbers": {"n": int(len(theta)), "share_median": float(np.median(err)) / spread,
                        "share_p90": float(np.quantile(err, 0.9)) / spread, "vs_fit_residual": float(np.median(err)) / floor}}


def _param_check(model: CurveModel, targets: np.ndarray, truth: np.ndarray | None,
                 g: np.random.Generator) -> dict[str, Any] | None:
    """Curves of known parameters (fresh family curves, or the held-out curves of user data) with noise of the
    calibration's level, fitted with σ given: the recovered parameters, their 95% intervals and the coverage."""
    if model.param_head is None or truth is None:
        return None
    sigma = noise_level(model)
    fit = model.fit(targets + g.normal(0, sigma, targets.shape).astype(np.float32), sigma=sigma)
    names = model.manifest.params.names
    inside = (fit.theta_lo <= truth) & (truth <= fit.theta_hi)
    rel = np.abs(fit.theta - truth) / np.maximum(np.abs(truth), 1e-12)
    return {"names": names, "truth": truth, "theta": fit.theta, "lo": fit.theta_lo, "hi": fit.theta_hi,
            "sigma": sigma, "numbers": {n: {"n": int(len(truth)), "rel_error_median": float(np.median(rel[:, j])),
                                            "rel_error_p90": float(np.percentile(rel[:, j], 90)),
                                            "coverage95": float(inside[:, j].mean())}
                                        for j, n in enumerate(names)}}


def _foreign_fits(model: CurveModel, targets: np.ndarray, g: np.random.Generator) -> dict[str, FitResult]:
    """Curves the model never learned: the targets shifted by a constant, and sinusoids of their scale."""
    scale = float(np.std(targets)) or 1.0
    grid = (model.grid - model.grid[0]) / (model.grid[-1] - model.grid[0])
    n = min(len(targets), 200)
    sines = scale * np.sin(2 * np.pi * g.uniform(0.5, 4, (n, 1)) * grid + g.uniform(0, 2 * np.pi, (n, 1)))
    return {"targets + 1 std": model.fit(targets[:n] + np.float32(scale)),
            "sinusoids": model.fit(sines.astype(np.float32))}


def _numbers(model: CurveModel, d: _Data, *, label: str, targets_from_file: bool) -> dict[str, Any]:
    m = model.manifest
    return {
        "model": label, "family": m.family.get("name"), "n_points": m.n_points, "latent_dim": m.latent_dim,
        "training": m.training.final or None, "epochs": m.training.epochs,
        "parity": {"max_abs": m.parity.max_abs, "max_rel": m.parity.max_rel, "atol": m.parity.atol,
                   "rtol": m.parity.rtol},
        "latent_mean": d.codes.mean(0).tolist(), "latent_std": d.codes.std(0).tolist(),
        "fit": {"n_targets": int(len(d.targets)),
                "targets": ("file" if targets_from_file else "fresh family" if d.family is not None
                            else "held-out" if m.held_out is not None else "decoder-sample"),
                **d.fit.summary()},
        "baseline": None if m.baseline is None else {**m.baseline.to_dict(), "verdict": m.baseline.summary()},
        "uncertainty": {"z_std_median": np.median(d.fit.z_std, axis=0).tolist(),
                        "sigma_median": float(np.median(d.fit.sigma)),
                        "ill_conditioned": int(d.fit.ill_conditioned.sum()),
                        "ood_threshold": d.fit.ood_threshold,
                        "ood_rate": None if d.fit.ood is None else float(d.fit.ood.mean()),
                        "foreign_ood_rate": {k: None if f.ood is None else float(f.ood.mean())
                                             for k, f in d.foreign.items()}},
        "calibration": d.calibration,
        "params": None if d.params is None else {"sigma": d.params["sigma"], **d.params["numbers"]},
        "emulator": None if d.emulation is None else d.emulation["numbers"],
    }


def _figures(model: CurveModel, d: _Data, folder: Path) -> list[tuple[str, str]]:
    """Draw every figure that applies to this model into ``folder``; returns (file, caption) pairs."""
    from curvae.report import figures as fig

    m, grid, dens, family = model.manifest, model.grid, d.family is not None, d.family
    figs: list[tuple[str, str]] = []
    history = m.training.history
    if history:
        fig.training_curves(history, folder / "training.png")
        figs.append(("training.png", "Training: reconstruction and KL per epoch"))
    if family is not None:
        fig.family_curves(grid, d.curves[:6], [", ".join(f"{p[0]}={v:.2f}" for p, v in zip(family.params, row))
                                               for row in d.theta[:6]], folder / "family.png")
        figs.append(("family.png", "A few curves of the family"))
    if m.baseline is not None:
        fig.baseline(m.baseline.pca_residual_median, m.baseline.model_residual_median, m.latent_dim,
                     folder / "baseline.png")
        figs.append(("baseline.png", f"Held-out fit residual against PCA's number of components "
                                     f"({m.baseline.n_held_out} held-out curves): {m.baseline.summary()}"))
    fig.latent_histograms(d.codes, folder / "latent_hist.png")
    figs.append(("latent_hist.png", "Latent codes of fresh curves against the N(0, 1) prior"))
    if m.latent_dim == 2 and family is not None:
        fig.latent_scatter(d.codes, d.theta, [p[0] for p in family.params], folder / "latent_scatter.png")
        figs.append(("latent_scatter.png", "Codes coloured by the family's parameters"))
    if m.latent_dim == 2:
        side = 6
        axis = np.linspace(-2.5, 2.5, side)
        lattice = np.array([[a, b] for b in axis[::-1] for a in axis], np.float32)
        fig.decoded_lattice(grid, lattice, model.decode(lattice), side, dens, folder / "decoded_grid.png")
        figs.append(("decoded_grid.png", "Curves decoded across a lattice of z"))
    order = np.argsort(d.fit.residual)
    typical = order[np.linspace(0, len(order) - 1, 6).astype(int)[1:-1]]
    fig.reconstructions(grid, d.targets[typical], d.fit.x_hat[typical], dens, folder / "reconstructions.png",
                        "Targets and their fits, from good to poor", d.fit.residual[typical])
    figs.append(("reconstructions.png", "Targets against their fitted reconstructions, with the error curve"))
    fig.residual_histogram(d.fit.residual, folder / "fit_residuals.png")
    figs.append(("fit_residuals.png", "Distribution of fit residuals"))
    worst = order[::-1][:5]
    fig.reconstructions(grid, d.targets[worst], d.fit.x_hat[worst], dens, folder / "worst_fits.png",
                        "The five worst fits", d.fit.residual[worst])
    figs.append(("worst_fits.png", "The five worst fits"))
    if d.observations is not None:
        o, show = d.observations, typical
        points = [(model.grid[o.observed[i]] if o.aligned else o.x[i, o.observed[i]], o.values[i, o.observed[i]])
                  for i in show]
        missing = [np.flatnonzero(~o.observed[i]) if o.aligned else np.array([], int) for i in show]
        fig.measured_fits(model.grid, d.fit.x_hat[show], points, missing, folder / "measured_fits.png")
        figs.append(("measured_fits.png", "Targets with missing points or their own grid, over the decoded curve"))
    if d.emulation is not None:
        e, n = d.emulation, d.emulation["numbers"]
        show = np.linspace(0, len(e["theta"]) - 1, 6).astype(int)
        labels = [", ".join(f"{name}={v:.3g}" for name, v in zip(e["names"], row)) for row in e["theta"][show]]
        fig.emulated(grid, e["curves"][show], e["emulated"][show], labels, dens, folder / "emulator.png",
                     f"θ → curve by the emulator on {n['n']} θ it never saw: median error {n['share_median']:.2%} "
                     f"of the curves' spread (p90 {n['share_p90']:.2%}), {n['vs_fit_residual']:.1f}× the latent fit's")
        figs.append(("emulator.png", "Curves at known parameters against the emulator's curves (emulator.onnx)"))
    figs += _uncertainty_figures(model, d, folder, order)
    return figs


def _uncertainty_figures(model: CurveModel, d: _Data, folder: Path, order: np.ndarray) -> list[tuple[str, str]]:
    from curvae.report import uncertainty_figures as uf

    figs: list[tuple[str, str]] = []
    pick = order[np.linspace(0, len(order) - 1, 4).astype(int)]
    uf.fit_bands(model.grid, d.targets[pick], d.fit.x_hat[pick], d.fit.band_lo[pick], d.fit.band_hi[pick],
                 folder / "fit_bands.png")
    figs.append(("fit_bands.png", "Fits with the ±2σ band of the true curve: z's uncertainty and the model's own "
                                  "error per point"))
    if model.latent_dim == 2:
        uf.latent_ellipses(d.fit.z[:60], d.fit.cov[:60], folder / "latent_ellipses.png")
        figs.append(("latent_ellipses.png", "Fitted codes with their 95% error ellipses"))
    uf.calibration(d.calibration, folder / "calibration.png")
    figs.append(("calibration.png", "Coverage of known codes by the fitted ellipses and bands, against nominal"))
    rec = model.manifest.fit_residuals
    if rec is not None and d.fit.ood_threshold is not None:
        groups = {"targets": d.fit.rms, **{k: f.rms for k, f in d.foreign.items()}}
        uf.out_of_family(np.asarray(rec.values) / np.sqrt(rec.n_points), d.fit.ood_threshold, 0.99, groups,
                         folder / "ood.png")
        figs.append(("ood.png", "Residuals against the out-of-family threshold: targets and foreign curves"))
    p = d.params
    if p is not None:
        uf.parameters(p["names"], p["truth"], p["theta"], p["lo"], p["hi"], p["sigma"], folder / "params.png")
        figs.append(("params.png", "True against recovered parameters of curves the model did not see, with noise: "
                                   "the parameter head on the fitted codes, and its 95% intervals"))
    return figs


def _ood_text(u: dict[str, Any]) -> str:
    if u["ood_rate"] is None:
        return "unavailable: the bundle records no held-out residuals"
    foreign = ", ".join(f"{k} {v:.0%}" for k, v in u["foreign_ood_rate"].items())
    return f"{u['ood_rate']:.1%}; {foreign}"


def _html(n: dict[str, Any], figs: list[tuple[str, str]]) -> str:
    tr, fit, par = n["training"] or {}, n["fit"], n["parity"]
    rows = [
        ("family", n["family"]), ("points per curve / latent size", f"{n['n_points']} / {n['latent_dim']}"),
        ("epochs", n["epochs"]),
        ("final reconstruction (train / held-out SSE)", f"{tr.get('recon', float('nan')):.4f} / "
                                                        f"{tr.get('val_recon', float('nan')):.4f}"),
        ("final KL", f"{tr.get('kl', float('nan')):.3f}"),
        ("export parity (max abs / max rel)", f"{par['max_abs']:.2e} / {par['max_rel']:.2e}"),
        ("latent mean", ", ".join(f"{v:+.3f}" for v in n["latent_mean"])),
        ("latent std", ", ".join(f"{v:.3f}" for v in n["latent_std"])),
        *([("held-out real curves, measured at export (against PCA)", n["baseline"]["verdict"])]
          if n.get("baseline") else []),
        (f"fit residual median / p90 ({fit['n_targets']} {fit['targets']} targets)"
         + (": samples of the model's own decoder, no evidence about the data; pass --targets"
            if fit["targets"] == "decoder-sample" else ""),
         f"{fit['residual_median']:.4f} / {fit['residual_p90']:.4f}"),
        ("fits converged", f"{100 * fit['success_rate']:.1f}%"),
        ("out of family (targets; foreign curves)", _ood_text(n["uncertainty"])),
        ("95% ellipse / ±2σ band coverage of known codes (σ given)",
         f"{n['calibration']['ellipse_given'][4]:.3f} / {n['calibration']['band_given']:.3f} "
         f"(nominal 0.95 / {n['calibration']['band_nominal']:.3f})"),
        *([("±2σ band coverage of real family curves with noise (z-only band); flagged out of family",
            f"{n['calibration']['band_family_given']:.3f} ({n['calibration']['band_z_family_given']:.3f}); "
            + ("n/a" if n['calibration']['ood_family_given'] is None
               else f"{n['calibration']['ood_family_given']:.1%}"))]
          if "band_family_given" in n["calibration"] else []),
        *([(f"parameter {k}: relative error median / p90; 95% interval coverage (σ = {n['params']['sigma']:.3g})",
            f"{v['rel_error_median']:.2%} / {v['rel_error_p90']:.2%}; {v['coverage95']:.3f}")
           for k, v in n["params"].items() if k != "sigma"] if n.get("params") else []),
    ]
    table = "\n".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    images = "\n".join(f'<figure><img src="{f}" alt="{html.escape(c)}"><figcaption>{html.escape(c)}</figcaption>'
                       "</figure>" for f, c in figs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>curvae report: {html.escape(str(n['family']))}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
th{{background:#f4f4f4;font-weight:normal}}figure{{margin:2em 0}}img{{max-width:100%}}
figcaption{{color:#555}}</style></head><body>
<h1>curvae report</h1>
<p>Model: <code>{html.escape(n['model'])}</code>. Residual = L2 norm of target − decoding over the grid points.</p>
<table>{table}</table>
{images}
</body></html>
"""
