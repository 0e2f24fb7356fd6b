"""``encode``, ``decode`` and ``fit`` over Dask arrays chunked along rows; they return Dask arrays, lazily.

Each block runs the runtime's chunk kernel (:mod:`curvae.io.chunks`)
with the index of its first row, so errors name the row in the whole array
and seeded draws follow the row, not the chunking: ``compute()`` gives what
the same call on the whole numpy array gives. Every ``map_blocks`` call states
its ``dtype`` and ``meta``, so Dask never runs onnxruntime on an empty probe
block. The model enters the graph once (one key, pickled as its verified
graph bytes) and each worker process opens its sessions once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curvae.core.errors import InputError
from curvae.core.seeding import Seed, entropy
from curvae.io.chunks import (
    Skipped,
    decode_chunk,
    encode_chunk,
    fit_chunk,
    fit_columns_for,
    one_seed,
)
from curvae.runtime.fitting.engine import FitResult
from curvae.runtime.model import CurveModel
from curvae.scale.cluster import distributed_module


def _da():
    distributed_module()  # the one-line error when the extra is missing
    import dask
    import dask.array as da

    return dask, da


def check_rows(x: Any, n_cols: int, name: str):
    """``x`` must be a 2-D Dask array of real numbers with ``n_cols`` columns in a single chunk."""
    _, da = _da()
    if not isinstance(x, da.Array):
        raise InputError(f"{name} is a {type(x).__name__}, not a dask.array.Array; wrap it with "
                         f"dask.array.from_array({name}, chunks=(rows, -1)) or call CurveModel directly")
    if x.ndim != 2 or x.shape[1] != n_cols:
        raise InputError(f"{name} has shape {x.shape}; it must be 2-D (rows, {n_cols})")
    if np.dtype(x.dtype).kind not in "fiu":
        raise InputError(f"{name} has dtype {x.dtype}; it must hold real numbers: {name}.astype('float32')")
    if len(x.chunks[1]) != 1:
        raise InputError(f"{name} is chunked along its {n_cols} columns (chunks {x.chunks[1]}); each task needs "
                         f"whole rows: pass {name}.rechunk({{1: -1}})")
    if any(c == 0 for c in x.chunks[0]):
        x = x.rechunk({0: tuple(c for c in x.chunks[0] if c)})
    return x


def model_key(model: CurveModel, threads: int | None = None):
    """The model as one Dask key (pickled once into the graph), with ``threads`` onnxruntime threads per task."""
    dask, _ = _da()
    m = model if threads is None else model.with_threads(threads)
    return dask.delayed(m, pure=True, traverse=False)


def block_start(block_info: dict | None) -> int:
    """The row of the whole array where the block ``map_blocks`` is computing starts."""
    return int(block_info[0]["array-location"][0][0])


def _encode_block(x: np.ndarray, model: CurveModel, sample: bool, seed: int, block_info=None) -> np.ndarray:
    return encode_chunk(model, x, start=block_start(block_info), sample=sample, seed=seed)


def _decode_block(z: np.ndarray, model: CurveModel, block_info=None) -> np.ndarray:
    return decode_chunk(model, z, start=block_start(block_info))


def encode(model: CurveModel, curves, *, sample: bool = False, seed: Seed = None, threads: int | None = 1):
    """Codes of ``curves``, lazily: :meth:`CurveModel.encode` per block.

    Parameters
    ----------
    curves : dask.array.Array of shape (n, n_points), chunked along rows only
    sample, seed
        As in :meth:`CurveModel.encode`; one seed serves the whole array.
    threads : int or None
        onnxruntime intra-op threads per task: 1 by default, Dask's own threads
        being the parallelism (see :mod:`curvae.scale.cluster`); None keeps the model's.

    Returns
    -------
    dask.array.Array of shape (n, latent_dim), float32, chunked like ``curves``
    """
    _, da = _da()
    x = check_rows(curves, model.n_points, "curves")
    return da.map_blocks(_encode_block, x, model=model_key(model, threads), sample=bool(sample),
                         seed=entropy(seed) if sample else 0, chunks=(x.chunks[0], (model.latent_dim,)),
                         dtype=np.float32, meta=np.empty((0, 0), np.float32))


def decode(model: CurveModel, codes, *, threads: int | None = 1):
    """Curves of ``codes``, lazily: :meth:`CurveModel.decode` per block.

    Parameters
    ----------
    codes : dask.array.Array of shape (n, latent_dim), chunked along rows only
    threads : int or None
        onnxruntime intra-op threads per task (1 by default; None keeps the model's).

    Returns
    -------
    dask.array.Array of shape (n, n_points), float32
    """
    _, da = _da()
    z = check_rows(codes, model.latent_dim, "codes")
    return da.map_blocks(_decode_block, z, model=model_key(model, threads), chunks=(z.chunks[0], (model.n_points,)),
                         dtype=np.float32, meta=np.empty((0, 0), np.float32))


def _fit_block(x: np.ndarray, model: CurveModel, skip_bad_rows: bool, fit_kw: dict, block_info=None) -> np.ndarray:
    out = np.empty((1,), object)
    out[0] = fit_chunk(model, x, start=block_start(block_info), skip_bad_rows=skip_bad_rows, **fit_kw)
    return out


def _field_block(b: np.ndarray, field: str, field_dtype: np.dtype) -> np.ndarray:
    return np.asarray(getattr(b[0][0], field), dtype=field_dtype)


def _skipped_block(b: np.ndarray) -> np.ndarray:
    out = np.empty((1,), object)
    out[0] = b[0][1]
    return out


def fit_blocks(model_ref, x, *, skip_bad_rows: bool, fit_kw: dict):
    """One object per block of ``x``: its ``(FitResult, Skipped)``; the graph every fit output builds on."""
    _, da = _da()
    return da.map_blocks(_fit_block, x, model=model_ref, skip_bad_rows=skip_bad_rows, fit_kw=fit_kw,
                         chunks=(tuple(1 for _ in x.chunks[0]),), drop_axis=1, dtype=object,
                         meta=np.empty((0,), object))


@dataclass(frozen=True)
class FitArrays:
    """A fit over a Dask array, lazily: one Dask array per :class:`FitResult` field.

    Attributes
    ----------
    fields : dict of str to dask.array.Array
        ``z`` (n, latent_dim), ``residual``, ``success``, ``nfev``, ``message``,
        ``rms``, ``n_obs`` (n,), ``x_hat`` (n, n_points) and, with uncertainty,
        ``cov``, ``z_std``, ``sigma``, ``chi2``, ``band_lo``, ``band_hi``,
        ``ill_conditioned``, ``ood`` (when the bundle records held-out
        residuals) and ``ood_reason``; ``samples`` with ``method="mcmc"``.
        Computing several together (``dask.compute``, ``da.store``) fits each block once.
    blocks : dask.array.Array
        One object per block: its ``(FitResult, Skipped)``.
    ood_threshold : float or None
        The out-of-family threshold (known without fitting anything).
    """

    fields: dict
    blocks: Any
    ood_threshold: float | None

    def skipped(self):
        """The rows ``skip_bad_rows`` left out, lazily: a Dask object array, one :class:`Skipped` per block."""
        return self.blocks.map_blocks(_skipped_block, dtype=object, meta=np.empty((0,), object))

    def compute(self, **kwargs: Any) -> tuple[FitResult, Skipped]:
        """Fit every block once and return the whole :class:`FitResult` and the skipped rows."""
        dask, _ = _da()
        values, skipped = dask.compute(self.fields, self.skipped(), **kwargs)
        res = FitResult(**values, ood_threshold=self.ood_threshold)
        return res, Skipped.join([s for s in skipped if len(s)])


def fit(model: CurveModel, targets, *, skip_bad_rows: bool = False, threads: int | None = 1,
        **fit_kw: Any) -> FitArrays:
    """Fit every row of ``targets`` (on the model grid; NaN = unobserved), lazily.

    Parameters
    ----------
    targets : dask.array.Array of shape (n, n_points), chunked along rows only
    skip_bad_rows : bool
        See :func:`curvae.io.chunks.fit_chunk`: without it a bad row
        fails the computation with an error naming its row in ``targets``.
    threads : int or None
        onnxruntime intra-op threads per task (1 by default; None keeps the model's).
    **fit_kw
        Options of :meth:`CurveModel.fit` (not ``grid``/``observations``:
        targets on their own grids are fitted in one process).

    Returns
    -------
    FitArrays
    """
    from curvae.runtime.fitting.uncertainty import ood_threshold

    _, da = _da()
    for bad in ("grid", "observations", "row_offset"):
        if fit_kw.get(bad) is not None:
            raise InputError(f"{bad}= is not available over Dask arrays; fit targets on their own grids with "
                             "CurveModel.fit in one process")
    x = check_rows(targets, model.n_points, "targets")
    kw = one_seed(fit_kw)
    blocks = fit_blocks(model_key(model, threads), x, skip_bad_rows=skip_bad_rows, fit_kw=kw)
    specs = fit_columns_for(model, x.shape[0], kw)
    uncertainty = "ood" in specs
    threshold = None
    if uncertainty:
        threshold = ood_threshold(model.manifest.fit_residuals, float(kw.get("ood_quantile", 0.99)))
        if threshold is None:
            del specs["ood"]
    specs.pop("ood_threshold", None)
    fields = {}
    for name, (shape, dtype) in specs.items():
        dt = np.dtype(bool if name == "ood" else dtype)
        tail = shape[1:]
        fields[name] = da.map_blocks(_field_block, blocks, field=name, field_dtype=dt, chunks=(x.chunks[0], *((t,) for t in tail)),
                                     new_axis=list(range(1, len(shape))) or None, dtype=dt,
                                     meta=np.empty((0,) * len(shape), dt))
    return FitArrays(fields=fields, blocks=blocks, ood_threshold=threshold)
