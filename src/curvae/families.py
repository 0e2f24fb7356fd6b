"""Built-in curve families: named, seeded generators of curves on a grid, with their parameters.

Two kinds:

- ``beta``, ``gamma`` and ``normal`` are log-PDFs of exponential families.
  Each is **exactly linear in three fixed functions** of the grid (Beta:
  log x, log(1−x), 1; Gamma: log x, x, 1; Normal: x², x, 1), so PCA with 3
  components reproduces them to float rounding. They are the worked
  example's data, and a check that a model is at least as good as a linear
  basis (``docs/families.md``).
- ``peak``, ``logistic``, ``damped`` and ``planck`` bend: no linear basis of
  the size of their parameter count describes them. They are where a
  nonlinear latent space earns its keep.

The curves are written out in closed form with numpy and ``math.lgamma``:
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
    fn : callable
        ``fn(grid (P,), theta (n, k)) -> (n, P)``: the curve of each parameter row.
    linear_dim : int or None
        For an exponential family, the number of fixed functions its curves are
        a linear combination of (PCA with that many components is exact); None
        for a family that bends.
    """

    name: str
    description: str
    grid_range: tuple[float, float]
    n_points: int
    params: tuple[tuple[str, float, float], ...]
    fn: LogPdf
    linear_dim: int | None = None

    @property
    def logpdf(self) -> LogPdf:
        """The curve function (the log-PDF for ``beta``, ``gamma``, ``normal``); same as ``fn``."""
        return self.fn

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p[0] for p in self.params)

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
        return self.fn(self.grid(n_points), np.asarray(theta, np.float64)).astype(np.float32)

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
            **({"linear_dim": self.linear_dim} if self.linear_dim else {}),
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


def _peak(x, t):
    centre, width = t[:, [0]], t[:, [1]]
    return np.exp(-0.5 * ((x - centre) / width) ** 2)


def _logistic(x, t):
    log_ec50, hill = t[:, [0]], t[:, [1]]
    return 1.0 / (1.0 + 10.0 ** ((log_ec50 - x) * hill))


def _damped(x, t):
    freq, damping, phase = t[:, [0]], t[:, [1]], t[:, [2]]
    return np.exp(-damping * x) * np.cos(2.0 * math.pi * freq * x + phase)


_H_C_OVER_K = 14387.76877  # h·c/k in µm·K (second radiation constant, CODATA 2018)
_PLANCK_REF = 2.897771955e3 / 5000.0  # Wien peak (µm) at the reference temperature 5000 K


def _planck_shape(lam, temp):
    return lam ** -5.0 / np.expm1(_H_C_OVER_K / (lam * temp))


def _planck(x, t):
    temp, scale = t[:, [0]], t[:, [1]]
    ref = _planck_shape(np.array(_PLANCK_REF), 5000.0)  # 1.0 at the 5000 K peak
    return scale * _planck_shape(x, temp) / ref


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("beta", "Beta(alpha, beta) log-PDF on [0.01, 0.99]; linear in log x, log(1-x), 1", (0.01, 0.99),
               100, (("alpha", 0.0, 5.0), ("beta", 0.0, 5.0)), _beta, linear_dim=3),
        Family("gamma", "Gamma(shape, scale) log-PDF on [0.1, 10]; linear in log x, x, 1", (0.1, 10.0), 100,
               (("shape", 0.5, 5.0), ("scale", 0.5, 2.0)), _gamma, linear_dim=3),
        Family("normal", "Normal(mu, sigma) log-PDF on [-5, 5]; linear in x^2, x, 1", (-5.0, 5.0), 100,
               (("mu", -2.0, 2.0), ("sigma", 0.5, 2.0)), _normal, linear_dim=3),
        Family("peak", "Gaussian peak exp(-(x-centre)^2/(2 width^2)) on [0, 1]", (0.0, 1.0), 100,
               (("centre", 0.2, 0.8), ("width", 0.02, 0.15)), _peak),
        Family("logistic", "4-parameter logistic dose-response 1/(1+10^((log_ec50-x)·hill)), x = log10 dose "
               "on [-3, 3]", (-3.0, 3.0), 100, (("log_ec50", -2.0, 2.0), ("hill", 0.5, 4.0)), _logistic),
        Family("damped", "damped oscillation exp(-damping·t)·cos(2π·freq·t + phase) on t in [0, 5]", (0.0, 5.0),
               100, (("freq", 0.3, 1.5), ("damping", 0.1, 1.0), ("phase", -1.5, 1.5)), _damped),
        Family("planck", "blackbody spectrum scale·B(λ, T) over λ in [0.1, 4] µm, 1 at the 5000 K peak",
               (0.1, 4.0), 100, (("temperature", 2000.0, 10000.0), ("scale", 0.5, 2.0)), _planck),
    )
}


def get_family(name: str) -> Family:
    """Look up a built-in family by name."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise InputError(f"family {name!r} is not built in; choose one of {', '.join(FAMILIES)} "
                         "or pass your own curves with --data") from None
