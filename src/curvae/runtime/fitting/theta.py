"""Fits in parameter space: the same batched LM over θ, through the emulator (θ → z → curve).

The fit moves ``v`` in the box ``[-1, 1]^k``, which spans the training range of
each parameter in ``u`` (``log θ`` for a positive parameter learnt in log
space, ``θ`` otherwise): ``u = u_mid + u_half·v``. The engine keeps ``v`` in
the box (the training range), and MCMC samples it under a uniform prior there.

Back in θ, per target:

- ``theta = from_u(u_mid + u_half·v̂)``;
- ``cov_u = diag(u_half) Σ_v diag(u_half)``, with ``Σ_v`` the fit's Laplace
  covariance (σ and the emulator's own error per point weigh it as in a
  latent fit), ``theta_cov = D cov_u D`` with ``D = dθ/du``;
- ``theta_lo``, ``theta_hi``: ``u ± 1.96·√diag(cov_u)`` mapped back (with MCMC:
  the samples' 2.5% and 97.5% quantiles);
- ``z``: the code the emulator decodes from at θ̂ (its own output), so a
  parameter fit can be compared with, or continued as, a latent one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from curvae.runtime.bundle.records import FitResidualRecord
from curvae.runtime.fitting.engine import FitResult
from curvae.runtime.fitting.forward import Forward, RunFn, StartFn
from curvae.runtime.fitting.params import Z95

#: Starts from the parameter head are pulled this far inside the box, so the first probes see both sides.
START_MARGIN = 0.98
#: Extra starts are normal draws times this, clipped to the box: most of the range, few at its edges.
START_SPREAD = 0.6


def theta_forward(run_v: RunFn, grid: NDArray[np.float64], k: int, start_v: StartFn,
                  record: FitResidualRecord | None) -> Forward:
    """The :class:`Forward` of a parameter-space fit: ``run_v`` maps v (m, k) to curves (m, P)."""
    return Forward(run=run_v, grid=grid, dim=k, start=start_v, record=record, bound=1.0, space="theta",
                   draw_starts=lambda d: np.clip(START_SPREAD * d, -1.0, 1.0).astype(np.float32))


def start_in_box(v: NDArray[np.float64]) -> NDArray[np.float32]:
    """Starting points v (n, k) inside the box; a missing start (NaN) is the centre of the range."""
    return np.clip(np.nan_to_num(v, nan=0.0, posinf=1.0, neginf=-1.0), -START_MARGIN, START_MARGIN).astype(np.float32)


def theta_result(res: FitResult, *, from_v: Callable[[NDArray], NDArray[np.float64]], u_half: NDArray[np.float64],
                 transforms: tuple[str, ...], codes: Callable[[NDArray[np.float64]], NDArray[np.float32]]) -> FitResult:
    """A fit over v as a fit over θ: ``theta`` and, with uncertainty, its covariance and 95% intervals.

    ``z`` becomes the emulator's code at θ̂; ``cov`` and ``z_std`` (of v) are dropped, and MCMC ``samples`` of v
    become samples of θ.
    """
    v = res.z.astype(np.float64)
    theta = from_v(v)
    out = {"theta": theta, "z": codes(theta), "cov": None, "z_std": None}
    if res.samples is not None:
        out["samples"] = from_v(res.samples.reshape(-1, v.shape[1]).astype(np.float64)).reshape(
            res.samples.shape).astype(np.float32)
    if res.cov is None:
        return replace(res, **out)
    cov_u = np.asarray(res.cov, np.float64) * u_half[None, :, None] * u_half[None, None, :]
    log = np.array([t == "log" for t in transforms])
    scale = np.where(log, theta, 1.0)  # dθ/du
    with np.errstate(invalid="ignore"):  # inf covariances of ill-conditioned fits stay inf
        theta_cov = cov_u * scale[:, :, None] * scale[:, None, :]
    if res.samples is not None:  # MCMC: the samples' own spread and quantiles, in θ
        s = out["samples"].astype(np.float64)
        centred = s - s.mean(axis=1, keepdims=True)
        theta_cov = np.einsum("nmi,nmj->nij", centred, centred) / max(s.shape[1] - 1, 1)
        lo, hi = np.quantile(s, [0.025, 0.975], axis=1)
    else:
        half_v = Z95 * np.sqrt(np.clip(np.diagonal(cov_u, axis1=1, axis2=2), 0, None)) / u_half  # in v
        lo, hi = from_v(v - half_v), from_v(v + half_v)
    out.update(theta_cov=theta_cov, theta_std=np.sqrt(np.clip(np.diagonal(theta_cov, axis1=1, axis2=2), 0, None)),
               theta_lo=lo, theta_hi=hi)
    return replace(res, **out)
