"""θ → curve: the emulator against the model's own fit error, its speed, and fits in parameter space.

    python benchmarks/bench_emulator.py         # writes results/emulator.json

For each family, the default recipe (the capacity search, 60 s budget) is
trained on the family's 5,000 default curves and exported; the emulator is
fitted at export. Fresh θ the model never saw, drawn uniformly inside the
recorded training range:

- emulation error: ``‖emulate(θ) − curve(θ)‖₂`` over the median ``‖curve −
  mean‖₂`` (share of spread), median and p90, and its ratio to the median
  residual of the latent-space fit of the same curves (the model's floor);
- speed (Beta): curves per second in batches of 10,000, and one call of one
  row against a raw ``session.run`` of the emulator graph and of the decoder
  graph, best of interleaved rounds;
- fits with σ = 0.05 given, on the inner 80% of the range: θ-space fits
  against latent fits plus the parameter head (median relative error of θ,
  95% coverage, time per target), and scipy ``curve_fit`` of the analytic
  model per target (the alternative a user would pick), side by side.
"""

from __future__ import annotations

import argparse
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
N_FRESH = 1000
N_FIT = 1000
N_CURVE_FIT = 200


def bundle_for(name: str, work: Path, preset: str = "auto") -> tuple[CurveModel, float]:
    from curvae.recipe.capacity import train_searched
    from curvae.training.config import DataConfig, RunConfig
    from curvae.training.export_run import export_run
    from curvae.training.loop import train

    t = time.perf_counter()
    cfg = RunConfig(data=DataConfig(family=name))
    train_searched(cfg, work / name / "run") if preset == "auto" else train(cfg, work / name / "run")
    t_export = time.perf_counter()
    export_run(work / name / "run", work / name / "model")
    done = time.perf_counter()
    print(f"{name}: trained in {t_export - t:.0f}s, exported in {done - t_export:.0f}s", flush=True)
    return CurveModel.load(work / name / "model"), done - t_export


def fresh(model: CurveModel, name: str, n: int, seed: int, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rec = model.manifest.emulator
    lo, hi = np.array(rec.low), np.array(rec.high)
    theta = np.random.default_rng(seed).uniform(lo + margin * (hi - lo), hi - margin * (hi - lo), (n, rec.k))
    return get_family(name).curves(theta), theta


def accuracy(model: CurveModel, name: str) -> dict:
    x, theta = fresh(model, name, N_FRESH, seed=777)
    spread = float(np.median(np.linalg.norm(x - x.mean(axis=0), axis=1)))
    err = np.linalg.norm(model.emulate(theta).astype(np.float64) - x, axis=1)
    floor = float(np.median(model.fit(x, uncertainty=False, params=False).residual))
    return {"share_median": float(np.median(err)) / spread, "share_p90": float(np.quantile(err, 0.9)) / spread,
            "fit_residual_share": floor / spread, "vs_fit_residual": float(np.median(err)) / floor,
            "network": model.manifest.training.capacity.get("chosen") if model.manifest.training.capacity else None,
            "recorded_share_median": model.manifest.emulator.share_median}


def fits(model: CurveModel, name: str) -> dict:
    x, theta = fresh(model, name, N_FIT, seed=778, margin=0.1)
    noisy = (x + np.random.default_rng(779).normal(0, SIGMA, x.shape)).astype(np.float32)
    out = {}
    for space in ("z", "theta"):
        model.fit(noisy[:50], sigma=SIGMA, space=space)  # warm
        t = time.perf_counter()
        res = model.fit(noisy, sigma=SIGMA, space=space)
        per = (time.perf_counter() - t) / len(x)
        rel = np.abs(res.theta - theta) / np.abs(theta)
        inside = (res.theta_lo <= theta) & (theta <= res.theta_hi)
        out[space] = {"median_rel_error": np.median(rel, axis=0).tolist(), "coverage95": inside.mean(axis=0).tolist(),
                      "per_target_ms": per * 1e3, "success": float(res.success.mean())}
    return out


def curve_fit_per_target(name: str, x: np.ndarray, theta0: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    from scipy.optimize import curve_fit

    fam = get_family(name)
    grid = fam.grid()

    def model_fn(xs, *p):
        return fam.fn(xs, np.array([p]))[0]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        for i in range(len(x)):
            curve_fit(model_fn, grid, x[i].astype(np.float64), p0=theta0, bounds=(lo, hi))
        return (time.perf_counter() - t) / len(x)


def speed(model: CurveModel, rounds: int = 15) -> dict:
    rec = model.manifest.emulator
    theta = fresh(model, "beta", 10_000, seed=21)[1]
    one = theta[:1].astype(np.float32)
    emu_sess, dec_sess = model.emulator.session, model._dec
    z1 = model.emulate(one, codes=True)[1]
    buf = np.empty((10_000, model.n_points), np.float32)
    batch, call, raw_emu, raw_dec = [], [], [], []
    for _ in range(rounds):  # interleaved: the host's noise hits each alike
        t = time.perf_counter()
        for _ in range(10):
            model.emulate(theta, out=buf)
        batch.append((time.perf_counter() - t) / 10)
        for store, fn in ((call, lambda: model.emulate(one)), (raw_emu, lambda: emu_sess.run(None, {"theta": one})),
                          (raw_dec, lambda: dec_sess.run(None, {"z": z1}))):
            t = time.perf_counter()
            for _ in range(200):
                fn()
            store.append((time.perf_counter() - t) / 200)
    x, th = fresh(model, "beta", 10_000, seed=30, margin=0.1)
    noisy = (x + np.random.default_rng(31).normal(0, SIGMA, x.shape)).astype(np.float32)
    cf = curve_fit_per_target("beta", noisy[:N_CURVE_FIT], np.array([1.0, 1.0]), np.full(2, 1e-6),
                              np.array(rec.high))
    by_theta, by_z = [], []
    for _ in range(3):  # 10,000 targets, as bench_params times the latent fit
        for store, space in ((by_theta, "theta"), (by_z, "z")):
            t = time.perf_counter()
            model.fit(noisy, sigma=SIGMA, space=space)
            store.append((time.perf_counter() - t) / len(x))
    ours = min(by_theta)
    return {"curves_per_s_10k": 10_000 / min(batch), "one_row_emulate_us": min(call) * 1e6,
            "one_row_raw_emulator_us": min(raw_emu) * 1e6, "one_row_raw_decoder_us": min(raw_dec) * 1e6,
            "one_row_vs_raw_emulator": min(call) / min(raw_emu), "one_row_vs_raw_decoder": min(call) / min(raw_dec),
            "theta_fit_per_target_ms": ours * 1e3, "z_fit_per_target_ms": min(by_z) * 1e3,
            "curve_fit_per_target_ms": cf * 1e3,
            "speedup_vs_curve_fit": cf / ours}


def _print_speed(s: dict, label: str) -> None:
    print(f"  speed, {label}: {s['curves_per_s_10k']:,.0f} curves/s in batches of 10k; one row "
          f"{s['one_row_emulate_us']:.1f} µs = {s['one_row_vs_raw_emulator']:.2f}x a raw emulator session.run "
          f"({s['one_row_vs_raw_decoder']:.2f}x the decoder's); θ fit {s['theta_fit_per_target_ms']:.3f} ms/target "
          f"(z fit {s['z_fit_per_target_ms']:.3f}) vs curve_fit {s['curve_fit_per_target_ms']:.2f} ms: "
          f"{s['speedup_vs_curve_fit']:.0f}x", flush=True)


def main(families: tuple[str, ...]) -> dict:
    out: dict = {"sigma": SIGMA, "n_fresh": N_FRESH, "n_fit": N_FIT, "families": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in families:
            model, export_s = bundle_for(name, Path(tmp))
            row = {"export_s": export_s, "emulation": accuracy(model, name), "fits": fits(model, name)}
            out["families"][name] = row
            e, f = row["emulation"], row["fits"]
            print(f"  emulation {e['share_median']:.3%} (p90 {e['share_p90']:.3%}) of the spread, "
                  f"{e['vs_fit_residual']:.2f}x the fit residual ({e['fit_residual_share']:.3%}); network "
                  f"{e['network']}", flush=True)
            for space in ("z", "theta"):
                s = f[space]
                print(f"  fit in {space:5s}: θ error {[f'{v:.3%}' for v in s['median_rel_error']]}, coverage "
                      f"{[round(v, 3) for v in s['coverage95']]}, {s['per_target_ms']:.3f} ms/target", flush=True)
            if name == "beta":
                out["speed"] = speed(model)
                _print_speed(out["speed"], "the default recipe's network")
                fast, _ = bundle_for("beta", Path(tmp) / "fast", preset="fast")
                out["speed_fast_preset"] = speed(fast)
                _print_speed(out["speed_fast_preset"], "--preset fast (depth 1)")
    save("emulator", out)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", nargs="+", default=["beta", "peak", "logistic", "planck"])
    main(tuple(ap.parse_args().families))
