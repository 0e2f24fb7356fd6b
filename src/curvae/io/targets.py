"""Fit targets as users have them: on the model grid (NaN = not observed), on a grid of their own, or long format.

- ``.npy`` / ``.csv`` / ``.npz`` of curves on the model grid, NaN where a
  point was not observed;
- the same with a grid of their own: an ``.npz`` holding ``curves`` and a 1-D
  ``grid`` (of another length, or other values, than the model's), or any
  of them with ``--grid FILE``;
- a long-format CSV with a header ``id,x,y`` (column names configurable): one
  curve per id, each with its own x, in any row order. Results follow the
  order in which ids first appear, and record the ids.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from curvae.core.errors import DataFileError
from curvae.io.curves import is_number, load_curves, read_csv, sniff_delimiter
from curvae.runtime.fitting.observations import (
    Observations,
    on_own_grids,
    on_shared_grid,
)

LONG_COLUMNS = ("id", "x", "y")


@dataclass(frozen=True)
class FitTargets:
    """What a targets file holds, ready for :meth:`CurveModel.fit`.

    ``values`` (n, P) for targets on the model grid (NaN = unobserved), or
    ``observations`` for targets on their own grids; ``ids`` for long format.
    """

    values: NDArray[np.float32] | None
    observations: Observations | None
    ids: NDArray[np.str_] | None
    dropped: int
    header: tuple[str, ...] | None
    kind: str  # "model grid", "own grid" or "long format"


def _grid_file(path: str | os.PathLike[str]) -> NDArray[np.float64]:
    """x values from a .npy or .csv, in float64 (a grid is not rounded to float32)."""
    p = Path(path)
    load_curves(p, what="grid values", min_points=1)  # the file checks, with their messages
    g = np.load(p, allow_pickle=False) if p.suffix.lower() == ".npy" else read_csv(p)[1]
    g = np.asarray(g, dtype=np.float64)
    if g.ndim == 2 and 1 not in g.shape:
        raise DataFileError(f"--grid {str(path)!r} holds a {g.shape[0]}×{g.shape[1]} array; give one row (or column) "
                            "of x values")
    return g.ravel()


def _long_header(path: Path, columns: tuple[str, str, str]) -> tuple[str, list[str]] | None:
    """The delimiter and header of a long-format CSV (one holding all of ``columns``), else None."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = next((line.strip() for line in fh if line.strip() and not line.startswith("#")), "")
    delim = sniff_delimiter(first)
    names = [c.strip() for c in first.split(delim)]
    return (delim, names) if all(c in names for c in columns) else None


def read_long_csv(path: Path, columns: tuple[str, str, str], delim: str,
                  header: list[str]) -> tuple[list[str], list[tuple[NDArray, NDArray]]]:
    """Group a long-format CSV by id, in order of first appearance; empty or NaN y values are dropped."""
    col = {name: header.index(name) for name in columns}
    order: list[str] = []
    points: dict[str, list[tuple[float, float]]] = {}
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader((line for line in fh if line.strip() and not line.startswith("#")), delimiter=delim)
        next(reader)
        for lineno, row in enumerate(reader, start=2):
            try:
                key, xs, ys = (row[col[c]].strip() for c in columns)
            except IndexError:
                raise DataFileError(f"{path.name} row {lineno} has {len(row)} cells; the header names "
                                    f"{len(header)} columns") from None
            for text, name in ((xs, columns[1]), (ys, columns[2])):
                if text and not is_number(text):
                    raise DataFileError(f"{path.name} row {lineno}: {text[:60]!r} is not a number in column "
                                        f"{name!r}")
            x, y = float(xs) if xs else float("nan"), float(ys) if ys else float("nan")
            if key not in points:
                order.append(key)
                points[key] = []
            if np.isfinite(y):
                points[key].append((x, y))
    if not order:
        raise DataFileError(f"{path.name} has a header but no rows; give one row per (id, x, y) point")
    curves = [(np.array([p[0] for p in points[k]]), np.array([p[1] for p in points[k]])) for k in order]
    return order, curves


def read_fit_targets(
    path: str | os.PathLike[str],
    *,
    model_grid: NDArray[np.float64],
    latent_dim: int,
    grid: str | os.PathLike[str] | None = None,
    clip_range: bool = False,
    columns: tuple[str, str, str] = LONG_COLUMNS,
    header: str = "auto",
) -> FitTargets:
    """Read a targets file in any of the layouts above (see the module docstring); ``header`` reads a wide file's
    first row as :func:`~curvae.io.curves.load_curves` does (a strictly increasing first row is the grid)."""
    p = Path(path)
    if p.suffix.lower() == ".csv" and p.is_file() and grid is None:
        long = _long_header(p, columns)
        if long is not None:
            ids, curves = read_long_csv(p, columns, *long)
            obs, dropped = on_own_grids(curves, model_grid, latent_dim=latent_dim, clip_range=clip_range,
                                        names=lambda i: repr(ids[i]))
            return FitTargets(None, obs, np.array(ids), dropped, tuple(long[1]), "long format")
    f = load_curves(p, allow_nan=True, min_points=1, what="curves", header=header)
    own = _grid_file(grid) if grid is not None else f.grid
    on_model = own is None or (own.shape == model_grid.shape and np.allclose(own, model_grid, rtol=0, atol=1e-9))
    if on_model:
        if f.curves.shape[1] != model_grid.size:
            raise DataFileError(f"{p.name} has {f.curves.shape[1]} points per row; this model needs "
                                f"{model_grid.size}, or give the targets' own x values (.npz key 'grid', or --grid)")
        return FitTargets(f.curves, None, None, 0, f.header, "model grid")
    obs, dropped = on_shared_grid(f.curves, own, model_grid, latent_dim=latent_dim, clip_range=clip_range)
    return FitTargets(None, obs, None, dropped, f.header, "own grid")
