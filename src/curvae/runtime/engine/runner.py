"""Running a bundle's graphs on rows: large batches in chunks that stay in cache, non-finite codes named."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from curvae.core.errors import BadRowsError
from curvae.runtime.engine.lanes import LANE_ROWS, MIN_LANE_ROWS, Lanes

#: Rows per onnxruntime call. Large batches run in chunks this size so the
#: (rows, hidden) intermediate stays in cache: 1.9x the throughput of one
#: 100k-row call here, and memory stays bounded.
CHUNK_ROWS = 4096


def run_encoder(enc, x: NDArray[np.float32], eps: NDArray[np.float32], latent_dim: int, row_offset: int = 0,
                chunk: int = CHUNK_ROWS, lanes: Lanes | None = None,
                ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """``(z, mu, logvar)``, each (n, latent_dim), of curves ``x`` (n, P) with noise ``eps`` (n, latent_dim); a
    large batch on ``lanes`` when given (chunks of at most :data:`~curvae.runtime.engine.lanes.LANE_ROWS`).

    Rows whose codes are not finite raise :class:`BadRowsError`, named by their index in the whole set.
    """
    n = x.shape[0]
    if n <= chunk and not _laned(lanes, n):
        outs = tuple(enc.run(None, {"x": x, "eps": eps}))
    else:
        outs = tuple(np.empty((n, latent_dim), np.float32) for _ in range(3))

        def one(sess, lo: int, hi: int) -> None:
            for dst, part in zip(outs, sess.run(None, {"x": x[lo:hi], "eps": eps[lo:hi]})):
                dst[lo:hi] = part

        _in_chunks(one, enc, n, chunk, lanes)
    if outs[0].size <= 16:  # a row or two: Python's checks beat numpy's call overhead
        if all(map(math.isfinite, outs[0].ravel().tolist() + outs[2].ravel().tolist())):
            return outs
    elif math.isfinite(np.add.reduce(outs[0], axis=None, dtype=np.float64)
                       + np.add.reduce(outs[2], axis=None, dtype=np.float64)):  # NaN and ±inf propagate
        return outs
    bad = ~np.isfinite(outs[0]).all(axis=1) | ~np.isfinite(outs[2]).all(axis=1)  # (n,): cheap, n × latent
    if bad.any():
        rows = np.flatnonzero(bad) + row_offset
        raise BadRowsError(f"curves rows {rows[:5].tolist()}{'…' if rows.size > 5 else ''} give non-finite codes; "
                           "their values are far outside what the model was trained on: check their scale", rows)
    return outs


def run_decoder(dec, z: NDArray[np.float32], n_points: int, out: NDArray[np.float32] | None = None,
                chunk: int = CHUNK_ROWS, lanes: Lanes | None = None) -> NDArray[np.float32]:
    """Curves (n, n_points) of codes ``z`` (n, latent_dim), into ``out`` when given; a large batch on ``lanes``
    when given (chunks of at most :data:`~curvae.runtime.engine.lanes.LANE_ROWS`)."""
    n = z.shape[0]
    if out is None and n <= chunk and not _laned(lanes, n):
        return dec.run(None, {"z": z})[0]
    dst = np.empty((n, n_points), np.float32) if out is None else out

    def one(sess, lo: int, hi: int) -> None:
        dst[lo:hi] = sess.run(None, {"z": z[lo:hi]})[0]

    _in_chunks(one, dec, n, chunk, lanes)
    return dst


def _laned(lanes: Lanes | None, n: int) -> bool:
    return lanes is not None and n >= MIN_LANE_ROWS


def _in_chunks(run_chunk, sess, n: int, chunk: int, lanes: Lanes | None) -> None:
    """``run_chunk(session, lo, hi)`` over ``n`` rows: on ``lanes`` for a large batch (chunks of at most
    :data:`~curvae.runtime.engine.lanes.LANE_ROWS`), else in ``chunk``-row calls of ``sess``."""
    if _laned(lanes, n):
        lanes.map(run_chunk, n, min(chunk, LANE_ROWS))
    else:
        for lo in range(0, n, chunk):
            run_chunk(sess, lo, min(lo + chunk, n))


#: Up to this many rows, ``encode`` (posterior means) takes :func:`encode_means`: an interactive caller's one-row
#: call then costs little more than the session's own run.
SMALL_ROWS = 16
_MEANS = ["mu", "logvar"]
_ZEROS: dict[tuple[int, int], NDArray[np.float32]] = {}


def zero_eps(rows: int, latent_dim: int) -> NDArray[np.float32]:
    """A read-only (rows, latent_dim) float32 zero ``eps``, made once per shape for small calls."""
    key = (rows, latent_dim)
    eps = _ZEROS.get(key)
    if eps is None:
        eps = np.zeros(key, np.float32)
        eps.flags.writeable = False
        if rows <= SMALL_ROWS:
            _ZEROS[key] = eps
    return eps


def encode_means(enc, x: NDArray[np.float32], latent_dim: int, row_offset: int = 0) -> NDArray[np.float32]:
    """Posterior means of a few checked curves ``x`` (n ≤ SMALL_ROWS, P): the graph's ``mu`` and ``logvar``
    only (with eps = 0, z is μ), one Python pass over their few values for finiteness."""
    mu, logvar = enc.run(_MEANS, {"x": x, "eps": zero_eps(x.shape[0], latent_dim)})
    if all(map(math.isfinite, mu.ravel().tolist() + logvar.ravel().tolist())):
        return mu
    return run_encoder(enc, x, zero_eps(x.shape[0], latent_dim), latent_dim, row_offset)[1]  # names the rows
