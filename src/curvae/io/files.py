"""File-level operations behind the CLI: read inputs, run the model, write outputs atomically."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from curvae.core.atomic import save_npy
from curvae.core.errors import DataFileError, InputError
from curvae.core.seeding import entropy
from curvae.io.chunks import (
    FitTally,
    column,
    decode_chunk,
    emulate_chunk,
    encode_chunk,
    fit_chunk,
    fit_columns_for,
    one_seed,
    param_names_for,
)
from curvae.io.curves import CurveSource
from curvae.io.stores import (
    Finishing,
    RowSource,
    Sink,
    check_output,
    is_zarr,
    open_rows,
    open_sink,
)
from curvae.io.targets import LONG_COLUMNS, read_fit_targets
from curvae.runtime.arrays import check_int
from curvae.runtime.bundle.records import capacity_scores, network_text
from curvae.runtime.engine.onnxrt import installed_builds
from curvae.runtime.engine.providers import available_providers
from curvae.runtime.model import CurveModel

PathLike = str | os.PathLike[str]
Progress = Callable[[int, int], None]

#: Rows per chunk of the streaming commands: 4096 keeps a chunk's working set (probes, Jacobians) small.
STREAM_CHUNK = 4096
#: The same for a ``.zarr`` output, whose chunks are also its unit of compression and of files: 16384 rows
#: fitted 500k targets 15-18% faster than 4096 here, for about 70 MiB more memory.
ZARR_STREAM_CHUNK = 16384


def default_chunk(out: PathLike, chunk: int | None) -> int:
    """``chunk`` if given, else the default rows per chunk for writing ``out``."""
    if chunk is None:
        return ZARR_STREAM_CHUNK if is_zarr(out) else STREAM_CHUNK
    return check_chunk(chunk)


def _progress_rows(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def stream_rows(source: RowSource, sink: Sink, kernel: Callable[[np.ndarray, int], dict[str, np.ndarray]], *,
                chunk: int, progress: Progress | None = None) -> None:
    """Run ``kernel(rows, start)`` over ``source`` in chunks and write what it returns, then commit ``sink``.

    Any failure (or Ctrl-C) discards the sink, so nothing is left under the output's name.
    """
    n = source.shape[0]
    try:
        for i in range(0, n, chunk):
            sink.write_block(i, kernel(source.read(i, min(i + chunk, n)), i))
            _progress_rows(progress, min(i + chunk, n), n)
        sink.commit()
    except BaseException:
        sink.discard()
        raise


def check_chunk(chunk: object) -> int:
    return check_int("chunk", chunk, what="rows per chunk")


def encode_file(model: CurveModel, curves: PathLike, out: PathLike, *, sample: bool = False,
                seed: int | None = None, force: bool = False, chunk: int | None = None,
                progress: Progress | None = None) -> tuple[int, int]:
    """Encode the curves in ``curves`` and save the codes, shape (n, latent_dim).

    ``curves`` is a ``.npy`` or ``.zarr`` (read ``chunk`` rows at a time: by
    default 4096, 16384 for a ``.zarr`` output) or a
    ``.npz``/``.csv``; ``out`` is a ``.npy``, ``.npz`` (key ``z``) or ``.zarr``
    (array ``z``). Returns the shape written.
    """
    dest = check_output(out, force=force)
    chunk = default_chunk(dest, chunk)
    src = open_rows(curves, n_cols=model.n_points, what="curves")
    n, key = src.shape[0], entropy(seed) if sample else 0
    sink = open_sink(dest, {"z": ((n, model.latent_dim), "float32")}, chunk_rows=chunk)
    stream_rows(src, sink, lambda rows, i: {"z": encode_chunk(model, rows, start=i, sample=sample, seed=key)},
                chunk=chunk, progress=progress)
    return n, model.latent_dim


def decode_file(model: CurveModel, codes: PathLike, out: PathLike, *, force: bool = False,
                chunk: int | None = None, progress: Progress | None = None) -> tuple[int, int]:
    """Decode the codes in ``codes`` (``.npy``, ``.zarr``, ``.csv`` or ``.npz`` key ``z``) and save the curves.

    ``out`` is a ``.npy``, ``.npz`` (key ``curves``) or ``.zarr`` (array
    ``curves``). Returns the shape written.
    """
    dest = check_output(out, force=force)
    chunk = default_chunk(dest, chunk)
    src = open_rows(codes, n_cols=model.latent_dim, what="codes", min_cols=1)
    n = src.shape[0]
    sink = open_sink(dest, {"curves": ((n, model.n_points), "float32")}, chunk_rows=chunk)
    stream_rows(src, sink, lambda rows, i: {"curves": decode_chunk(model, rows, start=i)}, chunk=chunk,
                progress=progress)
    return n, model.n_points


def emulate_specs(model: CurveModel, n: int, dest: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """What ``curvae emulate`` writes: ``curves`` (n, n_points), and ``outside`` (n,) where the format holds two."""
    specs = {"curves": ((n, model.n_points), "float32")}
    return specs if dest.suffix.lower() == ".npy" else {**specs, "outside": ((n,), "bool")}


def emulate_file(model: CurveModel, params: PathLike, out: PathLike, *, extrapolate: bool = False,
                 force: bool = False, chunk: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Emulate the curves of the parameter rows in ``params`` (``.npy``, ``.zarr``, ``.csv`` or ``.npz`` key
    ``theta``, one column per parameter in the order of ``model.emulator.names``) and save them.

    ``out`` is a ``.npy`` (the curves), ``.npz`` or ``.zarr`` (``curves`` and ``outside``, the per-row flag of
    parameters outside the training range). Without ``extrapolate`` such a row is an InputError and nothing is
    written. Returns the shape written and the number of rows outside the range.
    """
    emu = model._need_emulator()
    dest = check_output(out, force=force)
    chunk = default_chunk(dest, chunk)
    src = open_rows(params, n_cols=emu.record.k, what="parameters", min_cols=1)
    n = src.shape[0]
    specs = emulate_specs(model, n, dest)
    outside = [0]

    def kernel(rows: np.ndarray, i: int) -> dict[str, np.ndarray]:
        got = emulate_chunk(model, rows, start=i, extrapolate=extrapolate)
        outside[0] += int(got["outside"].sum())
        return {k: got[k] for k in specs}

    stream_rows(src, open_sink(dest, specs, chunk_rows=chunk), kernel, chunk=chunk, progress=progress)
    return {"shape": (n, model.n_points), "outside": outside[0]}


def sample_file(model: CurveModel, n: int, out: PathLike, *, seed: int | None = None,
                force: bool = False) -> np.ndarray:
    """Draw ``n`` prior samples and save the decoded curves, shape (n, n_points)."""
    dest = check_output(out, force=force, allowed=(".npy",))
    curves = model.sample(n, seed=seed)
    save_npy(dest, curves)
    return curves


def fit_file(model: CurveModel, targets: PathLike, out: PathLike, *, force: bool = False,
             chunk: int | None = None, progress: Progress | None = None,
             grid: PathLike | None = None, clip_range: bool = False, skip_bad_rows: bool = False,
             columns: tuple[str, str, str] = LONG_COLUMNS, header: str = "auto", **fit_kw: Any) -> dict[str, Any]:
    """Fit every target in ``targets`` and save the results as ``.npz`` or ``.zarr``.

    ``header`` says how the first row of a wide ``.csv``/``.npz`` is read (a strictly increasing first row
    unlike the others is the targets' grid by default; see :func:`~curvae.io.curves.load_curves`).

    The keys are ``z``, ``residual``, ``rms``, ``n_obs``, ``success``, ``nfev``,
    ``message`` and ``x_hat``; with uncertainty (the default), also ``cov``,
    ``z_std``, ``sigma``, ``chi2``, ``band_lo``, ``band_hi``,
    ``ill_conditioned``, ``ood`` (int8: 1 flagged, 0 not, -1 unavailable for
    this bundle or this row), ``ood_threshold`` (one value, NaN when
    unavailable) and ``ood_reason``. Targets on their own grid (an ``.npz``
    with a ``grid``, ``grid=FILE``, or a long-format CSV, see
    :mod:`curvae.io.targets`) add ``x_obs`` and ``x_hat_obs`` (their
    points, NaN-padded), and long format adds ``ids``. With
    ``skip_bad_rows``, ``skipped_rows`` and ``skipped_reasons`` list the rows
    left unfitted (see :func:`curvae.io.chunks.fit_chunk`).

    Targets on the model grid (``.npy``, ``.zarr``) stream in chunks of
    ``chunk`` rows (by default 4096, 16384 for a ``.zarr`` output), read from disk chunk by chunk, and results go to disk
    chunk by chunk, so memory stays bounded however many targets there are;
    NaN marks an unobserved point. ``progress(done, total)`` is called after
    each chunk.

    Returns
    -------
    dict
        :meth:`FitResult.summary` over all targets, with ``n_ood``,
        ``n_skipped``, the layout read (``kind``), the CSV ``header`` if any
        and the points ``clip_range`` dropped.
    """
    dest = check_output(out, force=force, allowed=(".npz", ".zarr"))
    chunk = default_chunk(dest, chunk)
    read = None
    if grid is not None or Path(targets).suffix.lower() not in (".npy", ".zarr"):
        read = read_fit_targets(targets, model_grid=model.grid, latent_dim=model.latent_dim, grid=grid,
                                clip_range=clip_range, columns=columns, header=header)
    info = {"kind": "model grid" if read is None else read.kind, "header": None if read is None else read.header,
            "dropped": 0 if read is None else read.dropped}
    if read is not None and read.observations is not None:
        return {**_fit_observations(model, read, dest, progress, fit_kw), **info}
    source = open_rows(targets, n_cols=model.n_points, what="targets") if read is None else CurveSource(read.values)
    n = source.shape[0]
    fit_kw = one_seed(fit_kw)
    specs = fit_columns_for(model, n, fit_kw)
    tally = FitTally()

    def kernel(rows: np.ndarray, start: int) -> dict[str, np.ndarray]:
        res, skipped = fit_chunk(model, rows, start=start, skip_bad_rows=skip_bad_rows, **fit_kw)
        tally.add(res, skipped)
        return {name: column(res, name) for name in specs if name != "ood_threshold"}

    sink = open_sink(dest, specs, chunk_rows=chunk)
    names = param_names_for(model, fit_kw)
    stream_rows(source, Finishing(sink, lambda: tally.finish(sink, specs, skip_bad_rows, names)), kernel, chunk=chunk,
                progress=progress)
    return {**tally.summary(), **info}


def _fit_observations(model: CurveModel, read, dest: Path, progress: Progress | None,
                      fit_kw: dict[str, Any]) -> dict[str, Any]:
    """Targets on grids of their own (loaded whole: CSV and .npz are small): one fit, one write."""
    res = model.fit(None, observations=read.observations, **fit_kw)
    extra = {"x_obs": read.observations.x.astype(np.float64), "x_hat_obs": res.x_hat_obs}
    if read.ids is not None:
        extra["ids"] = read.ids
    specs = fit_columns_for(model, len(res.z), fit_kw)
    for name, arr in extra.items():
        specs[name] = (arr.shape, "U64" if arr.dtype.kind in "US" else str(arr.dtype))
    sink = open_sink(dest, specs, chunk_rows=max(len(res.z), 1))
    try:
        for name in specs:
            sink.write(name, 0, extra[name] if name in extra else column(res, name))
        if param_names_for(model, fit_kw):
            sink.put("param_names", np.array(param_names_for(model, fit_kw), dtype="U64"))
        sink.commit()
    except BaseException:
        sink.discard()
        raise
    _progress_rows(progress, len(res.z), len(res.z))
    return {**res.summary(), "n_ood": None if res.ood is None else int(res.ood.sum()), "n_skipped": 0,
            "skipped_first": None}


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
        "network": network_summary(m.training.config.get("model") or {}, m.training.capacity),
        "parity": {"atol": m.parity.atol, "max_abs": m.parity.max_abs, "max_rel": m.parity.max_rel,
                   "passed": m.parity.passed, "providers": list(m.parity.providers)},
        "variants": {k: {"max_abs_x_hat": v.max_abs["x_hat"], "budget": v.budget,
                         "decode_rows_per_s": round(v.decode_rows_per_s),
                         "fit_residual_median": v.fit_residual_median} for k, v in m.variants.items()},
        "baseline": (None if m.baseline is None else
                     {**m.baseline.to_dict(), "verdict": m.baseline.summary(),
                      "linear_is_enough": m.baseline.linear_is_enough}),
        "params": (None if m.params is None else
                   {name: {"range": [lo, hi], "space": t, "held_out_rel_error_median": med, "held_out_rel_error_p90": p90}
                    for name, lo, hi, t, med, p90 in zip(m.params.names, m.params.low, m.params.high,
                                                         m.params.transforms, m.params.rel_error_median,
                                                         m.params.rel_error_p90)}),
        "emulator": (None if m.emulator is None else
                     {"parameters": {name: [lo, hi] for name, lo, hi in zip(m.emulator.names, m.emulator.low,
                                                                           m.emulator.high)},
                      "held_out_error_median": m.emulator.share_median, "held_out_error_p90": m.emulator.share_p90,
                      "vs_latent_fit": m.emulator.error_median / max(m.emulator.fit_residual_median, 1e-300)}),
        "variant_loaded": model.variant,
        "available_providers": available_providers(),
        "running_on": {g: p[0] for g, p in model.providers.items()},
        "nodes_executed_by": placement_summary(model.placement()),
    }


def network_summary(model: dict[str, Any], capacity: dict[str, Any]) -> str:
    """``depth 3 × 256 silu + affine path: deep3, chosen by the capacity search (...)``, from the manifest's
    training record; "unknown" for a bundle whose manifest does not say."""
    if not model:
        return "unknown"
    if not capacity:
        return f"{network_text(model)}, as given"
    return (f"{network_text(model)}: {capacity.get('chosen')}, chosen by the capacity search on held-out fit "
            f"residual median ({capacity_scores(capacity)}) in {capacity.get('seconds')} s of a "
            f"{capacity.get('budget_seconds')} s budget")


def placement_summary(placement: dict[str, dict[str, list[str]]]) -> dict[str, str]:
    """``{"encoder": "7 of 7 nodes on CPUExecutionProvider", ...}`` from :meth:`CurveModel.placement`."""
    out = {}
    for graph, placed in placement.items():
        total = sum(len(ops) for ops in placed.values())
        out[graph] = "; ".join(f"{len(ops)} of {total} nodes on {p}" for p, ops in placed.items())
    return out
