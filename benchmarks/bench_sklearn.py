"""curvae.sklearn.CurveVAE against its targets: grid search end to end, transform cost, pickle size.

    python benchmarks/bench_sklearn.py        # writes results/sklearn.json

- ``GridSearchCV(CurveVAE(preset="fast"), {"latent_dim": [1, 2, 3]}, cv=3)`` on 2,000 Beta curves: which size it
  picks (PCA is exact at 3) and how long the search takes (9 fits and the refit, each a full 12,000-step run).
- ``transform`` of 100,000 curves against ``CurveModel.encode`` on the same bundle, float32 and float64 input,
  best of interleaved rounds.
- The pickled fitted estimator against the bundle's size on disk.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402


def main() -> dict:
    from sklearn.model_selection import GridSearchCV

    from curvae.families import get_family
    from curvae.sklearn import CurveVAE

    x, _ = get_family("beta").sample(2000, seed=0)
    t = time.perf_counter()
    search = GridSearchCV(CurveVAE(preset="fast", random_state=0), {"latent_dim": [1, 2, 3]}, cv=3).fit(x)
    grid_s = time.perf_counter() - t
    vae = search.best_estimator_
    print(f"grid search: picked {search.best_params_} in {grid_s:.0f}s; mean test scores "
          f"{[round(float(s), 6) for s in search.cv_results_['mean_test_score']]}", flush=True)

    big, _ = get_family("beta").sample(100_000, seed=1)
    big64 = big.astype(np.float64)
    model = vae.bundle_
    rounds = {"transform": [], "transform_f64": [], "encode": []}
    for _ in range(7):  # interleaved: the host is noisy
        for name, fn in (("encode", lambda: model.encode(big)), ("transform", lambda: vae.transform(big)),
                         ("transform_f64", lambda: vae.transform(big64))):
            t = time.perf_counter()
            fn()
            rounds[name].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in rounds.items()}
    print(f"100k rows: encode {best['encode']*1e3:.1f} ms, transform {best['transform']*1e3:.1f} ms "
          f"({best['transform'] / best['encode']:.2f}x), float64 input {best['transform_f64']*1e3:.1f} ms "
          f"({best['transform_f64'] / best['encode']:.2f}x)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        vae.save(Path(tmp) / "m")
        bundle = sum(p.stat().st_size for p in (Path(tmp) / "m").iterdir())
    pickled = len(pickle.dumps(vae))
    print(f"pickle {pickled:,} bytes, bundle {bundle:,} bytes ({pickled / bundle:.3f}x)")
    payload = {"grid_search": {"best": search.best_params_, "seconds": grid_s, "n_curves": len(x),
                               "mean_test_score": [float(s) for s in search.cv_results_["mean_test_score"]]},
               "transform_100k": {k: v for k, v in best.items()},
               "transform_ratio": best["transform"] / best["encode"],
               "transform_f64_ratio": best["transform_f64"] / best["encode"],
               "pickle_bytes": pickled, "bundle_bytes": bundle, "pickle_ratio": pickled / bundle}
    save("sklearn", payload)
    return payload


if __name__ == "__main__":
    main()
