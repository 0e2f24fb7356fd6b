"""What the fitting room fits through: a forward function from fit coordinates to curves, with its grid.

A latent-space fit moves ``z`` through the decoder; a parameter-space fit moves
scaled parameters through the emulator. The engine, the uncertainty and MCMC
need the same few facts of either, and nothing else of the model:

- ``run``: coordinates (m, dim) float32 → curves (m, P) float32 on ``grid``;
- ``start``: where the fit of whole curves starts (the encoder's μ, or the
  parameter head's θ of it), and ``draw_starts`` for extra starts;
- ``record``: the forward's own error on held-out curves (the out-of-family
  reference and the true-curve band);
- ``bound`` and ``box``: a coordinate bound the fit keeps (parameters stay in
  their training range), and whether MCMC must keep it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from curvae.runtime.bundle.records import FitResidualRecord

RunFn = Callable[[NDArray[np.float32]], NDArray[np.float32]]
StartFn = Callable[[NDArray[np.float32], int], NDArray[np.float32]]


def _normal_starts(draws: NDArray[np.float64]) -> NDArray[np.float32]:
    return draws.astype(np.float32)


@dataclass(frozen=True)
class Forward:
    """A forward function and the facts a fit needs about it.

    Attributes
    ----------
    run : callable
        ``(m, dim)`` float32 coordinates → ``(m, n_points)`` float32 curves.
    grid : ndarray of shape (n_points,)
        The x values of the curves' points.
    dim : int
        Number of fit coordinates.
    start : callable
        ``start(curves (n, n_points) float32, row_offset) → (n, dim)``: the starting point of complete curves.
    record : FitResidualRecord or None
        Residuals of this forward's default fit on held-out curves, when the bundle records them.
    draw_starts : callable
        Maps standard normal draws ``(..., dim)`` to extra starting points (the prior's draws for z).
    bound : float or None
        Every coordinate is kept in ``[-bound, bound]`` by every fit and every MCMC walker (None: unbounded).
    space : {"z", "theta"}
        What the coordinates are, for messages.
    """

    run: RunFn
    grid: NDArray[np.float64]
    dim: int
    start: StartFn
    record: FitResidualRecord | None = None
    draw_starts: Callable[[NDArray[np.float64]], NDArray[np.float32]] = _normal_starts
    bound: float | None = None
    space: str = "z"

    @property
    def n_points(self) -> int:
        return int(self.grid.shape[0])
