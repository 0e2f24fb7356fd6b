"""Which α, β? The parameter head against a per-target analytic fit: accuracy, interval coverage and speed.

    python benchmarks/bench_params.py          # writes results/params.json

For each family, the default recipe is trained on the family's 5,000 default
curves and exported (the head is fitted at export). Fresh targets the model
never saw: Beta with α, β ∈ [0.5, 5] (the issue's targets), the other
families on the inner 80% of each parameter's range.

- noise-free: median and p90 of ``|θ̂ − θ| / |θ|`` per parameter;
- with Gaussian noise σ = 0.05 and ``sigma=0.05`` given: the share of true
  parameters inside the 95% intervals (``theta_lo``, ``theta_hi``);
- speed (Beta): the 10,000-target fit with and without the parameters,
  best of interleaved rounds, and scipy ``curve_fit`` of the Beta log-PDF
  per target (the closed-form alternative) on 200 of the targets.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from curvae.families import get_family  # noqa: E402
from curvae.runtime import CurveModel  # noqa: E402

SIGMA = 0.05
N_TARGETS = 2000


def targets(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    fam = get_family(name)
    g = np.random.default_rng(seed)
    if name == "beta":
        theta = g.uniform(0.5, 5.0, (n, 2))
    else:
        lo = np.array([p[1] for p in fam.params])
        hi = np.array([p[2] for p in fam.params])
        theta = g.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo), (n, len(lo)))
    return fam.curves(theta), theta


def bundle_for(name: str, work: Path) -> CurveModel:
    from curvae.training.config import DataConfig, RunConfig
    from curvae.training.export_run import export_run
    from curvae.training.loop import train

    t = time.perf_counter()
    train(RunConfig(data=DataConfig(family=name)), work / name / "run")
    export_run(work / name / "run", work / name / "model")
    print(f"{name}: trained and exported in {time.perf_counter() - t:.0f}s", flush=True)
    return CurveModel.load(work / name / "model")


def accuracy(model: CurveModel, name: str) -> dict:
    x, theta = targets(name, N_TARGETS, seed=11)
    fit = model.fit(x)
    rel = np.abs(fit.theta - theta) / np.abs(theta)
    g = np.random.default_rng(12)
    noisy = model.fit((x + g.normal(0, SIGMA, x.shape)).astype(np.float32), sigma=SIGMA)
    inside = (noisy.theta_lo <= theta) & (theta <= noisy.theta_hi)
    rel_noisy = np.abs(noisy.theta - theta) / np.abs(theta)
    head = model.manifest.params
    return {n: {"transform": t, "median_rel_error": float(np.median(rel[:, j])),
                "p90_rel_error": float(np.percentile(rel[:, j], 90)),
                "noisy_median_rel_error": float(np.median(rel_noisy[:, j])),
                "coverage95_sigma_given": float(inside[:, j].mean())}
            for j, (n, t) in enumerate(zip(head.names, head.transforms))}


def speed(model: CurveModel, rounds: int = 21) -> dict:
    from scipy.optimize import curve_fit

    x, theta = targets("beta", 10_000, seed=21)
    base, with_params = [], []
    for _ in range(rounds):  # interleaved: the host's noise hits both alike
        t = time.perf_counter()
        model.fit(x, params=False)
        base.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.fit(x)
        with_params.append(time.perf_counter() - t)
    bare = model.fit(x, params=False)
    head = model.param_head
    annotate = []
    for _ in range(rounds):  # the head's own cost on the same 10k fits: steadier than a difference of two fits
        t = time.perf_counter()
        for i in range(0, len(x), 4096):  # as the fit calls it, chunk by chunk
            head.annotate(_rows(bare, slice(i, i + 4096)))
        annotate.append(time.perf_counter() - t)
    fam = get_family("beta")
    grid = fam.grid()

    def logpdf(xs, a, b):
        return fam.fn(xs, np.array([[a, b]]))[0]

    from scipy import stats

    def logpdf_scipy(xs, a, b):
        return stats.beta.logpdf(xs, a, b)

    n_cf = 200
    per = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, fn in (("numpy", logpdf), ("scipy.stats", logpdf_scipy)):
            t = time.perf_counter()
            for i in range(n_cf):
                curve_fit(fn, grid, x[i].astype(np.float64), p0=(1.0, 1.0), bounds=(1e-6, 50))
            per[label] = (time.perf_counter() - t) / n_cf
    per_cf = per["numpy"]
    per_fit = min(with_params) / len(x)
    return {"fit_10k_s": min(base), "fit_10k_with_params_s": min(with_params),
            "params_overhead": min(with_params) / min(base) - 1.0, "head_s": min(annotate),
            "head_share_of_fit": min(annotate) / min(base),
            "per_target_curvae_ms": per_fit * 1e3, "per_target_curve_fit_ms": per_cf * 1e3,
            "per_target_curve_fit_scipy_stats_ms": per["scipy.stats"] * 1e3,
            "speedup_vs_curve_fit": per_cf / per_fit, "speedup_vs_curve_fit_scipy_stats": per["scipy.stats"] / per_fit}


def _rows(res, rows: slice):
    """The fit result of a slice of targets (the fields the head reads)."""
    from dataclasses import fields, replace

    return replace(res, **{f.name: getattr(res, f.name)[rows] for f in fields(res)
                           if isinstance(getattr(res, f.name), np.ndarray)})


def speed_only() -> dict:
    """Rerun the speed rows alone (on a quiet machine), keeping the accuracy rows of results/params.json."""
    from common import RESULTS

    with tempfile.TemporaryDirectory() as tmp:
        model = bundle_for("beta", Path(tmp))
        prev = json.loads((RESULTS / "params.json").read_text())
        prev.pop("machine", None)
        prev.pop("when", None)
        prev["speed"] = speed(model)
    print(json.dumps(prev["speed"], indent=1))
    save("params", prev)
    return prev


def main(families: tuple[str, ...] = ("beta", "peak", "logistic", "damped", "planck")) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out: dict = {"sigma": SIGMA, "n_targets": N_TARGETS, "families": {}}
        for name in families:
            model = bundle_for(name, work)
            out["families"][name] = {"head": {"hidden": model.manifest.params.hidden,
                                              "held_out_error": list(model.manifest.params.error)},
                                     "params": accuracy(model, name)}
            if name == "beta":
                out["speed"] = speed(model)
            for p, v in out["families"][name]["params"].items():
                print(f"  {p:12s} noise-free median {v['median_rel_error']:.3%} p90 {v['p90_rel_error']:.3%}; "
                      f"σ={SIGMA}: coverage {v['coverage95_sigma_given']:.3f}", flush=True)
        if "speed" in out:
            s = out["speed"]
            print(f"speed: 10k fit {s['fit_10k_s']:.3f}s, with θ {s['fit_10k_with_params_s']:.3f}s "
                  f"(+{s['params_overhead']:.1%} side by side; the head itself {s['head_s'] * 1e3:.1f} ms, "
                  f"{s['head_share_of_fit']:.1%} of the fit); curve_fit {s['per_target_curve_fit_ms']:.2f} ms per target "
                  f"(numpy log-PDF), {s['per_target_curve_fit_scipy_stats_ms']:.2f} ms (scipy.stats): "
                  f"{s['speedup_vs_curve_fit']:.0f}x and {s['speedup_vs_curve_fit_scipy_stats']:.0f}x slower than "
                  "curvae with θ")
    save("params", out)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", nargs="+", default=["beta", "peak", "logistic", "damped", "planck"])
    ap.add_argument("--speed-only", action="store_true", help="rerun the speed rows, keep the accuracy rows")
    a = ap.parse_args()
    speed_only() if a.speed_only else main(tuple(a.families))
