"""What :meth:`CurveModel.fit` does: check the options, then per chunk of targets start, run the engine, add
the uncertainty, and (``method="mcmc"``) sample the posterior.

The functions take a :class:`~curvae.runtime.fitting.forward.Forward` (the decoder over z, or the emulator
over scaled parameters) and never the model itself; ``finish`` turns each chunk's result into what the caller
returns (the parameter head's θ for a latent fit, θ itself for a parameter fit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from curvae.core.errors import InputError
from curvae.core.seeding import Seed, entropy, row_normals
from curvae.runtime.arrays import as_matrix, check_int
from curvae.runtime.fitting.engine import (
    FIT_INITS,
    MODEL_FIT_METHODS,
    FitBuilder,
    FitOptions,
    FitResult,
    fit_with_jacobian,
)
from curvae.runtime.fitting.forward import Forward
from curvae.runtime.fitting.observations import (
    Observations,
    on_model_grid,
    on_shared_grid,
)
from curvae.runtime.fitting.uncertainty import annotate, check_sigma

Finish = Callable[[FitResult], FitResult]

#: Rows per NaN scan of the targets (as the model's onnxruntime chunks).
SCAN_ROWS = 4096


def run_fit(fw: Forward, targets: ArrayLike, *, method: str, init: str, n_starts: int, seed: Seed,
            max_iter: int, prior_weight: float, bound: float | None, uncertainty: bool,
            sigma: float | ArrayLike | None, ood_quantile: float, grid: ArrayLike | None, clip_range: bool,
            observations: Observations | None, row_offset: int, chunk_rows: int,
            finish: Finish | None = None) -> FitResult:
    """:meth:`CurveModel.fit` (see there for every argument) through ``fw``: the options checked, then chunk by
    chunk, each chunk's result passed through ``finish``."""
    check_int("row_offset", row_offset, minimum=0)
    obs = observations if observations is not None else observe(fw, targets, grid, clip_range, row_offset)
    t = obs.values if obs is not None else as_matrix(targets, name="targets", n_cols=fw.n_points, col_name="points",
                                                     row_offset=row_offset)
    if method not in MODEL_FIT_METHODS:
        raise InputError(f"method={method!r} is not a fit method; choose one of {', '.join(MODEL_FIT_METHODS)}")
    if init not in FIT_INITS:
        raise InputError(f"init={init!r} is not supported; choose one of {', '.join(map(repr, FIT_INITS))}")
    check_int("n_starts", n_starts)
    check_int("max_iter", max_iter)
    if not np.isfinite(prior_weight) or prior_weight < 0:
        raise InputError(f"prior_weight={prior_weight!r} must be finite and >= 0")
    if bound is not None and not (np.isfinite(bound) and bound > 0):
        raise InputError(f"bound={bound!r} must be a positive finite number or None")
    if fw.space == "theta" and (bound is not None or prior_weight > 0):
        raise InputError(f"bound={bound!r} and prior_weight={prior_weight!r} apply to fits of z; a fit in parameter "
                         "space stays in the training range under a uniform prior: leave both out")
    noise = check_sigma(sigma, fw.n_points)
    if obs is not None and noise is not None and not np.all(noise == noise[0]):
        raise InputError("a per-point sigma applies to complete targets on the model grid; give one sigma for "
                         "targets with missing points or their own grid")
    if not (isinstance(ood_quantile, (int, float)) and 0 < ood_quantile < 1):
        raise InputError(f"ood_quantile={ood_quantile!r} must be in (0, 1), e.g. 0.99")
    check_int("chunk_rows", chunk_rows)
    if method == "mcmc" and obs is not None:
        raise InputError("method='mcmc' needs complete targets on the model grid; fit targets with missing points "
                         "or their own grid with 'lm'")
    emu = None if fw.record is None else fw.record.emulator_var()
    var = None if noise is None else noise**2 + (emu if emu is not None and obs is None else 0.0)
    # Per-point variances (σ², plus the model's own error where the bundle records it) weigh the fit itself.
    weights = None if var is None or np.all(var == var[0]) else np.mean(var) / var
    opts = FitOptions(method="lm" if method == "mcmc" else method, max_iter=int(max_iter),
                      prior_weight=float(prior_weight), bound=bound if fw.bound is None else fw.bound,
                      weights=weights, init=init,
                      n_starts=int(n_starts))
    job = {"opts": opts, "uncertainty": uncertainty or method == "mcmc", "noise": noise,
           "quantile": float(ood_quantile), "mcmc": method == "mcmc",
           "seed": entropy(seed) if n_starts > 1 or method == "mcmc" else 0,
           "finish": finish}
    n = t.shape[0]
    # Internal row chunks keep the working memory (Jacobians, probes) flat however many targets there are.
    if n <= chunk_rows:
        return fit_rows(fw, t, obs, job, row_offset)
    out = FitBuilder(n)  # each output allocated once, filled chunk by chunk
    for i in range(0, n, chunk_rows):
        out.add(fit_rows(fw, t[i:i + chunk_rows], None if obs is None else obs.take(slice(i, i + chunk_rows)),
                         job, row_offset + i))
    return out.result()


def fit_rows(fw: Forward, t: NDArray[np.float32], obs: Observations | None, job: dict, start: int) -> FitResult:
    """Fit one chunk of targets, then ``job["finish"]`` (the curves' parameters, when there is one)."""
    res = _fit_codes(fw, t, obs, job, start)
    return res if job.get("finish") is None else job["finish"](res)


def _fit_codes(fw: Forward, t: NDArray[np.float32], obs: Observations | None, job: dict,
               start: int) -> FitResult:
    """Fit one chunk of targets: start, engine, uncertainty, and MCMC when asked."""
    opts: FitOptions = job["opts"]
    n = t.shape[0]
    if opts.init == "zero":
        z0 = np.zeros((n, fw.dim), np.float32)
    elif obs is None:
        z0 = fw.start(t, start)
    elif obs.aligned:  # the encoder needs whole curves: a mask's gaps are interpolated
        z0 = fw.start(obs.impute(t, fw.grid), start)
    else:  # outside a target's own x-range: the centre's curve, then once more from the start found
        z0 = np.zeros((n, fw.dim), np.float32)
        for _ in range(2):
            z0 = fw.start(obs.impute(fw.run(z0), fw.grid), start)
    if opts.n_starts == 1:
        res, jac = fit_with_jacobian(fw.run, t, z0, opts, obs)
    else:
        res, jac = multi_start(fw, t, z0, opts.n_starts, job["seed"], start, opts, obs)
    if not job["uncertainty"]:
        return res
    prior = opts.prior_weight > 0
    res = annotate(res, jac, t, sigma=job["noise"], prior=prior, record=fw.record, quantile=job["quantile"], obs=obs)
    return mcmc(fw, res, t, job["noise"], prior, job["seed"], start) if job["mcmc"] else res


def observe(fw: Forward, targets: ArrayLike, grid: ArrayLike | None, clip_range: bool,
            row_offset: int = 0) -> Observations | None:
    """Observations for targets on their own grid or with NaN; None for complete targets on the model grid."""
    if grid is not None:
        raw = as_matrix(targets, name="targets", col_name="points", allow_nan=True, min_cols=1,
                        row_offset=row_offset)
        x = as_matrix(np.atleast_2d(np.asarray(grid, dtype=np.float64)), name="grid", col_name="x values",
                      min_cols=1)[0]
        return on_shared_grid(raw, x, fw.grid, latent_dim=fw.dim, clip_range=clip_range,
                              names=lambda i: str(i + row_offset))[0]
    t = as_matrix(targets, name="targets", n_cols=fw.n_points, col_name="points", allow_nan=True,
                  row_offset=row_offset)
    has_nan = any(np.isnan(t[i:i + SCAN_ROWS]).any() for i in range(0, t.shape[0], SCAN_ROWS))
    return on_model_grid(t, latent_dim=fw.dim, row_offset=row_offset) if has_nan else None


def mcmc(fw: Forward, res: FitResult, t, noise, prior: bool, seed: int, start: int) -> FitResult:
    """MCMC around the LM optimum; the covariance and band become the samples' own."""
    from curvae.runtime.fitting.mcmc import sample_posterior

    n, p = t.shape
    sigma = np.broadcast_to(noise if noise is not None else res.sigma[:, None], (n, p))
    samples = sample_posterior(fw.run, t, res.z, res.z_std, sigma, prior=prior, seed=seed, row_offset=start,
                               box=fw.bound)
    m = samples.shape[1]
    centred = samples.astype(np.float64) - samples.mean(axis=1, keepdims=True)
    cov = np.einsum("nmi,nmj->nij", centred, centred) / max(m - 1, 1)
    curves = fw.run(samples.reshape(-1, fw.dim)).reshape(n, m, p)  # one batched call
    lo, hi = np.quantile(curves, [0.02275, 0.97725], axis=1)
    emu = None if fw.record is None else fw.record.emulator_var()
    t_lo, t_hi = lo, hi
    if emu is not None:  # the true curve: the samples' spread and the model's own error, in quadrature
        mid, half = (hi + lo) / 2, np.sqrt(((hi - lo) / 2) ** 2 + 4 * emu)
        t_lo, t_hi = mid - half, mid + half
    return replace(res, samples=samples, cov=cov, z_std=np.sqrt(np.diagonal(cov, axis1=1, axis2=2)),
                   band_lo=t_lo.astype(np.float32), band_hi=t_hi.astype(np.float32),
                   band_z_lo=lo.astype(np.float32), band_z_hi=hi.astype(np.float32))


def multi_start(fw: Forward, t, z0, n_starts: int, seed: int, start: int, opts: FitOptions,
                obs: Observations | None = None) -> tuple[FitResult, np.ndarray]:
    """Fit from ``z0`` and ``n_starts - 1`` draws per target (``fw.draw_starts``); keep each target's best
    converged fit."""
    n = t.shape[0]
    draws = row_normals(seed, start, start + n, (n_starts - 1, fw.dim))  # (n, k - 1, d)
    extra = np.ascontiguousarray(fw.draw_starts(draws.transpose(1, 0, 2)), dtype=np.float32)
    starts = np.concatenate([z0[None], extra]).reshape(-1, fw.dim)
    res, jac = fit_with_jacobian(fw.run, np.tile(t, (n_starts, 1)), starts, opts,
                                 None if obs is None else obs.tile(n_starts))
    resid = np.where(res.success, res.residual, np.inf).reshape(n_starts, n)
    resid = np.where(np.isfinite(resid).any(axis=0), resid, res.residual.reshape(n_starts, n))
    best = np.nanargmin(np.where(np.isnan(resid), np.inf, resid), axis=0) * n + np.arange(n)
    nfev = res.nfev.reshape(n_starts, n).sum(axis=0)
    return FitResult(z=res.z[best], residual=res.residual[best], success=res.success[best], nfev=nfev,
                     message=res.message[best], x_hat=res.x_hat[best], rms=res.rms[best], n_obs=res.n_obs[best],
                     x_hat_obs=None if res.x_hat_obs is None else res.x_hat_obs[best]), jac[best]

