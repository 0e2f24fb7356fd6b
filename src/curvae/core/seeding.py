"""Randomness as an argument: ``seed`` may be an int, a Generator or None."""

from __future__ import annotations

import numpy as np

Seed = int | np.random.Generator | None


def rng(seed: Seed) -> np.random.Generator:
    """Return a numpy Generator for ``seed`` (the Generator itself if one is given)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
