"""Fitting: curvae's batched engine against the worked example's per-target Nelder-Mead.

    python benchmarks/bench_fit.py [--n-targets 10000] [--n-nm 200]

Needs the bundle written by bench_train.py (benchmarks/results/work/model).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402
from example_loop import nelder_mead_fit  # noqa: E402

from curvae.runtime import CurveModel  # noqa: E402
from curvae.training.families import get_family  # noqa: E402
from curvae.training.model import DecoderGraph  # noqa: E402
from curvae.training.run import load_run  # noqa: E402

WORK = Path(__file__).parent / "results" / "work"


def main(n_targets: int, n_nm: int) -> dict:
    model = CurveModel.load(WORK / "model")
    targets, _ = get_family("beta").sample(n_targets, seed=13_579)

    t = time.perf_counter()
    fit = model.fit(targets)
    lm_per_target = (time.perf_counter() - t) / n_targets
    best = model.fit(targets, n_starts=8, seed=1)

    decoder = DecoderGraph(load_run(WORK / "run").model).eval()
    _, nm_res, nm_calls, nm_per_target = nelder_mead_fit(decoder, targets[:n_nm])
    result = {
        "n_targets": n_targets,
        "curvae_lm": {"ms_per_target": 1e3 * lm_per_target, "residual_median": float(np.median(fit.residual)),
                      "residual_p90": float(np.percentile(fit.residual, 90)), "success_rate": float(fit.success.mean()),
                      "decoder_rows_per_target": float(fit.nfev.mean())},
        "best_multistart": {"n_starts": 8, "residual_median": float(np.median(best.residual))},
        "example_nelder_mead": {"n_targets": n_nm, "ms_per_target": 1e3 * nm_per_target,
                                "residual_median": float(np.median(nm_res)),
                                "decoder_calls_per_target": float(nm_calls.mean())},
    }
    result["speedup"] = nm_per_target / lm_per_target
    result["median_vs_best"] = result["curvae_lm"]["residual_median"] / result["best_multistart"]["residual_median"] - 1
    save("fit", result)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-targets", type=int, default=10_000)
    ap.add_argument("--n-nm", type=int, default=200)
    r = main(**vars(ap.parse_args()))
    print(f"LM {r['curvae_lm']['ms_per_target']:.4f} ms/target vs Nelder-Mead "
          f"{r['example_nelder_mead']['ms_per_target']:.2f}: {r['speedup']:.0f}x; median vs best {r['median_vs_best']:+.2%}")
