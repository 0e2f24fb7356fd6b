"""Training from a ``.npy`` or ``.zarr`` larger than memory: the rows are read by blocks, never the whole array.

A streamed data file is cut into blocks of :data:`BLOCK_ROWS` consecutive rows.

- **Held-out curves**: a seeded random set of whole blocks, at most
  :data:`VAL_ROWS_MAX` rows (the in-memory path holds out ``val_fraction`` of
  the curves; here that share, capped).
- **Rounds**: round ``r`` reads a seeded random set of training blocks
  (``numpy.random.default_rng([seed, 0, r, rank])``), enough for the round's
  rows, and takes a random permutation of their rows. Each round depends only
  on its number, so a resume from any checkpoint reads exactly what the
  uninterrupted run read. With several ranks, rank ``k`` reads only the
  training blocks ``k, k + world, ...``.
- **Scaling, PCA start and summaries**: from a bounded sample of
  :data:`SAMPLE_ROWS` curves (random training blocks), not from a pass over
  everything.
- **One streaming pass** at the start checks every value (finite, numeric)
  and hashes the file (``sha256``, to tie a resume and an export to it), in
  chunks of :data:`PASS_ROWS` rows.

Reads are plain file reads at offsets (``.npy``) or chunk reads (``.zarr``):
no memory map, so the page cache never counts in the process's memory, and
peak RSS does not grow with the row count (``benchmarks/bench_train_scale.py``: +70 MiB
for a 4 GB file).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curvae.core.errors import DataFileError, InputError
from curvae.io.curves import CurveSource, open_curves
from curvae.runtime.arrays import as_matrix

#: Rows per block: small enough that a round's rows come from many places in the file (a file sorted by
#: parameter still gives mixed batches), large enough that a read is one efficient request (~100 kB).
BLOCK_ROWS = 256
#: Curves in the sample that sets the scaling, the PCA start, the PCA baseline and the latent summary.
SAMPLE_ROWS = 20_000
#: Most held-out curves of a streamed file.
VAL_ROWS_MAX = 5_000
#: Rows per read of the checking and hashing pass (6.5 MB of 100-point float32 curves).
PASS_ROWS = 16_384
#: A ``.npy``/``.zarr`` data file above this many bytes is streamed by default (``stream="auto"``).
STREAM_AUTO_BYTES = 256 * 2**20
STREAM_MODES = ("auto", "on", "off")


def _source(path: Path):
    if path.suffix.lower() == ".zarr":
        from curvae.io.stores import ZarrSource

        return ZarrSource(path, prefer="curves")
    src = open_curves(path)
    if src._path is None:  # open_curves loaded it whole: not a plain 2-D numeric .npy
        raise DataFileError(f"{str(path)!r} cannot be streamed (it is not a plain 2-D numeric .npy); save it with "
                            "np.save, or train with stream off")
    return src


def should_stream(path: str | os.PathLike[str] | None, mode: str) -> bool:
    """Whether ``path`` is trained from by blocks: ``on``, or ``auto`` and a large ``.npy``/``.zarr``."""
    if mode not in STREAM_MODES:
        raise InputError(f"stream={mode!r} must be one of {', '.join(STREAM_MODES)}")
    if path is None or mode == "off":
        return False
    p = Path(path)
    suffix = p.suffix.lower()
    if mode == "on":
        if suffix not in (".npy", ".zarr"):
            raise InputError(f"stream=on needs a .npy or .zarr data file, not {p.name!r}; convert it with np.save")
        return True
    if suffix == ".npy":
        return p.is_file() and p.stat().st_size > STREAM_AUTO_BYTES
    if suffix == ".zarr" and p.exists():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) > STREAM_AUTO_BYTES
    return False


@dataclass(frozen=True)
class BlockStream:
    """Block reads of a large data file, by round and rank (see the module notes)."""

    source: CurveSource | object
    name: str
    n_rows: int
    n_points: int
    val_blocks: np.ndarray  # (v,) sorted block ids held out
    train_blocks: np.ndarray  # (t,) sorted block ids trained on
    seed: int

    @property
    def n_train(self) -> int:
        return self.n_rows - int(sum(self._block_len(b) for b in self.val_blocks))

    def rank_rows(self, rank: int, world: int) -> int:
        """Training rows in the blocks of ``rank``."""
        return int(sum(self._block_len(b) for b in self.train_blocks[rank::world]))

    def _block_len(self, b: int) -> int:
        return min(BLOCK_ROWS, self.n_rows - int(b) * BLOCK_ROWS)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as float32, checked finite (the error names the file row)."""
        raw = self.source.read(start, stop)
        return as_matrix(raw, name=f"curves in {self.name}", n_cols=self.n_points, col_name="points",
                         row_offset=start)

    def blocks(self, ids: np.ndarray) -> np.ndarray:
        """The rows of these blocks, in the given order, shape (rows, n_points)."""
        parts = [self.read(int(b) * BLOCK_ROWS, int(b) * BLOCK_ROWS + self._block_len(b)) for b in ids]
        return np.concatenate(parts) if parts else np.empty((0, self.n_points), np.float32)

    def round_rows(self, round_index: int, count: int, rank: int = 0, world: int = 1) -> np.ndarray:
        """``count`` training rows for round ``round_index`` of ``rank``, shuffled: (count, n_points) float32."""
        g = np.random.default_rng([self.seed, 0, round_index, rank])
        mine = self.train_blocks[rank::world]
        order = g.permutation(mine)
        take = np.searchsorted(np.cumsum([self._block_len(b) for b in order]), count) + 1
        rows = self.blocks(np.sort(order[:take]))  # read in file order: sequential reads, one pass per chunk
        return rows[g.permutation(len(rows))[:count]]

    def sample(self, rows: int = SAMPLE_ROWS) -> np.ndarray:
        """A bounded, seeded sample of training rows (whole random blocks), for scaling and summaries."""
        g = np.random.default_rng([self.seed, 1, 0])
        order = g.permutation(self.train_blocks)[: -(-rows // BLOCK_ROWS)]
        return self.blocks(np.sort(order))


def open_stream(path: str | os.PathLike[str], *, val_fraction: float, seed: int) -> tuple[BlockStream, str]:
    """Open a data file for block reads, check and hash it in one pass; returns the stream and the sha256."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"file {str(p)!r} does not exist; check the path")
    src = _source(p)
    shape = tuple(int(s) for s in src.shape)
    if len(shape) != 2 or shape[1] < 2 or shape[0] < 2:
        raise DataFileError(f"{p.name} holds shape {shape}; a data file is 2-D: (curves, points), at least 2 of each")
    n, n_points = shape
    n_blocks = -(-n // BLOCK_ROWS)
    if n_blocks < 4:
        raise DataFileError(f"{p.name} has {n} curves, too few to stream by blocks of {BLOCK_ROWS}; train with "
                            "stream off")
    stream = BlockStream(source=src, name=p.name, n_rows=n, n_points=n_points, val_blocks=np.empty(0, np.int64),
                         train_blocks=np.empty(0, np.int64), seed=seed)
    digest = hashlib.sha256()
    for start in range(0, n, PASS_ROWS):  # every value checked, the file hashed: one bounded pass
        digest.update(np.ascontiguousarray(stream.read(start, min(n, start + PASS_ROWS))).tobytes())
    g = np.random.default_rng([seed, 2, 0])
    n_val = max(1, min(VAL_ROWS_MAX, int(round(val_fraction * n))))
    val = np.sort(g.permutation(n_blocks)[: max(1, min(n_blocks - 2, -(-n_val // BLOCK_ROWS)))])
    train = np.setdiff1d(np.arange(n_blocks), val)
    return BlockStream(source=src, name=p.name, n_rows=n, n_points=n_points, val_blocks=val, train_blocks=train,
                       seed=seed), digest.hexdigest()
