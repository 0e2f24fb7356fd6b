"""The curve's parameters from its fitted code: ``θ = head(z)``, with delta-method error bars.

Per target, with ``u`` the head's training space (``log θ`` or ``θ``, per
parameter, :class:`~curvae.runtime.bundle.param_head.ParamHeadRecord`):

- ``J_u`` (k, D) is the head's Jacobian in ``u``, by forward differences
  (one batched call of ``params.onnx`` on ``z`` and ``z + h·e_i``);
- ``cov_u = J_u Σ_z J_uᵀ + diag(e²)``: the fit's code covariance carried
  through the head, plus the head's own held-out error ``e`` recorded at export;
- ``theta_cov = D cov_u D`` with ``D = diag(dθ/du)`` (θ for a log parameter, 1
  otherwise), ``theta_std`` its diagonal's root;
- ``theta_lo``, ``theta_hi``: ``u ± 1.96·√diag(cov_u)`` mapped back, the 95%
  interval (positive and asymmetric for a log parameter).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from curvae.runtime.bundle.param_head import ParamHeadRecord, to_u
from curvae.runtime.fitting.engine import FitResult

#: Step of the central differences, in units of the (standardised) latent code.
JACOBIAN_STEP = 3e-3
#: The two-sided 95% normal quantile.
Z95 = 1.959963984540054


class ParamHead:
    """``params.onnx`` opened in a session, with its manifest record."""

    def __init__(self, session, record: ParamHeadRecord) -> None:
        self.session = session
        self.record = record
        self.log = record.log_mask()

    @property
    def names(self) -> tuple[str, ...]:
        return self.record.names

    def __call__(self, z: NDArray[np.float32]) -> NDArray[np.float64]:
        """θ of each code, (n, D) → (n, k) float64."""
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.shape[0] == 0:
            return np.empty((0, self.record.k))
        return self.session.run(None, {"z": z})[0].astype(np.float64)

    def to_u(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        return to_u(theta, self.record.transforms)

    def from_u(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(over="ignore"):
            return np.where(self.log, np.exp(np.where(self.log, u, 0.0)), u)

    def jacobian_u(self, z: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """θ (n, k) and ``du/dz`` (n, k, D) by forward differences, in one call of the graph on ``n·(D + 1)`` rows.

        The step's truncation error (about h·|d²u/dz²|, ~1e-3 of the slope) is far below the head's own error.
        """
        n, d = z.shape
        h = JACOBIAN_STEP
        steps = np.concatenate([np.zeros((1, d)), h * np.eye(d)]).astype(np.float32)  # (D + 1, D)
        probes = (z[:, None, :].astype(np.float32) + steps[None]).reshape(-1, d)
        theta = self(probes).reshape(n, d + 1, -1)  # (n, D + 1, k)
        u = self.to_u(theta)
        jac = (u[:, 1:] - u[:, :1]).transpose(0, 2, 1) / h  # (n, k, D)
        return theta[:, 0], jac

    def annotate(self, res: FitResult) -> FitResult:
        """``res`` with ``theta``; with its code covariance (``res.cov``) also ``theta_std``, ``theta_cov``,
        ``theta_lo`` and ``theta_hi``."""
        if res.cov is None:
            return replace(res, theta=self(res.z))
        theta, jac = self.jacobian_u(res.z)
        cov_z = np.asarray(res.cov, np.float64)
        finite = np.isfinite(cov_z).all(axis=(1, 2))
        safe = np.where(finite[:, None, None], cov_z, 0.0)
        cov_u = jac @ safe @ jac.transpose(0, 2, 1) + np.diag(np.square(self.record.error))[None]
        cov_u[~finite] = np.inf
        scale = np.where(self.log, theta, 1.0)  # dθ/du
        theta_cov = cov_u * scale[:, :, None] * scale[:, None, :]
        theta_cov[~finite] = np.inf
        std_u = np.sqrt(np.diagonal(cov_u, axis1=1, axis2=2))
        u = self.to_u(theta)
        lo, hi = self.from_u(u - Z95 * std_u), self.from_u(u + Z95 * std_u)
        return replace(res, theta=theta, theta_cov=theta_cov,
                       theta_std=np.sqrt(np.diagonal(theta_cov, axis1=1, axis2=2)), theta_lo=lo, theta_hi=hi)
