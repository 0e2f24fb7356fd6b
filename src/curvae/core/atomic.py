"""Write files and folders so that a reader sees all of it or none of it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from curvae.core.errors import OutputExistsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Save one array as ``.npy``, atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    write_bytes(path, buf.getvalue())


def save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Save named arrays as ``.npz``, atomically."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    write_bytes(path, buf.getvalue())


class NpzStreamWriter:
    """Build an ``.npz`` from arrays appended chunk by chunk, with bounded memory.

    Each array is written as a ``.npy`` part (header, then rows appended in
    order) in a temporary folder; :meth:`commit` streams the parts into the
    zip beside ``path`` and renames it into place.
    """

    def __init__(self, path: str | os.PathLike[str], specs: dict[str, tuple[tuple[int, ...], str]]) -> None:
        self.path = Path(path)
        self._dir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".parts", dir=self.path.parent))
        self._files = {}
        for name, (shape, dtype) in specs.items():
            fh = open(self._dir / f"{name}.npy", "wb")  # noqa: SIM115 - closed in commit/discard
            np.lib.format.write_array_header_2_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                      "fortran_order": False, "shape": shape})
            self._files[name] = (fh, np.dtype(dtype))

    def append(self, name: str, rows: np.ndarray) -> None:
        """Append rows to array ``name`` (rows must arrive in order)."""
        fh, dtype = self._files[name]
        fh.write(np.ascontiguousarray(rows, dtype=dtype).tobytes())

    def put(self, name: str, array: np.ndarray) -> None:
        """Add a whole array that was not in the specs (e.g. one whose size is known only at the end)."""
        fh = open(self._dir / f"{name}.npy", "wb")  # noqa: SIM115 - closed in commit/discard
        np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
        self._files[name] = (fh, np.asarray(array).dtype)

    def commit(self) -> None:
        """Write the zip beside ``path`` and rename it into place."""
        import zipfile

        for fh, _ in self._files.values():
            fh.close()
        tmp = self._dir / "out.npz"
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name in self._files:
                zf.write(self._dir / f"{name}.npy", arcname=f"{name}.npy")
        os.replace(tmp, self.path)
        self.discard()

    def discard(self) -> None:
        """Remove the temporary parts (on failure, or after commit)."""
        for fh, _ in self._files.values():
            fh.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class NpyStreamWriter:
    """Build a ``.npy`` of known shape from rows appended in order, renamed into place on :meth:`commit`."""

    def __init__(self, path: str | os.PathLike[str], shape: tuple[int, ...], dtype: str) -> None:
        self.path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._tmp = Path(tmp)
        self._fh = os.fdopen(fd, "wb")
        self._dtype = np.dtype(dtype)
        np.lib.format.write_array_header_2_0(self._fh, {"descr": np.lib.format.dtype_to_descr(self._dtype),
                                                        "fortran_order": False, "shape": tuple(shape)})

    def append(self, rows: np.ndarray) -> None:
        self._fh.write(np.ascontiguousarray(rows, dtype=self._dtype).tobytes())

    def commit(self) -> None:
        self._fh.close()
        os.chmod(self._tmp, 0o666 & ~_umask())
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


def check_can_write(path: str | os.PathLike[str], *, force: bool) -> None:
    """Refuse to replace an existing path unless ``force`` is set."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(
            f"output {str(path)!r} already exists; curvae never overwrites silently: "
            "choose another --out or pass --force"
        )


def temp_dir_beside(path: Path) -> Path:
    """A new, empty folder beside ``path`` (same filesystem, so it can be renamed onto it), with the usual mode."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    return tmp


def replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` onto ``path``; an existing ``path`` is removed only after the move."""
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old / "x")
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling and move it into place on success.

    On any exception the temporary folder is removed and ``path`` is left as it
    was. With ``force``, an existing ``path`` is replaced only once the new
    folder is complete.
    """
    path = Path(path)
    check_can_write(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(path)
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
