"""The worked example end to end: train on Beta, export with parity, encode, sample, fit."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from curvae.core.atomic import atomic_dir, save_npy, save_npz, write_json
from curvae.families import get_family
from curvae.recipe.capacity import CandidateCallback, train_searched
from curvae.recipe.config import DEMO_BUDGET_SECONDS, SearchConfig
from curvae.runtime.bundle.records import capacity_scores
from curvae.runtime.model import CurveModel
from curvae.training.config import RunConfig
from curvae.training.export_run import export_run
from curvae.training.loop import EpochCallback, train


def run_demo(
    out: str | os.PathLike[str],
    *,
    n_targets: int = 1000,
    seed: int = 0,
    force: bool = False,
    config: RunConfig = RunConfig(),
    search: SearchConfig | None = SearchConfig(budget_seconds=DEMO_BUDGET_SECONDS),
    on_epoch: EpochCallback | None = None,
    on_candidate: CandidateCallback | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline into ``out`` and return its summary.

    The network is chosen by the capacity search within ``search`` (None trains ``config``'s network alone).

    ``out`` receives ``run/``, ``model/`` (the bundle), ``samples.npy``,
    ``targets.npy``, ``fit.npz``, ``summary.json`` and, when matplotlib is
    installed, ``report/`` (figures and an ``index.html``).
    """
    t0 = time.perf_counter()
    with atomic_dir(out, force=force) as tmp:
        tmp = Path(tmp)
        if search is None:
            run_summary = train(config, tmp / "run", on_epoch=on_epoch)
        else:
            run_summary = train_searched(config, tmp / "run", search=search, on_epoch=on_epoch,
                                         on_candidate=on_candidate)
        t_train = time.perf_counter() - t0
        exported = export_run(tmp / "run", tmp / "model")
        model = CurveModel.load(tmp / "model")

        family = get_family(config.data.family)
        targets, theta = family.sample(n_targets, seed=seed + 10_000)  # fresh: never seen in training
        codes = model.encode(targets)
        samples = model.sample(8, seed=seed)
        tf = time.perf_counter()
        fit = model.fit(targets)
        t_fit = time.perf_counter() - tf
        save_npy(tmp / "targets.npy", targets)
        save_npy(tmp / "samples.npy", samples)
        extra = {} if fit.theta is None else {"theta": fit.theta, "theta_lo": fit.theta_lo, "theta_hi": fit.theta_hi,
                                              "theta_true": theta,
                                              "param_names": np.array(model.manifest.params.names)}
        save_npz(tmp / "fit.npz", z=fit.z, residual=fit.residual, success=fit.success, nfev=fit.nfev,
                 x_hat=fit.x_hat, **extra)
        summary = {
            "train": {"seconds": t_train, "epochs": run_summary["epochs"],
                      "budget": run_summary.get("budget", f"{run_summary['epochs']} epochs"), **run_summary["final"],
                      "network": _network_line(run_summary)},
            "parity": {k: getattr(exported.manifest.parity, k) for k in ("max_abs", "max_rel", "atol",
                                                                         "float32_noise")},
            "latent": {"mean": [float(v) for v in codes.mean(0)], "std": [float(v) for v in codes.std(0)]},
            "fit": {"n_targets": n_targets, "method": "lm", "seconds": t_fit,
                    "ms_per_target": 1e3 * t_fit / n_targets, **fit.summary()},
            "providers": model.providers["decoder"][0],
            "params": None if fit.theta is None else {
                name: float(np.median(np.abs(fit.theta[:, j] - theta[:, j]) / np.abs(theta[:, j])))
                for j, name in enumerate(model.manifest.params.names)},
        }
        if model.emulator is not None:  # θ → curve on the same fresh targets, with their true θ
            emulated = model.emulate(theta)
            spread = float(np.median(np.linalg.norm(targets - targets.mean(axis=0), axis=1)))
            err = np.linalg.norm(emulated.astype(np.float64) - targets, axis=1)
            summary["emulator"] = {"share_median": float(np.median(err)) / spread,
                                   "share_p90": float(np.quantile(err, 0.9)) / spread,
                                   "vs_fit_residual": float(np.median(err) / np.median(fit.residual))}
        summary["report"] = _report(tmp, theta if fit.theta is not None else None)
        summary["seconds"] = time.perf_counter() - t0
        write_json(tmp / "summary.json", summary)
    return summary


def _report(folder: Path, truth: np.ndarray | None = None) -> str | None:
    """Write ``folder/report`` for the demo's own model and targets; None without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    from curvae.report import build_report

    build_report(folder / "model", folder / "report", targets=folder / "targets.npy", label="model", truth=truth)
    return "report/index.html"


def format_summary(s: dict[str, Any], out: str) -> str:
    """The demo's printed summary."""
    t, p, f, lat = s["train"], s["parity"], s["fit"], s["latent"]
    report = f"{out}/{s['report']}" if s["report"] else "skipped: pip install 'curvae[plot]' for figures"
    return f"""
curvae demo: Beta log-PDFs, written to {out}/
  training   {t.get('budget', str(t['epochs']) + ' epochs')} in {t['seconds']:.1f}s: recon {t['recon']:.4f}, KL {t['kl']:.3f}, held-out SSE {t['val_recon']:.4f}
  network    {t.get('network', '')}
  export     parity max abs {p['max_abs']:.2e}, max rel {p['max_rel']:.2e} (atol {p['atol']:g}; float32 noise {p['float32_noise']:.1e})
  latent     mean {', '.join(f'{v:+.3f}' for v in lat['mean'])}; std {', '.join(f'{v:.3f}' for v in lat['std'])}
  fit        {f['n_targets']} fresh targets in {f['seconds']:.2f}s ({f['ms_per_target']:.2f} ms each), {100 * f['success_rate']:.1f}% converged
             residual median {f['residual_median']:.4f}, p90 {f['residual_p90']:.4f}{_params_line(s)}
  total      {s['seconds']:.1f}s on {s['providers']}
  report     {report}"""


def _network_line(run_summary: dict[str, Any]) -> str:
    cap = run_summary.get("capacity")
    if not cap:
        return "as given"
    return (f"{cap['chosen']} ({cap['network']}), by held-out fit residual ({capacity_scores(cap, '.4f')}); "
            f"search {cap['seconds']:.1f}s "
            f"of a {cap['budget_seconds']:g}s budget")


def _params_line(s: dict[str, Any]) -> str:
    p = s.get("params")
    if not p:
        return ""
    line = (f"\n  params     {', '.join(p)} of each target from its fit (params.onnx): median relative error "
            + ", ".join(f"{v:.2%}" for v in p.values()))
    e = s.get("emulator")
    if e:
        line += (f"\n  emulator   the targets' curves from their true {', '.join(p)} (emulator.onnx): median error "
                 f"{e['share_median']:.3%} of the curves' spread (p90 {e['share_p90']:.3%}), "
                 f"{e['vs_fit_residual']:.1f}x the fit's residual")
    return line
