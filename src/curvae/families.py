"""Built-in curve families: named, seeded generators of log-PDF curves on a grid.

The log-PDFs are written out in closed form with numpy and ``math.lgamma``:
importing ``scipy.stats`` alone takes longer than a short training run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from curvae.core.errors import InputError
from curvae.core.seeding import Seed, rng

LogPdf = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


@dataclass(frozen=True)
class Family:
    """A parametric curve family.

    Attributes
    ----------
    name : str
    description : str
    grid_range : (float, float)
        Ends of the evaluation grid (inclusive).
    n_points : int
        Default number of grid points.
    params : tuple of (name, low, high)
        Each parameter is drawn uniformly from (low, high).
    logpdf : callable
        ``logpdf(grid (P,), theta (n, k)) -> (n, P)``.
    """

    name: str
    description: str
    grid_range: tuple[float, float]
    n_points: int
    params: tuple[tuple[str, float, float], ...]
    logpdf: LogPdf

    def grid(self, n_points: int | None = None) -> NDArray[np.float64]:
        """The evaluation grid, shape (n_points,)."""
        return np.linspace(*self.grid_range, n_points or self.n_points)

    def sample_params(self, n: int, *, seed: Seed = None) -> NDArray[np.float64]:
        """Draw parameters uniformly within their ranges, shape (n, n_params)."""
        g = rng(seed)
        lows = np.array([p[1] for p in self.params])
        highs = np.array([p[2] for p in self.params])
        theta = g.uniform(lows, highs, size=(n, len(self.params)))
        # The open interval (low, high): never hit an endpoint exactly.
        span = highs - lows
        return np.clip(theta, lows + 1e-6 * span, highs - 1e-6 * span)

    def curves(self, theta: NDArray[np.float64], n_points: int | None = None) -> NDArray[np.float32]:
        """Evaluate the log-PDF for each parameter row, shape (n, n_points), float32."""
        return self.logpdf(self.grid(n_points), np.asarray(theta, np.float64)).astype(np.float32)

    def sample(self, n: int, *, seed: Seed = None, n_points: int | None = None):
        """Draw ``n`` curves.

        Returns
        -------
        curves : ndarray of shape (n, n_points), float32
        theta : ndarray of shape (n, n_params), float64
        """
        theta = self.sample_params(n, seed=seed)
        return self.curves(theta, n_points), theta

    def to_dict(self) -> dict:
        """Manifest description: name, grid range and parameter ranges."""
        return {
            "name": self.name,
            "description": self.description,
            "grid_range": list(self.grid_range),
            "params": {p[0]: [p[1], p[2]] for p in self.params},
        }


_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def _log_gamma(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """log Γ(a) elementwise, same shape as ``a``."""
    return _lgamma(a).astype(np.float64)


def _beta(x, t):
    a, b = t[:, [0]], t[:, [1]]
    log_norm = _log_gamma(a + b) - _log_gamma(a) - _log_gamma(b)
    return (a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) + log_norm


def _gamma(x, t):
    k, scale = t[:, [0]], t[:, [1]]
    return (k - 1.0) * np.log(x) - x / scale - _log_gamma(k) - k * np.log(scale)


def _normal(x, t):
    mu, sigma = t[:, [0]], t[:, [1]]
    return -0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2.0 * math.pi)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("beta", "Beta(alpha, beta) log-PDF on [0.01, 0.99]", (0.01, 0.99), 100,
               (("alpha", 0.0, 5.0), ("beta", 0.0, 5.0)), _beta),
        Family("gamma", "Gamma(shape, scale) log-PDF on [0.1, 10]", (0.1, 10.0), 100,
               (("shape", 0.5, 5.0), ("scale", 0.5, 2.0)), _gamma),
        Family("normal", "Normal(mu, sigma) log-PDF on [-5, 5]", (-5.0, 5.0), 100,
               (("mu", -2.0, 2.0), ("sigma", 0.5, 2.0)), _normal),
    )
}


def get_family(name: str) -> Family:
    """Look up a built-in family by name."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise InputError(f"family {name!r} is not built in; choose one of {', '.join(FAMILIES)} "
                         "or pass your own curves with --data") from None
