"""Read curve files (.npy, .npz, .csv) safely: no pickles, bounded sizes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from curvae.core.errors import DataFileError, InputError
from curvae.runtime.arrays import as_matrix

#: Largest total decompressed size accepted from one ``.npz`` (guards against zip bombs).
MAX_NPZ_BYTES = 4 * 1024**3

SUFFIXES = (".npy", ".npz", ".csv")


@dataclass(frozen=True)
class CurveFile:
    """Curves read from a file.

    Attributes
    ----------
    curves : ndarray of shape (n_curves, n_points), float32
    grid : ndarray of shape (n_points,), float64, or None when the file has none
    """

    curves: NDArray[np.float32]
    grid: NDArray[np.float64] | None
    header: tuple[str, ...] | None = None  # a CSV's non-numeric first row, taken as column names
    grid_from_first_row: bool = False  # the grid was the file's first row (said so to the user)
    #: An ``.npz``'s ``params`` (n_curves, k), float64, and their ``param_names``: the parameters of each curve.
    params: NDArray[np.float64] | None = None
    param_names: tuple[str, ...] | None = None


#: How a file's first row is read: guessed, a grid of x values, column names, or a curve like the others.
HEADER_MODES = ("auto", "grid", "names", "none")


def _is_increasing(row: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(row)) and np.all(np.diff(row) > 0))


def _looks_like_grid(raw: np.ndarray) -> bool:
    """A strictly increasing first row, unlike the rows below it: increasing curves are not a majority there,
    or the first row lies far outside them (robust units)."""
    if raw.ndim != 2 or raw.shape[0] < 3 or raw.shape[1] < 2 or not _is_increasing(raw[0]):
        return False
    rest = raw[1:1001]
    if np.mean([_is_increasing(r) for r in rest]) < 0.5:
        return True
    return float(robust_distance(rest, of=raw[:1])[0]) > 20


def robust_distance(rows: NDArray, of: NDArray | None = None) -> NDArray[np.float64]:
    """How far each curve of ``of`` (default: ``rows`` themselves) lies from ``rows``, in robust units, shape (n,).

    The RMS distance from the pointwise median of ``rows``, over the median such distance of ``rows`` (NaN
    points, a target's unobserved ones, are left out).
    """
    r = np.asarray(rows, np.float64)
    median = np.nanmedian(r, axis=0)
    scale = max(float(np.median(np.sqrt(np.nanmean((r - median) ** 2, axis=1)))), 1e-12)
    o = r if of is None else np.asarray(of, np.float64)
    return np.sqrt(np.nanmean((o - median) ** 2, axis=1)) / scale


def load_curves(
    path: str | os.PathLike[str],
    *,
    n_points: int | None = None,
    min_rows: int = 1,
    key: str = "curves",
    min_points: int = 2,
    what: str = "curves",
    max_npz_bytes: int = MAX_NPZ_BYTES,
    allow_nan: bool = False,
    header: str = "auto",
) -> CurveFile:
    """Load and validate a 2-D array of curves from ``.npy``, ``.npz`` or ``.csv``.

    Parameters
    ----------
    path : path-like
        ``.npy`` holding a 2-D numeric array; ``.npz`` with the array under
        ``key`` (and an optional 1-D ``grid``); ``.csv`` with one curve per row.
    n_points : int, optional
        Required curve length.
    min_rows : int
        Smallest accepted number of curves.
    key : str
        Array name inside an ``.npz``.
    min_points : int
        Smallest accepted row length.
    what : str
        What the rows are, used in messages (``"curves"``, ``"codes"``).
    max_npz_bytes : int
        Cap on the decompressed size of an ``.npz``.
    allow_nan : bool
        Keep NaN values (fit targets: an unobserved point).
    header : {"auto", "grid", "names", "none"}
        How the first row of a ``.csv`` (or of an ``.npz`` without a ``grid``)
        is read. ``"auto"``: non-numeric → column names; strictly increasing
        and unlike the rows below it → the grid (``grid_from_first_row``);
        otherwise a curve. ``"grid"``/``"names"``/``"none"`` say which.

    A 1-D ``.npy`` is one curve. A CSV's delimiter (``,``, ``;`` or tab) is
    sniffed.

    Returns
    -------
    CurveFile
    """
    p = Path(path)
    if header not in HEADER_MODES:
        raise InputError(f"header={header!r} must be one of {', '.join(HEADER_MODES)}")
    if not p.exists():
        raise DataFileError(f"file {str(p)!r} does not exist; check the path")
    if not p.is_file():
        raise DataFileError(f"{str(p)!r} is not a file; pass a .npy, .npz or .csv file")
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"file {str(p)!r} has suffix {suffix!r}; curvae reads {', '.join(SUFFIXES)}")
    try:
        if p.stat().st_size == 0:
            raise DataFileError(f"file {str(p)!r} is empty; it must hold at least {min_rows} row(s) of {what}")
        mode, grid, names, params = header, None, None, None
        if suffix == ".npy":
            raw = _load_npy(p)
            if raw.ndim == 1:  # one curve
                raw = raw[None, :]
        elif suffix == ".npz":
            raw, grid, params = _load_npz(p, key, max_npz_bytes)
        else:
            names, raw = read_csv(p)
            if mode == "names" and names is None and len(raw):
                raw = raw[1:]
            if mode == "grid" and names is not None:
                raise DataFileError(f"the first row of {p.name} is not numeric ({names[0]!r}, ...), so it is no grid; "
                                    "pass --header names (or auto)")
    except PermissionError:
        raise DataFileError(f"file {str(p)!r} cannot be read (permission denied); fix its permissions") from None
    except OSError as exc:
        raise DataFileError(f"file {str(p)!r} cannot be read ({exc.strerror or exc})") from None
    from_row = False
    if grid is None and names is None and suffix != ".npy" and mode in ("auto", "grid"):
        arr = np.asarray(raw)
        if mode == "grid" and not (arr.ndim == 2 and arr.shape[0] >= 2 and _is_increasing(arr[0])):
            raise DataFileError(f"the first row of {p.name} is not a strictly increasing grid of x values; pass "
                                "--header none to read it as a curve, or fix the file")
        if mode == "grid" or (np.issubdtype(arr.dtype, np.number) and _looks_like_grid(arr)):
            grid, raw, from_row = arr[0], arr[1:], True
    try:
        curves = as_matrix(raw, name=f"{what} in {p.name}", n_cols=n_points,
                           col_name="points" if what in ("curves", "targets") else "values", min_rows=min_rows, min_cols=min_points,
                           allow_nan=allow_nan)
    except InputError as exc:
        raise DataFileError(str(exc)) from None
    if grid is not None:
        grid = np.asarray(grid, dtype=np.float64)
        if grid.shape != (curves.shape[1],) or not np.all(np.isfinite(grid)):
            raise DataFileError(
                f"grid in {p.name} has shape {grid.shape}; it must be finite with shape ({curves.shape[1]},), "
                "one x value per curve point"
            )
    theta, theta_names = (None, None) if params is None else check_params(p.name, *params, n_curves=len(curves))
    return CurveFile(curves=curves, grid=grid, header=names, grid_from_first_row=from_row, params=theta,
                     param_names=theta_names)


#: Most parameters per curve a data file may carry, and the longest parameter name.
MAX_PARAMS, MAX_PARAM_NAME = 64, 64


def check_params(file: str, params: np.ndarray | None, names: np.ndarray | None, *,
                 n_curves: int) -> tuple[NDArray[np.float64], tuple[str, ...]]:
    """Validate an ``.npz``'s ``params`` (n_curves, k) and ``param_names`` (k,); names default to theta0, theta1…"""
    if params is None:
        raise DataFileError(f"{file} has param_names but no params array; save params of shape (n_curves, k) "
                            "beside them, or drop param_names")
    arr = np.asarray(params)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or arr.dtype.kind == "c":
        raise DataFileError(f"params in {file} have shape {arr.shape} and dtype {arr.dtype}; they must be a real "
                            "(n_curves, k) array, one row of parameters per curve")
    if arr.shape[0] != n_curves:
        raise DataFileError(f"params in {file} have {arr.shape[0]} rows but the file has {n_curves} curves; save "
                            "one row of parameters per curve (a grid row is not a curve)")
    if not 1 <= arr.shape[1] <= MAX_PARAMS:
        raise DataFileError(f"params in {file} have {arr.shape[1]} columns; give 1..{MAX_PARAMS} parameters per curve")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise DataFileError(f"params in {file} row {r}, column {c} is {arr[r, c]}; every parameter must be finite: "
                            "drop that curve or fix its parameters")
    k = arr.shape[1]
    if names is None:
        return arr, tuple(f"theta{i}" for i in range(k))
    n = np.asarray(names)
    if n.ndim != 1 or n.dtype.kind not in "US" or len(n) != k:
        raise DataFileError(f"param_names in {file} have shape {n.shape} and dtype {n.dtype}; they must be {k} "
                            "strings, one per params column")
    out = tuple(str(v.decode() if isinstance(v, bytes) else v) for v in n)
    for v in out:
        if not v or len(v) > MAX_PARAM_NAME or not v.isprintable():
            raise DataFileError(f"param_names in {file} hold {v[:80]!r}; each name must be 1..{MAX_PARAM_NAME} "
                                "printable characters")
    if len(set(out)) != k:
        raise DataFileError(f"param_names in {file} repeat a name ({sorted(out)}); give each parameter its own name")
    return arr, out


class CurveSource:
    """Rows of a curve file, read chunk by chunk.

    A ``.npy`` is read with plain file reads at computed offsets, so neither
    the file nor a memory map of it is ever resident as a whole; other
    formats are small enough to load. Values are checked per chunk by the
    caller (:func:`curvae.runtime.arrays.as_matrix`).
    """

    def __init__(self, array: np.ndarray | None = None, *, path: Path | None = None,
                 shape: tuple[int, int] = (0, 0), dtype: np.dtype | None = None, offset: int = 0) -> None:
        self._array, self._path, self._dtype, self._offset = array, path, dtype, offset
        self.shape = array.shape if array is not None else shape
        self.dtype = array.dtype if array is not None else dtype

    def __len__(self) -> int:
        return int(self.shape[0])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as an array of shape (stop - start, n_points)."""
        if self._array is not None:
            return self._array[start:stop]
        stop = min(stop, self.shape[0])
        cols, item = self.shape[1], self._dtype.itemsize
        with open(self._path, "rb") as fh:
            fh.seek(self._offset + start * cols * item)
            data = np.fromfile(fh, dtype=self._dtype, count=(stop - start) * cols)
        return data.reshape(stop - start, cols)


def open_curves(path: str | os.PathLike[str], *, n_points: int | None = None, what: str = "curves",
                min_points: int = 2) -> CurveSource:
    """Open curves (or other rows: ``what``, at least ``min_points`` columns) for chunked reading, with bounded
    memory for ``.npy`` files.

    Only the shape and dtype are checked here; an invalid or unusual file
    (object dtype, Fortran order, wrong shape) goes through :func:`load_curves`,
    whose error says what is wrong.
    """
    p = Path(path)
    if p.suffix.lower() == ".npy" and p.is_file() and p.stat().st_size > 0:
        try:
            with open(p, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                reader = {(1, 0): np.lib.format.read_array_header_1_0,
                          (2, 0): np.lib.format.read_array_header_2_0}[version]
                shape, fortran, dtype = reader(fh)  # refuses object dtypes without unpickling
                offset = fh.tell()
        except (ValueError, OSError, KeyError):
            shape, fortran, dtype = (), True, np.dtype(object)
        ok = (dtype.kind in "fiu" and not dtype.hasobject and len(shape) == 2 and not fortran
              and shape[0] >= 1 and shape[1] >= min_points and (n_points is None or shape[1] == n_points)
              and p.stat().st_size >= offset + shape[0] * shape[1] * dtype.itemsize)
        if ok:
            return CurveSource(path=p, shape=(int(shape[0]), int(shape[1])), dtype=dtype, offset=offset)
    return CurveSource(load_curves(p, n_points=n_points, what=what, min_points=min_points).curves)


def _numpy_error(p: Path, exc: ValueError, kind: str) -> DataFileError:
    """The error for a ValueError from ``np.load(allow_pickle=False)``: pickles get their own message."""
    if "pickle" in str(exc).lower() or "object" in str(exc).lower():
        return DataFileError(f"file {str(p)!r} holds an object array (pickled data), which curvae never loads; "
                             f"save plain numeric arrays with np.{'save' if kind == '.npy' else 'savez'}")
    return DataFileError(f"file {str(p)!r} is not a valid {kind} file ({exc})")


def _load_npy(p: Path) -> np.ndarray:
    try:
        return np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise _numpy_error(p, exc, ".npy") from None


def _load_npz(p: Path, key: str, cap: int) -> tuple[np.ndarray, np.ndarray | None, tuple | None]:
    import zipfile  # only here: keeps the runtime's import time down

    try:
        with zipfile.ZipFile(p) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile:
        raise DataFileError(f"file {str(p)!r} is not a valid .npz (zip) file; save it with np.savez") from None
    if total > cap:
        raise DataFileError(
            f"file {str(p)!r} would decompress to {total} bytes, over the {cap}-byte cap; "
            "split the data or save it as .npy"
        )
    try:
        with np.load(p, allow_pickle=False) as npz:
            if key not in npz.files:
                raise DataFileError(
                    f"file {str(p)!r} has arrays {sorted(npz.files)} but no {key!r}; save the curves under {key!r}"
                )
            curves = npz[key]
            grid = npz["grid"] if "grid" in npz.files else None
            params = None
            if "params" in npz.files or "param_names" in npz.files:
                params = tuple(npz[k] if k in npz.files else None for k in ("params", "param_names"))
    except ValueError as exc:
        raise _numpy_error(p, exc, ".npz") from None
    return curves, grid, params


#: Delimiters a CSV may use; the first line decides which.
DELIMITERS = (",", ";", "\t")


def _cell(text: str) -> str:
    """A cell quoted for a message: at most 60 characters."""
    text = text.strip()
    return repr(text if len(text) <= 60 else text[:57] + "...")


def read_csv(p: Path) -> tuple[tuple[str, ...] | None, np.ndarray]:
    """A CSV of numbers (empty cells and ``nan`` read as NaN), its delimiter sniffed from the first line,
    and a first row that is not numeric taken as a header.

    Returns
    -------
    header : tuple of str, or None
    values : ndarray of shape (n_rows, n_cols), float64
    """
    rows: list[list[float]] = []
    header: tuple[str, ...] | None = None
    width = delim = None
    with open(p, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if delim is None:
                delim = sniff_delimiter(text)
            cells = text.split(delim)
            numeric = [c.strip() == "" or is_number(c) for c in cells]
            if not all(numeric):
                if header is None and not rows and not any(is_number(c) for c in cells):
                    header = tuple(c.strip() for c in cells)
                    width = len(cells)
                    continue
                bad = cells[numeric.index(False)]
                raise DataFileError(
                    f"{p.name} line {lineno}: {_cell(bad)} is not a number; the CSV must hold numbers only "
                    "(a first row of column names is read as a header)"
                )
            row = [float(c) if c.strip() else float("nan") for c in cells]
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise DataFileError(
                    f"{p.name} line {lineno} has {len(row)} values but earlier rows have {width}; "
                    "every curve must have the same number of points"
                )
            rows.append(row)
    if not rows:
        raise DataFileError(f"file {str(p)!r} holds no curves; it must have at least one row of numbers")
    return header, np.asarray(rows, dtype=np.float64)


def sniff_delimiter(line: str) -> str:
    """The delimiter a CSV uses, judged from its first line: the most frequent of :data:`DELIMITERS`."""
    return max(DELIMITERS, key=line.count) if any(d in line for d in DELIMITERS) else ","


def is_number(text: str) -> bool:
    """Whether a CSV cell reads as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True
