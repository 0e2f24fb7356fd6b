"""The bundle as a forward emulator: ``θ → curve`` by ``emulator.onnx``, and the checks on θ.

The graph is a small θ → z network followed by the bundle's decoder, so one
``session.run`` gives both the curve and its code. Parameters are checked
against the training range recorded in the manifest: outside it the network
extrapolates, which :meth:`Emulator.check` refuses unless asked, and then flags.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

from curvae.core.errors import InputError
from curvae.runtime.arrays import as_matrix
from curvae.runtime.bundle.emulator import EmulatorRecord
from curvae.runtime.bundle.param_head import to_u

#: A value this close to an end of its range (relative to the range's width) still counts as inside it.
RANGE_SLACK = 1e-9


class ExtrapolationWarning(UserWarning):
    """Parameters outside the emulator's training range were emulated (``extrapolate=True``)."""


class Emulator:
    """``emulator.onnx`` opened in a session, with its manifest record."""

    def __init__(self, session, record: EmulatorRecord) -> None:
        self.session = session
        self.record = record
        self.low, self.high = np.array(record.low), np.array(record.high)
        slack = RANGE_SLACK * (self.high - self.low)
        self._inside = (self.low - slack, self.high + slack)  # float64 bounds; numpy compares float32 θ exactly
        # The same bounds in float32, rounded outwards: a float32 θ inside them is inside the float64 ones too
        # (up to one float32 step, far below the slack), compared without casting θ.
        self._inside32 = (np.nextafter(self._inside[0].astype(np.float32), np.float32(-np.inf)),
                          np.nextafter(self._inside[1].astype(np.float32), np.float32(np.inf)))
        self._columns = f"parameters ({', '.join(record.names)})"
        u_lo, u_hi = record.u_range()
        self.u_mid, self.u_half = (u_lo + u_hi) / 2, (u_hi - u_lo) / 2  # (k,): the fit space's box

    @property
    def names(self) -> tuple[str, ...]:
        return self.record.names

    def theta(self, theta: ArrayLike, *, row_offset: int = 0) -> NDArray[np.float32]:
        """``theta`` as a float32 (n, k) matrix of finite values, or InputError naming the first bad one."""
        return as_matrix(theta, name="theta", n_cols=self.record.k, col_name=self._columns, row_offset=row_offset)

    def outside(self, theta: NDArray) -> NDArray[np.bool_]:
        """(n,) bool: rows with a parameter outside the training range."""
        lo, hi = self._inside
        return ((theta < lo) | (theta > hi)).any(axis=1)

    def check(self, theta: NDArray, *, extrapolate: bool, row_offset: int = 0) -> NDArray[np.bool_] | None:
        """The rows outside the training range (n,), or None when there are none; InputError on the first unless
        ``extrapolate``, when a warning says how many there are."""
        lo32, hi32 = self._inside32
        if (theta >= lo32).all() and (theta <= hi32).all():  # the common case: two comparisons
            return None
        lo, hi = self._inside
        out = self.outside(theta)
        if not out.any():
            return None
        i = int(np.flatnonzero(out)[0])
        j = int(np.flatnonzero((theta[i] < lo) | (theta[i] > hi))[0])
        where = (f"theta[{row_offset + i}, {j}] ({self.names[j]}) = {float(theta[i, j]):.6g} is outside the "
                 f"training range [{self.low[j]:.6g}, {self.high[j]:.6g}]")
        if not extrapolate:
            raise InputError(f"{where}; pass parameters inside it, or extrapolate=True (--extrapolate) to emulate "
                             "anyway with a warning and a per-row flag")
        warnings.warn(f"{int(out.sum())} of {len(out)} rows are outside the training range (first: {where}); the "
                      "emulator extrapolates there", ExtrapolationWarning, stacklevel=3)
        return out

    def run(self, theta: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(curves (n, P), codes (n, latent_dim)) of checked parameters, in one session call."""
        x, z = self.session.run(None, {"theta": theta})
        return x, z

    # The fit space: v in [-1, 1]^k spans the training range in u (log θ or θ per parameter).
    def to_v(self, theta: NDArray) -> NDArray[np.float64]:
        """θ (n, k) → v (n, k); NaN where a log parameter is <= 0."""
        return (to_u(np.asarray(theta, np.float64), self.record.transforms) - self.u_mid) / self.u_half

    def from_v(self, v: NDArray) -> NDArray[np.float64]:
        """v (n, k) → θ (n, k)."""
        u = self.u_mid + self.u_half * np.asarray(v, np.float64)
        log = np.array([t == "log" for t in self.record.transforms])
        with np.errstate(over="ignore"):
            return np.where(log, np.exp(np.where(log, u, 0.0)), u)

    def run_v(self, v: NDArray[np.float32]) -> NDArray[np.float32]:
        """The curves (m, P) of fit coordinates v (m, k): the forward function of a parameter-space fit."""
        return self.session.run(["x_hat"], {"theta": self.from_v(v).astype(np.float32)})[0]
