"""Is the VAE worth it? curvae against PCA on every built-in family and on real spectra, with default settings.

    python benchmarks/bench_families.py          # writes results/families.json and docs/families.md

For each family: the default recipe is trained at d = k (the family's
parameter count) and k + 1 on the family's 5,000 default curves. PCA is
fitted on the same training curves. Both are scored on 300 fresh curves
that neither saw, by the median L2 fit residual in the data's own units
(curvae: the runtime's default fit; PCA: the orthogonal projection, its
exact best fit).

The real spectra are the fermentation spectra that the ``chemotools`` wheel
ships (``datasets/data/fermentation_spectra.csv``): 1,629 mid-infrared
spectra of 1,047 points, with the wavenumbers as the first row. A seeded
permutation holds out 300 spectra as the fresh targets. The other 1,329 are
written, with the grid row, to a CSV that `curvae train --data` reads as it
is. The benchmark installs chemotools only to read that file (``make bench``
installs it with ``--no-deps``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from curvae.core.pca import PCA  # noqa: E402
from curvae.families import FAMILIES, get_family  # noqa: E402

PCA_SIZES = (1, 2, 3, 4, 6, 8, 12, 16)
N_FRESH = 300
DOC = Path(__file__).resolve().parents[1] / "docs" / "families.md"


def spectra_csv() -> Path | None:
    """The fermentation spectra CSV inside the installed chemotools package (not imported), or None."""
    spec = importlib.util.find_spec("chemotools")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "fermentation_spectra.csv"
    return path if path.is_file() else None


def train_and_fit(data_kw: dict, d: int, targets: np.ndarray, work: Path) -> dict:
    """Train the default recipe at latent size ``d``, export it, fit ``targets``; median residual and seconds."""
    from curvae.runtime import CurveModel
    from curvae.training.config import DataConfig, ModelConfig, RunConfig
    from curvae.training.export_run import export_run
    from curvae.training.loop import train

    cfg = RunConfig(data=DataConfig(**data_kw), model=ModelConfig(latent_dim=d))
    run, bundle = work / f"run{d}", work / f"model{d}"
    t = time.perf_counter()
    summary = train(cfg, run, force=True)
    seconds = time.perf_counter() - t
    export_run(run, bundle, force=True)
    fit = CurveModel.load(bundle).fit(targets)
    return {"residual_median": float(np.median(fit.residual)), "residual_p90": float(np.quantile(fit.residual, 0.9)),
            "train_seconds": seconds, "steps": summary["steps"], "converged": float(fit.success.mean())}


def one(name: str, train_curves: np.ndarray, targets: np.ndarray, data_kw: dict, sizes: tuple[int, ...],
        k: int | None, linear_dim: int | None) -> dict:
    basis = PCA.fit(train_curves)
    pca = basis.median_by_size(targets, PCA_SIZES)
    row = {"name": name, "k": k, "linear_dim": linear_dim, "n_train": int(len(train_curves)),
           # float32 resolution of the curves' L2 norms: a float32 model cannot resolve residuals below it
           "float32_floor": float(2.0 ** -23 * np.median(np.linalg.norm(targets.astype(np.float64), axis=1))),
           "n_fresh": int(len(targets)), "n_points": int(targets.shape[1]), "pca": pca, "curvae": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for d in sizes:
            res = train_and_fit(data_kw, d, targets, Path(tmp))
            res["pca_same_d"] = float(np.median(basis.residuals(targets, d)))
            res["pca_3d"] = float(np.median(basis.residuals(targets, 3 * d))) if 3 * d <= 64 else None
            res["pca_components_worth"] = basis.components_to_match(targets, res["residual_median"])
            row["curvae"][d] = res
            print(f"  {name} d={d}: curvae {res['residual_median']:.4g} vs PCA {res['pca_same_d']:.4g} "
                  f"(worth {res['pca_components_worth']} components) in {res['train_seconds']:.1f}s", flush=True)
    return row


def main(families: list[str] | None = None, spectra: bool = True) -> dict:
    from curvae.training.config import DataConfig
    from curvae.training.data import build_dataset

    rows = []
    for name in families or list(FAMILIES):
        fam = get_family(name)
        k = len(fam.params)
        data_kw = {"family": name}
        train_curves = build_dataset(DataConfig(**data_kw), seed=0).train  # exactly the curves the model trains on
        targets, _ = fam.sample(N_FRESH, seed=12345)
        rows.append(one(name, train_curves, targets, data_kw, (k, k + 1), k, fam.linear_dim))
    if spectra:
        csv = spectra_csv()
        if csv is None:
            raise SystemExit("chemotools is not installed: pip install --no-deps chemotools==0.5.0 (make bench does)")
        raw = np.loadtxt(csv, delimiter=",", dtype=np.float64)
        grid, curves = raw[0], raw[1:]
        order = np.random.default_rng(2026).permutation(len(curves))
        fresh, rest = curves[order[:N_FRESH]], curves[order[N_FRESH:]]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "fermentation_train.csv"
            np.savetxt(path, np.vstack([grid, rest]), delimiter=",", fmt="%.9g")
            train_curves = build_dataset(DataConfig(data=str(path)), seed=0).train
            rows.append(one("fermentation spectra (chemotools)", train_curves, fresh.astype(np.float32),
                            {"data": str(path)}, (2, 4), None, None))
    payload = {"families": rows, "pca_sizes": list(PCA_SIZES)}
    save("families", payload)
    write_doc(payload)
    return payload


def _fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.2g}" if v < 1e-3 else f"{v:.4g}"


def verdicts(row: dict) -> list[tuple[str, bool]]:
    """The issue's targets for one row: never worse than PCA; nonlinear ≤ PCA(3k); linear ≤ 1e-3 at 3; spectra."""
    out = []
    floor = row.get("float32_floor", 0.0)
    for d, r in row["curvae"].items():
        out.append((f"d={d} ≤ PCA d={d}", r["residual_median"] <= r["pca_same_d"] + floor))
    k = row["k"]
    if k is not None and row["linear_dim"] is None:
        r = row["curvae"][k] if k in row["curvae"] else row["curvae"][str(k)]
        out.append((f"d={k} ≤ PCA d={3 * k}", r["pca_3d"] is not None and r["residual_median"] <= r["pca_3d"]))
    if row["linear_dim"]:
        r = row["curvae"].get(3, row["curvae"].get("3"))
        if r is not None:
            out.append(("d=3 ≤ 1e-3", r["residual_median"] <= 1e-3))
    if k is None:
        r = row["curvae"].get(4, row["curvae"].get("4"))
        out.append(("d=4 ≤ 0.8× PCA d=4", r["residual_median"] <= 0.8 * r["pca_same_d"]))
    return out


def write_doc(payload: dict) -> None:
    sizes = payload["pca_sizes"]
    lines = [
        "# curvae against PCA, family by family",
        "",
        "<!-- Written by benchmarks/bench_families.py (make bench) from benchmarks/results/families.json. -->",
        "",
        "Median L2 fit residual on 300 fresh curves that neither method saw, in the data's own units, with",
        "**default settings** (`curvae train --family NAME --latent-dim d`, `curvae export`, `curvae fit`). PCA is",
        "fitted on the same training curves, and its residual is the exact orthogonal projection.",
        "k is the family's parameter count. \"Worth\" is the number of PCA components that curvae's error is worth:",
        "the fewest that reach it. \"≤ PCA\" allows the float32 resolution of the curves (2⁻²³ × their median",
        "norm, a few 1e-6 for the log-PDFs), which no float32 model can go below while PCA is scored in float64.",
        "",
        "| curves | k | " + " | ".join(f"PCA d={d}" for d in sizes) + " | curvae d=k | curvae d=k+1 | worth (k, k+1) "
        "| train s (k) | targets |",
        "|---|---|" + "---|" * len(sizes) + "---|---|---|---|---|",
    ]
    for row in payload["families"]:
        cur = list(row["curvae"].values())
        checks = verdicts(row)
        lines.append(
            f"| {row['name']} | {row['k'] if row['k'] is not None else 'd = 2, 4'} | "
            + " | ".join(_fmt(row["pca"].get(str(d), row["pca"].get(d))) for d in sizes)
            + f" | {_fmt(cur[0]['residual_median'])} | {_fmt(cur[1]['residual_median'])} | "
            f"{cur[0]['pca_components_worth']}, {cur[1]['pca_components_worth']} | {cur[0]['train_seconds']:.1f} | "
            + "; ".join(f"{label}: {'met' if ok else 'MISSED'}" for label, ok in checks) + " |")
    lines += [
        "",
        "What the rows say:",
        "",
        "- `beta`, `gamma` and `normal` are exponential families: their log-PDFs are exactly linear in three fixed",
        "  functions, so PCA with 3 components is exact (its residual is float rounding). At d = 2 curvae is far",
        "  better than PCA; at d = 3 a three-line PCA is as good as anything, and `curvae train` says so.",
        "- `peak`, `logistic`, `damped` and `planck` bend. There one latent dimension per parameter is worth",
        "  several principal components.",
        "- The fermentation spectra are 1,629 measured mid-infrared spectra (`chemotools` 0.5.0), 1,047 points",
        "  each. A seeded permutation (seed 2026) holds out 300 of them as the fresh targets, and the model trains",
        "  on the other 1,329 (its own 10% validation split included), read from a CSV whose first row is the grid.",
        "",
        "Measured on a 2-core CPU; the training time is the default 12,000-step budget.",
        "",
    ]
    DOC.write_text("\n".join(lines))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", nargs="*", help="Only these families (default: all)")
    ap.add_argument("--no-spectra", action="store_true")
    args = ap.parse_args()
    main(args.families, spectra=not args.no_spectra)
