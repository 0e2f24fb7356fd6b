"""Targets as observations of the decoded curve: missing points, another x-grid, ragged curves.

Each target *i* is written as ``y_i ≈ W_i · decode(z)``, where ``W_i`` maps the
model grid to the target's own points. ``W_i`` is stored as index/weight
arrays, never as a dense (n, m, P) tensor: observation *j* of target *i* is

    w0[i, j] · x̂[i, i0[i, j]] + w1[i, j] · x̂[i, i0[i, j] + 1]

- a point of the model grid (a masked target) has ``w0 = 1, w1 = 0``;
- a point between grid points is linearly interpolated (``w1`` is the
  fraction of the way to the next grid point); linear interpolation of the
  decoded curve costs an error of order ``h²·|x̂''|/8`` (h the grid step),
  about 1e-4 on the Beta log-PDFs' grid away from the ends;
- a missing value (NaN) or padding has ``w0 = w1 = 0`` and ``y = 0``, so it
  adds nothing to the cost, the gradient or the Jacobian.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from curvae.core.errors import BadRowsError, InputError


@dataclass(frozen=True)
class Observations:
    """The observed points of ``n`` targets against a model grid of ``P`` points.

    Attributes
    ----------
    values : ndarray of shape (n, m), float32
        Observed values; 0 where unobserved or padding.
    i0 : ndarray of shape (n, m), int64
        Left model-grid index of each observation (``i0 + 1 < P``).
    w0, w1 : ndarray of shape (n, m), float32
        Interpolation weights; both 0 where unobserved.
    x : ndarray of shape (n, m), float64
        The targets' own x of each observation (NaN for padding).
    observed : ndarray of shape (n, m), bool
    aligned : bool
        The observations are the model grid's own points (m = P, a mask):
        then applying W is a multiplication by the mask, with no gather.
    """

    values: NDArray[np.float32]
    i0: NDArray[np.int64]
    w0: NDArray[np.float32]
    w1: NDArray[np.float32]
    x: NDArray[np.float64]
    observed: NDArray[np.bool_]
    aligned: bool = False

    _FIELDS = ("values", "i0", "w0", "w1", "x", "observed")

    @property
    def n_obs(self) -> NDArray[np.int64]:
        return self.observed.sum(axis=1)

    def apply(self, curves: NDArray) -> NDArray:
        """Model-grid curves (n, P) at the observed points: (n, m); 0 where unobserved."""
        if self.aligned:
            return curves * self.observed
        a = np.take_along_axis(curves, self.i0, axis=-1)
        b = np.take_along_axis(curves, self.i0 + 1, axis=-1)
        return self.w0 * a + self.w1 * b

    def apply_jacobian(self, jac: NDArray[np.float32]) -> NDArray[np.float32]:
        """A Jacobian (n, d, P) at the observed points: (n, d, m)."""
        if self.aligned:
            return jac * self.observed[:, None, :]
        idx = self.i0[:, None, :]
        a = np.take_along_axis(jac, np.broadcast_to(idx, (jac.shape[0], jac.shape[1], idx.shape[2])), axis=2)
        b = np.take_along_axis(jac, np.broadcast_to(idx + 1, a.shape), axis=2)
        return self.w0[:, None, :] * a + self.w1[:, None, :] * b

    def tile(self, k: int) -> Observations:
        """The same observations repeated ``k`` times along the targets (for multi-start)."""
        return Observations(*(np.tile(getattr(self, f), (k, 1)) for f in self._FIELDS), aligned=self.aligned)

    def take(self, rows: NDArray) -> Observations:
        return Observations(*(getattr(self, f)[rows] for f in self._FIELDS), aligned=self.aligned)

    def impute(self, base: NDArray[np.float32], grid: NDArray[np.float64]) -> NDArray[np.float32]:
        """Full model-grid curves for the encoder. A mask's gaps are interpolated linearly between the
        observed neighbours; other grids' values are interpolated onto the model grid inside each
        target's observed x-range, and take ``base`` (n, P) outside it."""
        if self.aligned:  # a mask: linear interpolation across each gap, the nearest observed value past the ends
            return _fill_gaps(self.values, self.observed, grid)
        out = base.copy()
        for i in range(self.values.shape[0]):
            ok = self.observed[i]
            xs, ys = self.x[i, ok], self.values[i, ok]
            inside = (grid >= xs.min()) & (grid <= xs.max())
            out[i, inside] = np.interp(grid[inside], xs, ys)
        return out


def _fill_gaps(values: NDArray[np.float32], observed: NDArray[np.bool_], grid: NDArray) -> NDArray[np.float32]:
    """Rows on the model grid with their unobserved points linearly interpolated, all rows at once (flat gathers,
    and the arithmetic in place)."""
    n, p = values.shape
    pos = np.arange(p, dtype=np.int32)
    left = np.where(observed, pos, -1)  # last observed index at or before
    np.maximum.accumulate(left, axis=1, out=left)
    right = np.minimum.accumulate(np.where(observed, pos, p)[:, ::-1], axis=1)[:, ::-1]  # first at or after
    np.copyto(left, right, where=left < 0)
    np.copyto(right, left, where=right >= p)
    g = grid.astype(np.float32)
    rows = np.arange(0, n * p, p, dtype=np.int64)[:, None]
    flat = np.ascontiguousarray(values).ravel()
    vl, vr = flat.take(left + rows), flat.take(right + rows)
    gl = g.take(left)
    span = g.take(right)
    span -= gl
    frac = np.divide(g - gl, span, out=np.zeros((n, p), np.float32), where=span > 0)
    vr -= vl
    vr *= frac
    vr += vl
    return vr


def _min_points(n_obs: NDArray, need: int, names, row_offset: int = 0) -> None:
    short = np.flatnonzero(n_obs < need)
    if short.size:
        i = int(short[0])
        raise BadRowsError(f"target {names(i)} has {int(n_obs[i])} observed points; at least {need} (latent_dim + 1) "
                           "are needed to fit it: drop that target or give more points", short + row_offset)


def on_model_grid(values: NDArray, *, latent_dim: int, row_offset: int = 0) -> Observations:
    """Targets on the model grid, with NaN where a point was not observed.

    ``row_offset`` is the index of the first row in a larger set, for messages.
    """
    v = np.asarray(values, dtype=np.float32)
    n, p = v.shape
    observed = np.isfinite(v)
    _min_points(observed.sum(axis=1), latent_dim + 1, lambda i: str(i + row_offset), row_offset)
    # Aligned observations are applied as a mask; i0, w0, w1 and x are the equivalent gather
    # (read-only views, no memory), kept so that every Observations means the same thing.
    i0 = np.broadcast_to(np.minimum(np.arange(p), p - 2), (n, p))
    w1 = np.broadcast_to((np.arange(p) == p - 1).astype(np.float32), (n, p))  # the last point: i0 = P-2
    x = np.broadcast_to(np.arange(p, dtype=np.float64), (n, p))
    return Observations(np.where(observed, v, 0).astype(np.float32), i0, 1 - w1, w1, x, observed, aligned=True)


def _prepare_x(x: NDArray, y: NDArray, model_grid: NDArray, *, clip_range: bool, label: str):
    """One target's (x, y): sorted by x, duplicates refused, the model's range enforced or clipped."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float32)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"{label}: {x.size} x values for {y.size} values; give one x per value")
    if not np.isfinite(x).all():
        raise InputError(f"{label}: x[{int(np.flatnonzero(~np.isfinite(x))[0])}] is not finite; every x must be")
    order = np.argsort(x, kind="stable")  # non-monotonic x is sorted, not refused
    x, y = x[order], y[order]
    dup = np.flatnonzero(np.diff(x) == 0)
    if dup.size:
        raise InputError(f"{label}: x = {float(x[dup[0]])!r} appears twice; give each x once (average repeated measurements)")
    lo, hi = model_grid[0], model_grid[-1]
    outside = (x < lo) | (x > hi)
    if outside.any():
        if not clip_range:
            raise InputError(f"{label}: x = {float(x[outside][0])!r} is outside the model's grid [{lo:g}, {hi:g}]; "
                             "drop those points, or pass --clip-range (clip_range=True) to drop them and count them")
        x, y = x[~outside], y[~outside]
    return x, y, int(outside.sum())


def on_own_grids(curves: list[tuple[NDArray, NDArray]], model_grid: NDArray, *, latent_dim: int,
                 clip_range: bool = False, names=str) -> tuple[Observations, int]:
    """Targets each on an x-grid of their own (ragged): observations by linear interpolation of the decoded curve.

    Returns the observations and how many points ``clip_range`` dropped.
    """
    model_grid = np.asarray(model_grid, dtype=np.float64)
    prepared, dropped = [], 0
    for i, (x, y) in enumerate(curves):
        xs, ys, k = _prepare_x(x, y, model_grid, clip_range=clip_range, label=f"target {names(i)}")
        prepared.append((xs, ys))
        dropped += k
    n, m = len(prepared), max((len(x) for x, _ in prepared), default=0)
    values = np.zeros((n, m), np.float32)
    xs_all = np.full((n, m), np.nan)
    observed = np.zeros((n, m), bool)
    for i, (x, y) in enumerate(prepared):
        values[i, :len(x)], xs_all[i, :len(x)] = np.nan_to_num(y), x
        observed[i, :len(x)] = np.isfinite(y)
    _min_points(observed.sum(axis=1), latent_dim + 1, names)
    p = model_grid.size
    xq = np.where(observed, xs_all, model_grid[0])
    i0 = np.clip(np.searchsorted(model_grid, xq, side="right") - 1, 0, p - 2)
    w1 = ((xq - model_grid[i0]) / (model_grid[i0 + 1] - model_grid[i0])).astype(np.float32)
    w0 = (1 - w1).astype(np.float32)
    w0[~observed] = 0
    w1[~observed] = 0
    return Observations(values, i0.astype(np.int64), w0, w1, xs_all, observed), dropped


def on_shared_grid(values: NDArray, x: NDArray, model_grid: NDArray, *, latent_dim: int, clip_range: bool = False,
                   names=str) -> tuple[Observations, int]:
    """Targets (n, m) all on one grid ``x`` (m,) of their own; NaN marks unobserved values."""
    v = np.asarray(values, dtype=np.float32)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size != v.shape[1]:
        raise InputError(f"the targets' grid has {x.size} values but the targets have {v.shape[1]} points each; "
                         "give one x per point")
    return on_own_grids([(x, row) for row in v], model_grid, latent_dim=latent_dim, clip_range=clip_range,
                        names=names)
