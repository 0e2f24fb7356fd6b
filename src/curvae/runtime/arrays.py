"""Checks on arrays handed to curvae, run before any graph sees them.

onnxruntime runs NaN inputs and zero-row batches without complaint, so these
checks are ours to make.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from curvae.core.errors import BadRowsError, InputError

_F32_MAX = float(np.finfo(np.float32).max)
_F32 = np.dtype(np.float32)


def check_int(name: str, value: object, *, minimum: int = 1, what: str = "") -> int:
    """``value`` as an int, or :class:`InputError` unless it is an integer >= ``minimum`` (bools and floats refused).

    ``what`` says what the number counts, in the message.
    """
    if type(value) is int and value >= minimum:  # the common case, in O(1)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        rule = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InputError(f"{name}={value!r} must be {rule}" + (f" ({what})" if what else ""))
    return int(value)


_BLOCK = 8192  # rows per block of the checks: their temporaries stay small however large the input
#: Up to this many values, a C-contiguous float32 matrix is checked by one fused reduction and returned as is:
#: the one-row calls of an interactive user (the explorer, a control loop) then cost O(1) Python.
FAST_VALUES = 65_536


def _peak(out: NDArray[np.float32], allow_nan: bool) -> float:
    """The largest |value| (NaN if a NaN is there and not allowed), in row blocks; 0 for no values.

    One reduction covers NaN (it propagates), ±inf and the bound; details are found only on failure.
    """
    peak = 0.0
    for i in range(0, out.shape[0], _BLOCK):
        block = np.abs(out[i:i + _BLOCK])
        if block.size == 0:
            continue
        m = float(np.nanmax(block)) if allow_nan and not np.isnan(block).all() else 0.0 if allow_nan else \
            float(block.max())
        if not (m <= peak):
            peak = m
            if not np.isfinite(m):
                return m
    return peak


def as_matrix(
    values: ArrayLike,
    *,
    name: str,
    n_cols: int | None = None,
    col_name: str = "columns",
    min_rows: int = 1,
    min_cols: int = 1,
    row_offset: int = 0,
    max_abs: float = _F32_MAX,
    bound_hint: str = "",
    allow_nan: bool = False,
) -> NDArray[np.float32]:
    """Return ``values`` as a finite float32 matrix, or raise :class:`InputError`.

    Parameters
    ----------
    values : array-like of shape (n_rows, n_cols)
        Real numbers: float or integer dtypes are cast safely to float32.
    name : str
        What the values are, used in messages (``"curves"``, ``"z"``).
    n_cols : int, optional
        Required number of columns.
    col_name : str
        What a column is, used in messages (``"points"``, ``"latent dims"``).
    min_rows, min_cols : int
        Smallest accepted number of rows and columns.
    row_offset : int
        Added to row numbers in messages, for chunks of a larger array.
    max_abs : float
        Largest accepted magnitude; ``bound_hint`` says why, in the message.
    allow_nan : bool
        Keep NaN (a fit target's unobserved point); ±inf is still refused.

    Returns
    -------
    ndarray of shape (n_rows, n_cols), dtype float32
    """
    if (type(values) is np.ndarray and values.dtype is _F32 and values.ndim == 2  # the fast path
            and values.flags.c_contiguous and 0 < values.size <= FAST_VALUES and not allow_nan):
        rows, cols = values.shape
        if rows >= min_rows and cols >= min_cols and (n_cols is None or cols == n_cols):
            if values.size <= 16:  # a code or two: Python comparisons beat numpy's call overhead; NaN fails them
                if all(-max_abs <= v <= max_abs for v in values.ravel().tolist()):
                    return values
            elif max_abs >= _F32_MAX:  # finiteness only: one float64 sum (NaN and ±inf propagate, nothing overflows)
                if math.isfinite(np.add.reduce(values, axis=None, dtype=np.float64)):
                    return values
            elif float(np.abs(values).max()) <= max_abs:  # one reduction: NaN, ±inf and the bound
                return values
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{name} could not be read as an array ({exc}); pass a 2-D array of numbers") from None
    if arr.dtype.kind not in "fiu":
        raise InputError(
            f"{name} has dtype {arr.dtype}; curvae needs real numbers (float or integer): "
            "convert with np.asarray(x, dtype=np.float32)"
        )
    if arr.ndim != 2:
        hint = f" (use {name}[None, :] for a single row)" if arr.ndim == 1 else ""
        raise InputError(f"{name} has shape {arr.shape}; it must be 2-D (rows, {col_name}){hint}")
    rows, cols = arr.shape
    if rows < min_rows:
        raise InputError(f"{name} has {rows} rows; at least {min_rows} are needed")
    if n_cols is not None and cols != n_cols:
        raise InputError(f"{name} has {cols} {col_name} per row; this model needs {n_cols}")
    if cols < min_cols:
        raise InputError(f"{name} has {cols} {col_name} per row; at least {min_cols} are needed")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
        big = np.isfinite(arr) & (np.abs(arr) > _F32_MAX)
        if big.any():
            r, c = np.argwhere(big)[0]
            raise BadRowsError(
                f"{name}[{r + row_offset}, {c}] = {arr[r, c].item()!r} overflows float32 (|x| > {_F32_MAX:.3g}); rescale the data",
                np.flatnonzero(big.any(axis=1)) + row_offset,
            )
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not (_peak(out, allow_nan) <= max_abs):
        bad = np.isinf(out) if allow_nan else ~np.isfinite(out)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise BadRowsError(
                f"{name}[{r + row_offset}, {c}] = {arr[r, c].item()!r} is not finite ({int(bad.sum())} such values); "
                "curvae needs finite values: drop or repair those rows"
                + ("; to fit curves with missing points, give them to `fit`, which takes NaN as unobserved"
                   if np.isnan(out[r, c]) and col_name == "points" else ""),
                np.flatnonzero(bad.any(axis=1)) + row_offset,
            )
        far = np.abs(out) > max_abs
        r, c = np.argwhere(far)[0]
        raise BadRowsError(f"{name}[{r + row_offset}, {c}] = {out[r, c].item()!r} is outside ±{max_abs:g}; {bound_hint}",
                           np.flatnonzero(far.any(axis=1)) + row_offset)
    return out


def check_out(out: object, shape: tuple[int, int], codes: np.ndarray) -> None:
    """``out`` must be a writeable float32 array of ``shape`` that does not overlap the input codes."""
    fix = f"pass np.empty({shape}, np.float32) or leave out=None"
    if not isinstance(out, np.ndarray):
        raise InputError(f"out is a {type(out).__name__}, not a numpy array; {fix}")
    if out.dtype != np.float32 or out.shape != shape:
        raise InputError(f"out has dtype {out.dtype} and shape {out.shape}; it must be float32 of shape {shape} "
                         f"(one row per code, one column per curve point): {fix}")
    if not out.flags.writeable:
        raise InputError(f"out is read-only; {fix}")
    if np.may_share_memory(out, codes):
        raise InputError(f"out overlaps the codes being decoded; {fix}")
