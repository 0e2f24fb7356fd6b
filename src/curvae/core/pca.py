"""PCA, the linear baseline a learned representation must beat: fitted once, scored on held-out curves.

A basis of ``d`` principal components is what a user would pick instead of
curvae. Its best fit of a curve is the orthogonal projection, so its residual
is exact, with no optimiser involved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Largest number of components scored (and the largest training sample used to fit them).
MAX_COMPONENTS = 64
MAX_FIT_ROWS = 20_000


@dataclass(frozen=True)
class PCA:
    """Mean (P,) and orthonormal components (k, P) of a set of curves, in their own units."""

    mean: NDArray[np.float64]
    components: NDArray[np.float64]

    @classmethod
    def fit(cls, curves: NDArray, *, max_components: int = MAX_COMPONENTS, seed: int = 0) -> PCA:
        """Fit on ``curves`` (n, P); more than ``MAX_FIT_ROWS`` rows are subsampled (seeded)."""
        x = np.asarray(curves, np.float64)
        if len(x) > MAX_FIT_ROWS:
            x = x[np.sort(np.random.default_rng(seed).choice(len(x), MAX_FIT_ROWS, replace=False))]
        mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        return cls(mean=mean, components=vt[:max_components])

    def residuals(self, curves: NDArray, d: int) -> NDArray[np.float64]:
        """L2 norm of each curve minus its projection on the first ``d`` components, shape (n,)."""
        x = np.asarray(curves, np.float64) - self.mean
        v = self.components[:d]
        return np.linalg.norm(x - (x @ v.T) @ v, axis=1)

    def median_by_size(self, curves: NDArray, sizes) -> dict[int, float]:
        """Median held-out residual for each basis size in ``sizes`` (those the fit has components for)."""
        return {int(d): float(np.median(self.residuals(curves, d))) for d in sizes if d <= len(self.components)}

    def components_to_match(self, curves: NDArray, target: float, *, measure=np.median) -> int | None:
        """The fewest components whose ``measure`` of the residuals on ``curves`` (their median by default) is at
        most ``target`` (None: more than the fit holds)."""
        for d in range(0, len(self.components) + 1):
            if float(measure(self.residuals(curves, d))) <= target:
                return d
        return None
