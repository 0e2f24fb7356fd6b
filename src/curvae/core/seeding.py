"""Randomness as an argument: ``seed`` may be an int, a Generator or None."""

from __future__ import annotations

import numpy as np

Seed = int | np.random.Generator | None


def rng(seed: Seed) -> np.random.Generator:
    """Return a numpy Generator for ``seed`` (the Generator itself if one is given)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


#: Rows per block of :func:`row_normals`: each block has its own stream, so rows can be drawn in any chunking.
ROW_BLOCK = 1024


def entropy(seed: Seed) -> int:
    """One non-negative integer standing for ``seed``: fresh entropy for None, a draw from a Generator.

    Seeded draws per row (:func:`row_normals`, :func:`row_rng`) start from it, so a
    job split into chunks (or across processes) takes one value on the client and
    hands it to every chunk.
    """
    if seed is None:
        return int(np.random.SeedSequence().entropy % 2**63)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**63))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        from curvae.core.errors import InputError

        raise InputError(f"seed={seed!r} must be a non-negative integer, a numpy Generator or None")
    return int(seed)


def row_normals(seed: int, start: int, stop: int, tail: tuple[int, ...]) -> np.ndarray:
    """Standard normals for rows ``start:stop`` of a set, the same however the set is chunked.

    Row ``i`` takes its values from block ``i // ROW_BLOCK``, whose stream is
    seeded by ``(seed, block)``; a chunk draws the blocks it touches whole and
    keeps its rows, so the cost per row stays O(1).

    Returns
    -------
    ndarray of shape (stop - start, *tail), float64
    """
    out = np.empty((stop - start, *tail))
    for b in range(start // ROW_BLOCK, (stop - 1) // ROW_BLOCK + 1 if stop > start else 0):
        lo, hi = max(start, b * ROW_BLOCK), min(stop, (b + 1) * ROW_BLOCK)
        block = np.random.default_rng([seed, b]).standard_normal((min(ROW_BLOCK, hi - b * ROW_BLOCK), *tail))
        out[lo - start:hi - start] = block[lo - b * ROW_BLOCK:]
    return out


def row_rng(seed: int, row: int) -> np.random.Generator:
    """A generator of its own for row ``row`` of a set (MCMC walkers), independent of chunking."""
    return np.random.default_rng([seed, 2**32 + row])
