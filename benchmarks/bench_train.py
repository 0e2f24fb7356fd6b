"""Training: curvae's default recipe against the worked example's per-sample loop, side by side.

    python benchmarks/bench_train.py [--example-epochs 3]

The example loop is timed one epoch at a time, interleaved with curvae's
trainings (best of 3 rounds each), and scaled to its 100 epochs; pass
``--example-epochs 100`` to run it whole and measure its fit quality too
(about 5 minutes here).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402
from example_loop import nelder_mead_fit, train_example  # noqa: E402

from curvae.families import get_family  # noqa: E402
from curvae.runtime import CurveModel  # noqa: E402
from curvae.training.config import RunConfig  # noqa: E402
from curvae.training.export_run import export_run  # noqa: E402
from curvae.training.loop import train  # noqa: E402

WORK = Path(__file__).parent / "results" / "work"
EXAMPLE_REFERENCE = {"residual_median": 0.057, "residual_p90": 0.12, "seconds_100_epochs": 500.0}


def fit_quality(model: CurveModel, targets: np.ndarray) -> dict:
    """Converged fit residuals: batched LM from the encoder, and the best of 8 starts."""
    one = model.fit(targets)
    multi = model.fit(targets, n_starts=8, seed=0)
    s1, s8 = one.summary(), multi.summary()
    return {"residual_median": s1["residual_median"], "residual_p90": s1["residual_p90"],
            "best_multistart_median": s8["residual_median"], "best_multistart_p90": s8["residual_p90"],
            "success_rate": s1["success_rate"]}


def main(example_epochs: int, n_targets: int) -> dict:
    """Time default trainings interleaved with single epochs of the example loop, one of each per round
    (``example_epochs`` rounds, or 3 when the example runs whole); best of each.

    The host is shared: interleaving lets a burst of load from neighbours hit both sides, and the best
    of several rounds is the least disturbed estimate of each. The same seed gives the same weights every
    round (checked), so quality is measured once.
    """
    family = get_family("beta")
    targets, _ = family.sample(n_targets, seed=987_654)  # fresh: not the training seed
    curves, _ = family.sample(5000, seed=0)

    rounds = example_epochs if example_epochs < 100 else 3
    ours, example_epoch, run_ids = [], [], set()
    for _ in range(rounds):
        if example_epochs < 100:
            example_epoch.append(train_example(curves, epochs=1)[1][0])
        t = time.perf_counter()
        summary = train(RunConfig(), WORK / "run", force=True)
        ours.append(time.perf_counter() - t)
        run_ids.add(summary["run_id"])
    assert len(run_ids) == 1, f"the same seed gave different weights: {run_ids}"
    export_run(WORK / "run", WORK / "model", force=True)
    model = CurveModel.load(WORK / "model")
    quality = fit_quality(model, targets)
    codes = model.encode(family.sample(5000, seed=55)[0])
    quality.update(seconds=min(ours), seconds_all=ours, latent_mean=codes.mean(0).tolist(),
                   latent_std=codes.std(0).tolist(), epochs=summary["epochs"])

    if example_epochs >= 100:
        ex_model, per_epoch = train_example(curves, epochs=example_epochs)
        _, res, _, _ = nelder_mead_fit(ex_model.dec, targets[:300])
        example = {"epochs_timed": example_epochs, "seconds_per_epoch": float(np.median(per_epoch)),
                   "residual_median": float(np.median(res)), "residual_p90": float(np.percentile(res, 90)),
                   "quality": "measured"}
    else:
        example = {"epochs_timed": rounds, "seconds_per_epoch": min(example_epoch), "seconds_each": example_epoch,
                   **{k: EXAMPLE_REFERENCE[k] for k in ("residual_median", "residual_p90")},
                   "quality": "reference figures of a full 100-epoch run"}
    example["seconds_100_epochs"] = example["seconds_per_epoch"] * 100
    result = {"curvae": quality, "example": example, "speedup": example["seconds_100_epochs"] / min(ours)}
    save("train", result)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--example-epochs", type=int, default=3,
                    help="example epochs to time, one per round (100 or more: run it whole, measure its quality)")
    ap.add_argument("--n-targets", type=int, default=2000)
    r = main(**vars(ap.parse_args()))
    print(f"curvae: {r['curvae']['seconds']:.1f}s, residual median {r['curvae']['residual_median']:.4f} "
          f"p90 {r['curvae']['residual_p90']:.4f}; example: {r['example']['seconds_100_epochs']:.0f}s for 100 epochs; "
          f"speed-up {r['speedup']:.1f}x")
