"""File-level operations behind the CLI: read inputs, run the model, write outputs atomically."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from curvae.core.atomic import NpzStreamWriter, check_can_write, save_npy
from curvae.core.errors import DataFileError, InputError
from curvae.runtime.arrays import as_matrix
from curvae.runtime.curves_io import CurveSource, load_curves, open_curves
from curvae.runtime.fit import FitResult, summarise_fits
from curvae.runtime.model import CurveModel
from curvae.runtime.onnxrt import installed_builds
from curvae.runtime.providers import available_providers
from curvae.runtime.targets import LONG_COLUMNS, read_fit_targets

PathLike = str | os.PathLike[str]


def _check_out(out: PathLike, suffix: str, force: bool) -> Path:
    p = Path(out)
    if p.suffix.lower() != suffix:
        raise InputError(f"--out {str(p)!r} must end in {suffix}; rename it, e.g. {p.with_suffix(suffix).name!r}")
    check_can_write(p, force=force)
    return p


def encode_file(model: CurveModel, curves: PathLike, out: PathLike, *, sample: bool = False,
                seed: int | None = None, force: bool = False) -> np.ndarray:
    """Encode the curves in ``curves`` and save the codes, shape (n, latent_dim), as ``.npy``."""
    dest = _check_out(out, ".npy", force)
    x = load_curves(curves, n_points=model.n_points).curves
    codes = model.encode(x, sample=sample, seed=seed)
    save_npy(dest, codes)
    return codes


def decode_file(model: CurveModel, codes: PathLike, out: PathLike, *, force: bool = False) -> np.ndarray:
    """Decode the codes in ``codes`` (``.npy``, ``.csv`` or ``.npz`` key ``z``) and save the curves."""
    dest = _check_out(out, ".npy", force)
    z = load_curves(codes, n_points=model.latent_dim, key="z", min_points=1, what="codes").curves
    curves = model.decode(z)
    save_npy(dest, curves)
    return curves


def sample_file(model: CurveModel, n: int, out: PathLike, *, seed: int | None = None,
                force: bool = False) -> np.ndarray:
    """Draw ``n`` prior samples and save the decoded curves, shape (n, n_points)."""
    dest = _check_out(out, ".npy", force)
    curves = model.sample(n, seed=seed)
    save_npy(dest, curves)
    return curves


def _column(res: FitResult, name: str, *, first_chunk: bool) -> np.ndarray:
    """The rows of one output array for one chunk, in the .npz's encoding."""
    if name == "ood":
        return np.full(res.z.shape[0], -1, np.int8) if res.ood is None else res.ood.astype(np.int8)
    if name == "ood_threshold":  # one value for the whole file, written with the first chunk
        return np.array([np.nan if res.ood_threshold is None else res.ood_threshold])[: int(first_chunk)]
    return getattr(res, name)


def fit_file(model: CurveModel, targets: PathLike, out: PathLike, *, force: bool = False,
             chunk: int = 4096, progress: Callable[[int, int], None] | None = None,
             grid: PathLike | None = None, clip_range: bool = False,
             columns: tuple[str, str, str] = LONG_COLUMNS, **fit_kw: Any) -> dict[str, Any]:
    """Fit every target in ``targets`` and save the results as ``.npz``.

    The keys are ``z``, ``residual``, ``rms``, ``n_obs``, ``success``, ``nfev``,
    ``message`` and ``x_hat``; with uncertainty (the default), also ``cov``,
    ``z_std``, ``sigma``, ``chi2``, ``band_lo``, ``band_hi``,
    ``ill_conditioned``, ``ood`` (int8: 1 flagged, 0 not, -1 unavailable for
    this bundle), ``ood_threshold`` (one value, NaN when unavailable) and
    ``ood_reason``. Targets on their own grid (an ``.npz`` with a ``grid``,
    ``grid=FILE``, or a long-format CSV, see :mod:`curvae.runtime.targets`)
    add ``x_obs`` and ``x_hat_obs`` (their points, NaN-padded), and long
    format adds ``ids``.

    Targets on the model grid stream in chunks of ``chunk`` rows (a ``.npy``
    is read chunk by chunk from disk) and results go to disk chunk by chunk,
    so memory stays bounded however many targets there are; NaN marks an
    unobserved point. ``progress(done, total)`` is called after each chunk.

    Returns
    -------
    dict
        :meth:`FitResult.summary` over all targets, with ``n_ood``, the
        layout read (``kind``), the CSV ``header`` if any and the points
        ``clip_range`` dropped.
    """
    dest = _check_out(out, ".npz", force)
    if not isinstance(chunk, int) or chunk < 1:
        raise InputError(f"chunk={chunk!r} must be a positive integer")
    read = None
    if grid is not None or Path(targets).suffix.lower() != ".npy":
        read = read_fit_targets(targets, model_grid=model.grid, latent_dim=model.latent_dim, grid=grid,
                                clip_range=clip_range, columns=columns)
    info = {"kind": "model grid" if read is None else read.kind, "header": None if read is None else read.header,
            "dropped": 0 if read is None else read.dropped}
    if read is not None and read.observations is not None:
        res = model.fit(None, observations=read.observations, **fit_kw)
        extra = {"x_obs": read.observations.x.astype(np.float64), "x_hat_obs": res.x_hat_obs}
        if read.ids is not None:
            extra["ids"] = read.ids
        specs = _specs(len(res.z), model, fit_kw, extra)
        writer = NpzStreamWriter(dest, specs)
        try:
            for name in specs:
                writer.append(name, extra[name] if name in extra else _column(res, name, first_chunk=True))
            writer.commit()
        except BaseException:
            writer.discard()
            raise
        if progress is not None:
            progress(len(res.z), len(res.z))
        return {**res.summary(), "n_ood": None if res.ood is None else int(res.ood.sum()), **info}
    source = open_curves(targets, n_points=model.n_points) if read is None else CurveSource(read.values)
    n, p = source.shape[0], model.n_points
    specs = _specs(n, model, fit_kw, {})
    writer = NpzStreamWriter(dest, specs)
    parts: dict[str, list[np.ndarray]] = {"residual": [], "success": [], "nfev": []}
    n_ood: int | None = None
    try:
        for i in range(0, n, chunk):
            rows = as_matrix(source.read(i, i + chunk), name="targets", n_cols=p, col_name="points", row_offset=i,
                             allow_nan=True)
            res = model.fit(rows, **fit_kw)
            for name in specs:
                writer.append(name, _column(res, name, first_chunk=i == 0))
            for name, kept in parts.items():
                kept.append(getattr(res, name))
            if res.ood is not None:
                n_ood = (n_ood or 0) + int(res.ood.sum())
            if progress is not None:
                progress(min(i + chunk, n), n)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    # (n,) each: 17 bytes per target, 17 MB per million
    summary = summarise_fits(*(np.concatenate(parts[k]) for k in ("residual", "success", "nfev")))
    return {**summary, "n_ood": n_ood, **info}


def _specs(n: int, model: CurveModel, fit_kw: dict, extra: dict[str, np.ndarray]) -> dict:
    """Name → (shape, dtype) of every array ``fit_file`` writes."""
    d, p = model.latent_dim, model.n_points
    specs = {"z": ((n, d), "float32"), "residual": ((n,), "float64"), "rms": ((n,), "float64"),
             "n_obs": ((n,), "int64"), "success": ((n,), "bool"), "nfev": ((n,), "int64"), "message": ((n,), "U64"),
             "x_hat": ((n, p), "float32")}
    if fit_kw.get("uncertainty", True):
        specs.update({"cov": ((n, d, d), "float64"), "z_std": ((n, d), "float64"), "sigma": ((n,), "float64"),
                      "chi2": ((n,), "float64"), "band_lo": ((n, p), "float32"), "band_hi": ((n, p), "float32"),
                      "ill_conditioned": ((n,), "bool"), "ood": ((n,), "int8"), "ood_threshold": ((1,), "float64"),
                      "ood_reason": ((n,), "U160")})
    if fit_kw.get("method") == "mcmc":
        from curvae.runtime.mcmc import McmcOptions

        specs["samples"] = ((n, McmcOptions().n_samples, d), "float32")
    for name, arr in extra.items():
        specs[name] = (arr.shape, "U64" if arr.dtype.kind in "US" else str(arr.dtype))
    return specs


def load_sigma(sigma: float | None, sigma_file: PathLike | None) -> float | np.ndarray | None:
    """The noise level from ``--sigma S`` or ``--sigma-file F`` (.npy or .csv of n_points values), or None."""
    if sigma is not None and sigma_file is not None:
        raise InputError("--sigma and --sigma-file were both given; pass one noise level or one file of them")
    if sigma_file is None:
        return sigma
    path = Path(sigma_file)
    try:
        values = np.load(path, allow_pickle=False) if path.suffix == ".npy" else \
            np.loadtxt(path, delimiter=",", ndmin=1)
    except (OSError, ValueError) as exc:
        raise DataFileError(f"--sigma-file {str(path)!r} is not a readable .npy or .csv of numbers ({exc}); "
                            "write one noise level per curve point") from None
    return np.asarray(values, dtype=np.float64).ravel()


def describe(model: CurveModel) -> dict[str, Any]:
    """The manifest summary shown by ``curvae info``."""
    m = model.manifest
    return {
        "path": str(model.path),
        "format_version": m.format_version,
        "run_id": m.run_id,
        "family": m.family.get("name"),
        "n_points": m.n_points,
        "latent_dim": m.latent_dim,
        "grid": f"[{m.grid[0]:g} .. {m.grid[-1]:g}] ({len(m.grid)} points)",
        "opset": m.opset,
        "ir_version": m.ir_version,
        "min_onnxruntime": m.runtime_needed(model.variant),
        "onnxruntime": ", ".join(installed_builds()) or "unknown build",
        "producer": m.producer,
        "training": {"epochs": m.training.epochs, "n_train": m.training.n_train, "final": m.training.final,
                     "seconds": m.training.seconds, "device": m.training.device},
        "parity": {"atol": m.parity.atol, "max_abs": m.parity.max_abs, "max_rel": m.parity.max_rel,
                   "passed": m.parity.passed, "providers": list(m.parity.providers)},
        "variants": {k: {"max_abs_x_hat": v.max_abs["x_hat"], "budget": v.budget,
                         "decode_rows_per_s": round(v.decode_rows_per_s),
                         "fit_residual_median": v.fit_residual_median} for k, v in m.variants.items()},
        "variant_loaded": model.variant,
        "available_providers": available_providers(),
        "running_on": {g: p[0] for g, p in model.providers.items()},
        "nodes_executed_by": placement_summary(model.placement()),
    }


def placement_summary(placement: dict[str, dict[str, list[str]]]) -> dict[str, str]:
    """``{"encoder": "7 of 7 nodes on CPUExecutionProvider", ...}`` from :meth:`CurveModel.placement`."""
    out = {}
    for graph, placed in placement.items():
        total = sum(len(ops) for ops in placed.values())
        out[graph] = "; ".join(f"{len(ops)} of {total} nodes on {p}" for p, ops in placed.items())
    return out
