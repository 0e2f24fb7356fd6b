"""Bounded reads of files that someone else wrote: bundles, run folders, their JSON.

A bundle is shared like any model file, and whoever wrote it also wrote its
manifest, so hashes prove nothing about a hostile one. Every read here is
bounded before it starts:

- only a regular file is read; a symlink is followed only when its target
  stays inside the folder being read (``root``), so a bundle cannot point
  at ``/dev/zero``, a FIFO or a file elsewhere on the machine;
- its size is checked with ``fstat`` on the open descriptor against a cap,
  and exactly that many bytes are read (a file that grows meanwhile is
  refused);
- JSON is refused when it is over :data:`MAX_JSON_BYTES`, nested deeper
  than :data:`MAX_JSON_DEPTH` (checked by a linear scan before parsing, so
  the parser never recurses deeply), or holds ``NaN``/``Infinity``.

The caps are stated in ``docs/bundle-format.md``.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from curvae.core.errors import CurvaeError

#: Largest JSON document read (manifest, run config, history, summary).
MAX_JSON_BYTES = 8 * 2**20
#: Deepest nesting of arrays and objects accepted in those documents; curvae writes at most 6.
MAX_JSON_DEPTH = 32
#: protobuf cannot serialise a message of 2 GiB or more, so no ONNX graph is larger.
PROTOBUF_MAX_BYTES = 2**31 - 1

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NESTING = np.zeros(256, np.int8)  # +1 for an opening bracket, -1 for a closing one
_NESTING[[ord("["), ord("{")]] = 1
_NESTING[[ord("]"), ord("}")]] = -1


def read_bounded(path: str | os.PathLike[str], *, max_bytes: int, root: str | os.PathLike[str] | None = None,
                 error: type[CurvaeError], fix: str) -> bytes:
    """Read a regular file of at most ``max_bytes``, or raise ``error`` naming the file, the rule and ``fix``.

    ``root``: a symlink is followed only when it resolves inside this folder.
    """
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise error(f"{path} is missing; {fix}") from None
    except OSError as exc:
        raise error(f"{path} cannot be read ({exc.strerror}); {fix}") from None
    target = path
    if stat.S_ISLNK(info.st_mode):
        real = Path(os.path.realpath(path))
        inside = root is not None and real.is_relative_to(os.path.realpath(root))
        if not inside:
            raise error(f"{path} is a symlink to {str(real)!r}, outside its folder; curvae follows symlinks only "
                        f"within the folder: {fix}")
        target = real
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise error(f"{path} cannot be opened ({exc.strerror}); {fix}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path} is not a regular file (a device, FIFO, socket or folder); {fix}")
        if st.st_size > max_bytes:
            raise error(f"{path} is {st.st_size} bytes, over the {max_bytes}-byte cap for this file; {fix}")
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 2**24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left or os.read(fd, 1):
            raise error(f"{path} changed size while it was read; {fix}")
        return b"".join(chunks)
    finally:
        os.close(fd)


def json_depth(data: bytes) -> int:
    """Deepest nesting of ``[`` and ``{`` in JSON bytes, found without parsing (strings are skipped)."""
    skeleton = np.frombuffer(_STRINGS.sub(b'""', data), dtype=np.uint8)
    return int(np.cumsum(_NESTING[skeleton], dtype=np.int64).max()) if skeleton.size else 0


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(data: bytes, *, name: str, error: type[CurvaeError], fix: str) -> Any:
    """Parse bounded JSON bytes: size, nesting and non-finite numbers are refused with ``error``."""
    if len(data) > MAX_JSON_BYTES:
        raise error(f"{name} is {len(data)} bytes, over the {MAX_JSON_BYTES}-byte cap for JSON; {fix}")
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{name} nests {depth} levels deep, over the cap of {MAX_JSON_DEPTH}; {fix}")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{name} is not valid JSON ({type(exc).__name__}: {str(exc)[:120]}); {fix}") from None


def read_json(path: str | os.PathLike[str], *, error: type[CurvaeError], fix: str,
              root: str | os.PathLike[str] | None = None) -> Any:
    """:func:`read_bounded` then :func:`parse_json`."""
    data = read_bounded(path, max_bytes=MAX_JSON_BYTES, root=root, error=error, fix=fix)
    return parse_json(data, name=str(path), error=error, fix=fix)
