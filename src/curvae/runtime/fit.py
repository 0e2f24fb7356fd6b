"""Latent fitting: find the code whose decoding matches each target curve.

``"lm"`` is a Levenberg-Marquardt solver vectorised across targets: each
iteration makes one decoder call for the central-difference Jacobians of all
active targets and one for the trial steps. ``"nelder-mead"`` and
``"least-squares"`` run scipy per target and serve as references.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

DecodeFn = Callable[[NDArray[np.float32]], NDArray[np.float32]]
FitMethod = Literal["lm", "nelder-mead", "least-squares"]
FIT_METHODS: tuple[str, ...] = ("lm", "nelder-mead", "least-squares")


@dataclass(frozen=True)
class FitOptions:
    """Options of :func:`fit_latent`; defaults suit the built-in families."""

    method: FitMethod = "lm"
    max_iter: int = 100
    ftol: float = 1e-7
    xtol: float = 1e-6
    prior_weight: float = 0.0
    bound: float | None = None


@dataclass(frozen=True)
class FitResult:
    """Result of fitting latent codes to targets.

    Attributes
    ----------
    z : ndarray of shape (n_targets, latent_dim), float32
        Fitted codes.
    residual : ndarray of shape (n_targets,), float64
        L2 norm of ``target - decode(z)`` over the grid points.
    success : ndarray of shape (n_targets,), bool
        True only for a finite, converged fit.
    nfev : ndarray of shape (n_targets,), int64
        Decoder evaluations (rows) spent on each target.
    message : ndarray of shape (n_targets,), str
        Why each fit stopped.
    x_hat : ndarray of shape (n_targets, n_points), float32
        ``decode(z)``.
    """

    z: NDArray[np.float32]
    residual: NDArray[np.float64]
    success: NDArray[np.bool_]
    nfev: NDArray[np.int64]
    message: NDArray[np.str_]
    x_hat: NDArray[np.float32]


def fit_latent(
    decode: DecodeFn,
    targets: NDArray[np.float32],
    z0: NDArray[np.float32],
    options: FitOptions = FitOptions(),
) -> FitResult:
    """Fit one latent code per target, starting from ``z0``.

    Parameters
    ----------
    decode : callable
        Maps float32 codes of shape (m, latent_dim) to curves of shape (m, n_points).
    targets : ndarray of shape (n_targets, n_points)
    z0 : ndarray of shape (n_targets, latent_dim)
    options : FitOptions

    Returns
    -------
    FitResult
    """
    if options.method == "lm":
        z, nfev, conv, msg = _fit_lm(decode, targets, z0, options)
    elif options.method in ("nelder-mead", "least-squares"):
        z, nfev, conv, msg = _fit_scipy(decode, targets, z0, options)
    else:  # validated by CurveModel.fit; kept as an internal invariant
        raise AssertionError(options.method)
    z32 = z.astype(np.float32)
    x_hat = decode(z32)
    residual = np.linalg.norm(x_hat.astype(np.float64) - targets, axis=1)
    finite = np.isfinite(z32).all(axis=1) & np.isfinite(residual)
    msg = np.where(finite, msg, "non-finite code or residual")
    return FitResult(z=z32, residual=residual, success=conv & finite, nfev=nfev, message=msg.astype(str), x_hat=x_hat)


def _clip(z: NDArray[np.float64], bound: float | None) -> NDArray[np.float64]:
    return z if bound is None else np.clip(z, -bound, bound)


def _fit_lm(decode: DecodeFn, targets: NDArray[np.float32], z0: NDArray[np.float32], o: FitOptions):
    """Batched Levenberg-Marquardt with central-difference Jacobians and an optional Gaussian prior."""
    t = targets.astype(np.float64)
    z = _clip(z0.astype(np.float64), o.bound)
    n, d = z.shape
    lam = np.full(n, 1e-3)
    nfev = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    conv = np.zeros(n, dtype=bool)
    msg = np.full(n, f"max_iter={o.max_iter} reached", dtype=object)
    w = o.prior_weight
    eye = np.eye(d)
    for _ in range(o.max_iter):
        idx = np.flatnonzero(~done)
        if idx.size == 0:
            break
        za, ta, m = z[idx], t[idx], idx.size
        h = 1e-3 * np.maximum(1.0, np.abs(za))  # (m, d): float32 decoder → step ~ sqrt(eps32)
        steps = [za] + [za + h[:, [k]] * eye[k] for k in range(d)] + [za - h[:, [k]] * eye[k] for k in range(d)]
        out = decode(np.concatenate(steps).astype(np.float32)).astype(np.float64).reshape(2 * d + 1, m, -1)
        r = out[0] - ta  # (m, P)
        jac = np.stack([(out[1 + k] - out[1 + d + k]) / (2 * h[:, [k]]) for k in range(d)], axis=2)  # (m, P, d)
        cost = np.einsum("mp,mp->m", r, r) + w * np.einsum("md,md->m", za, za)
        grad = np.einsum("mpd,mp->md", jac, r) + w * za
        hess = np.einsum("mpd,mpe->mde", jac, jac) + w * eye
        damp = lam[idx, None, None] * (np.maximum(np.diagonal(hess, axis1=1, axis2=2), 1e-9)[:, :, None] * eye)
        try:
            delta = np.linalg.solve(hess + damp, -grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            delta = -grad / np.maximum(np.diagonal(hess + damp, axis1=1, axis2=2), 1e-9)
        trial = _clip(za + delta, o.bound)
        rt = decode(trial.astype(np.float32)).astype(np.float64) - ta
        cost_t = np.einsum("mp,mp->m", rt, rt) + w * np.einsum("md,md->m", trial, trial)
        nfev[idx] += 2 * d + 2
        better = np.isfinite(cost_t) & (cost_t < cost)
        z[idx[better]] = trial[better]
        lam[idx] = np.where(better, np.maximum(lam[idx] / 3, 1e-9), lam[idx] * 4)
        small_f = better & ((cost - cost_t) <= o.ftol * np.maximum(cost, 1e-30))
        small_x = np.linalg.norm(delta, axis=1) <= o.xtol * (np.linalg.norm(za, axis=1) + o.xtol)
        stuck = lam[idx] > 1e8  # no step improves: a minimum at float32 precision
        for mask, why in ((small_f, "converged: cost change below ftol"),
                          (small_x & ~small_f, "converged: step below xtol"),
                          (stuck & ~small_f & ~small_x, "converged: no further decrease at float32 precision")):
            hit = idx[mask & ~done[idx]]
            done[hit] = conv[hit] = True
            msg[hit] = why
        bad = idx[~np.isfinite(cost)]
        done[bad] = True
        msg[bad] = "non-finite decoder output"
    return z, nfev, conv, msg


def _fit_scipy(decode: DecodeFn, targets: NDArray[np.float32], z0: NDArray[np.float32], o: FitOptions):
    """Per-target scipy reference fits (Nelder-Mead as in the worked example, or least_squares)."""
    from scipy import optimize  # imported here: it is most of the runtime's import time

    n, d = z0.shape
    z = np.empty((n, d))
    nfev = np.zeros(n, dtype=np.int64)
    conv = np.zeros(n, dtype=bool)
    msg = np.empty(n, dtype=object)
    sw = np.sqrt(o.prior_weight)
    bounds = (-np.inf, np.inf) if o.bound is None else (-o.bound, o.bound)
    for i in range(n):
        target = targets[i].astype(np.float64)

        def resid(v: NDArray[np.float64]) -> NDArray[np.float64]:
            r = decode(v.astype(np.float32)[None, :])[0].astype(np.float64) - target
            return np.concatenate([r, sw * v]) if sw else r

        start = _clip(z0[i].astype(np.float64), o.bound)
        if o.method == "nelder-mead":
            res = optimize.minimize(
                lambda v: float(np.sum(resid(v) ** 2)),
                start, method="Nelder-Mead",
                bounds=None if o.bound is None else [bounds] * d,
                options={"maxiter": o.max_iter * 20 * d, "xatol": o.xtol * 100, "fatol": 1e-10},
            )
        else:
            res = optimize.least_squares(resid, start, method="trf", diff_step=1e-3, bounds=bounds,
                                         max_nfev=o.max_iter * (d + 1), ftol=1e-10, xtol=o.xtol)
        # least_squares counts Jacobian evaluations apart; each costs d decoder rows.
        used = res.nfev + d * int(getattr(res, "njev", 0) or 0)
        z[i], nfev[i], conv[i], msg[i] = res.x, used, bool(res.success), str(res.message)
    return z, nfev, conv, msg
