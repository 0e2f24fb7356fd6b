"""Where rows come from and where results go, chunk by chunk: ``.npy``, ``.zarr`` in; ``.npz``, ``.npy``, ``.zarr`` out.

A source reads rows ``start:stop`` on demand and pickles as its path, so a
Dask task opens it where it runs and nothing is ever loaded whole. A sink
writes rows as they come and becomes visible under its name only on
:meth:`commit`: a ``.npz``/``.npy`` is built beside it and renamed, a
``.zarr`` is written into a temporary store and renamed, so a failed job
leaves nothing half-written under the target name.

``.zarr`` needs the ``zarr`` package (``pip install 'curvae[dask]'``); it is
imported only when a ``.zarr`` path is used. Outputs are written in Zarr
format 2 (readable by zarr-python 2 and 3, xarray and other languages).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

import numpy as np

from curvae.core.atomic import (
    NpyStreamWriter,
    NpzStreamWriter,
    check_can_write,
    replace_dir,
    temp_dir_beside,
)
from curvae.core.errors import DataFileError, InputError, MissingRuntimeError
from curvae.io.curves import CurveSource, load_curves, open_curves

PathLike = str | os.PathLike[str]
Specs = dict[str, tuple[tuple[int, ...], str]]

OUTPUT_SUFFIXES = (".npz", ".npy", ".zarr")


def zarr_module():
    """The ``zarr`` package, or a one-line error naming the extra that installs it."""
    try:
        import zarr
    except ImportError:
        raise MissingRuntimeError(".zarr files need the zarr package: pip install 'curvae[dask]'") from None
    return zarr


def is_zarr(path: PathLike) -> bool:
    return Path(path).suffix.lower() == ".zarr"


class ZarrSource:
    """Rows of a 2-D Zarr array, read on demand; pickles as its path (and the array's name in a group).

    A group (such as ``curvae encode --out codes.zarr``) is read through its
    array ``key``, its array named ``prefer``, or its only array.
    """

    def __init__(self, path: PathLike, key: str | None = None, prefer: str | None = None) -> None:
        self.path, self.key = str(path), key
        node = self._open_node()
        if not hasattr(node, "dtype"):
            names = sorted(node.array_keys())
            pick = prefer if prefer in names else names[0] if len(names) == 1 else None
            if pick is None:
                raise DataFileError(f"{self.path!r} is a Zarr group of {len(names)} arrays "
                                    f"({', '.join(names) or 'none'}), none of them {prefer!r}; give the array's "
                                    f"own path, e.g. {self.path}/{names[0] if names else 'curves'}")
            self.key = pick
            node = node[pick]
        self.shape = tuple(int(s) for s in node.shape)
        self.dtype = np.dtype(node.dtype)
        self.chunks = tuple(int(c) for c in node.chunks)

    def _open_node(self):
        zarr = zarr_module()
        where = f"{self.path!r}" + (f" (array {self.key!r})" if self.key else "")
        try:
            node = zarr.open(self.path, mode="r")
            if self.key is not None:
                node = node[self.key]
        except Exception as exc:  # zarr raises many types for a missing or damaged store
            raise DataFileError(f"{where} is not a readable Zarr store ({type(exc).__name__}: "
                                f"{str(exc)[:120]}); give a .zarr array written by zarr or curvae") from None
        return node

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``, shape (stop - start, n_cols)."""
        try:
            return np.asarray(self._open_node()[start:stop])
        except DataFileError:
            raise
        except Exception as exc:
            raise DataFileError(f"{self.path!r} rows {start}:{stop} could not be read ({type(exc).__name__}: "
                                f"{str(exc)[:120]}); the store is damaged: write it again") from None


class RowSource(Protocol):
    shape: tuple[int, ...]

    def read(self, start: int, stop: int) -> np.ndarray: ...


def open_rows(path: PathLike, *, n_cols: int, what: str, key: str | None = None,
              min_cols: int = 2) -> CurveSource | ZarrSource:
    """A row source for ``path``: a ``.npy`` read at offsets, a ``.zarr`` array, or a small file loaded whole.

    Checks the dtype (real numbers), the number of dimensions (2) and ``n_cols``.
    """
    p = Path(path)
    if not is_zarr(p):
        if p.suffix.lower() == ".npy":
            return open_curves(p, n_points=n_cols, what=what, min_points=min(min_cols, n_cols))
        keys = {"codes": "z", "parameters": "theta"}
        # Codes and parameters have no grid: a numeric first row is data, a text one names the columns.
        arr = load_curves(p, n_points=n_cols, key=key or keys.get(what, "curves"), min_points=min(min_cols, n_cols),
                          what=what, allow_nan=what == "targets", header="none" if what in keys else "auto").curves
        return CurveSource(arr)
    if not p.exists():
        raise DataFileError(f"{what} {str(p)!r} does not exist; give a .zarr array (or .npy) of {what}")
    src = ZarrSource(p, key, prefer={"codes": "z", "parameters": "theta"}.get(what, "curves"))
    if len(src.shape) != 2 or src.dtype.kind not in "fiu":
        raise DataFileError(f"{what} {str(p)!r} is a Zarr array of shape {src.shape} and dtype {src.dtype}; "
                            f"it must be 2-D real numbers (rows, {n_cols})")
    if src.shape[1] != n_cols:
        raise DataFileError(f"{what} {str(p)!r} has {src.shape[1]} columns per row; this model needs {n_cols}")
    if src.shape[0] < 1:
        raise DataFileError(f"{what} {str(p)!r} has no rows")
    return src


class Sink(Protocol):
    def write(self, name: str, start: int, rows: np.ndarray) -> None: ...

    def write_block(self, start: int, columns: dict[str, np.ndarray]) -> None: ...

    def put(self, name: str, array: np.ndarray) -> None: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...


class StreamSink:
    """An ``.npz`` (several arrays) or ``.npy`` (one array) written in row order, renamed into place on commit."""

    def __init__(self, path: Path, specs: Specs) -> None:
        self.path = path
        if path.suffix.lower() == ".npy":
            if len(specs) != 1:
                raise InputError(f"--out {str(path)!r}: a .npy holds one array, and this command writes "
                                 f"{len(specs)} ({', '.join(specs)}); write a .npz or .zarr instead")
            (self._only, (shape, dtype)), = specs.items()
            self._writer = NpyStreamWriter(path, shape, dtype)
        else:
            self._only = None
            self._writer = NpzStreamWriter(path, specs)
        self._next = dict.fromkeys(specs, 0)

    def write(self, name: str, start: int, rows: np.ndarray) -> None:
        if start != self._next[name]:
            raise AssertionError(f"rows of {name} arrived out of order ({start} after {self._next[name]})")
        self._next[name] = start + len(rows)
        if self._only is not None:
            self._writer.append(rows)
        else:
            self._writer.append(name, rows)

    def write_block(self, start: int, columns: dict[str, np.ndarray]) -> None:
        for name, rows in columns.items():
            self.write(name, start, rows)

    def put(self, name: str, array: np.ndarray) -> None:
        if self._only is None:
            self._writer.put(name, array)

    def commit(self) -> None:
        self._writer.commit()

    def discard(self) -> None:
        self._writer.discard()


class ZarrSink:
    """A Zarr group of arrays built in a temporary store beside ``path`` and renamed into place on commit.

    Rows may be written in any order and from any process (each call opens
    the store by its path); writers must cover whole chunks of ``chunk_rows``
    rows, so no two of them touch one chunk.
    """

    def __init__(self, path: Path, specs: Specs, *, chunk_rows: int) -> None:
        zarr = zarr_module()
        self.path, self.chunk_rows = path, int(chunk_rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = str(temp_dir_beside(path))
        try:
            group = zarr.open_group(self.tmp, mode="w", zarr_format=2)
            for name, (shape, dtype) in specs.items():
                chunks = (min(self.chunk_rows, max(shape[0], 1)), *shape[1:]) if shape else ()
                group.create_array(name, shape=shape, chunks=chunks, dtype=dtype,
                                   fill_value="" if np.dtype(dtype).kind == "U" else None)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def write(self, name: str, start: int, rows: np.ndarray) -> None:
        self.write_block(start, {name: rows})

    def write_block(self, start: int, columns: dict[str, np.ndarray]) -> None:
        """Rows ``start:start + k`` of several arrays, with one opening of the store."""
        group = zarr_module().open_group(self.tmp, mode="r+", zarr_format=2)
        for name, rows in columns.items():
            group[name][start:start + len(rows)] = rows

    def put(self, name: str, array: np.ndarray) -> None:
        group = zarr_module().open_group(self.tmp, mode="r+", zarr_format=2)
        group.create_array(name, data=np.asarray(array), chunks=(max(len(array), 1),) if np.ndim(array) else ())

    def commit(self) -> None:
        replace_dir(Path(self.tmp), self.path)

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class Finishing:
    """A sink that runs ``before_commit`` (e.g. writing the arrays of the whole set) just before it commits."""

    def __init__(self, sink: Sink, before_commit) -> None:
        self._sink, self._before = sink, before_commit

    def write(self, name: str, start: int, rows: np.ndarray) -> None:
        self._sink.write(name, start, rows)

    def write_block(self, start: int, columns: dict[str, np.ndarray]) -> None:
        self._sink.write_block(start, columns)

    def put(self, name: str, array: np.ndarray) -> None:
        self._sink.put(name, array)

    def commit(self) -> None:
        self._before()
        self._sink.commit()

    def discard(self) -> None:
        self._sink.discard()


def check_output(out: PathLike, *, force: bool, allowed: tuple[str, ...] = OUTPUT_SUFFIXES) -> Path:
    """``--out`` must end in one of ``allowed`` and must not exist unless ``force``."""
    p = Path(out)
    if p.suffix.lower() not in allowed:
        raise InputError(f"--out {str(p)!r} must end in {', '.join(allowed)}; rename it, e.g. "
                         f"{p.with_suffix(allowed[0]).name!r}")
    check_can_write(p, force=force)
    return p


def open_sink(path: Path, specs: Specs, *, chunk_rows: int) -> StreamSink | ZarrSink:
    """The sink for ``path``'s suffix."""
    return ZarrSink(path, specs, chunk_rows=chunk_rows) if is_zarr(path) else StreamSink(path, specs)
