"""Latent fitting: find the code whose decoding matches each target curve.

``"lm"`` is a Levenberg-Marquardt solver vectorised across targets: each
iteration is one decoder call over all active targets, decoding every trial
point together with its forward-difference neighbours. ``"nelder-mead"`` and
``"least-squares"`` run scipy per target and serve as references.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from curvae.runtime.fitting.observations import Observations

DecodeFn = Callable[[NDArray[np.float32]], NDArray[np.float32]]
FitMethod = Literal["lm", "nelder-mead", "least-squares"]
FIT_METHODS: tuple[str, ...] = get_args(FitMethod)
#: CurveModel.fit also samples the posterior by MCMC (curvae.runtime.fitting.mcmc), after an "lm" fit.
ModelFitMethod = Literal["lm", "nelder-mead", "least-squares", "mcmc"]
MODEL_FIT_METHODS: tuple[str, ...] = get_args(ModelFitMethod)
FitInit = Literal["encoder", "zero"]
FIT_INITS: tuple[str, ...] = get_args(FitInit)


@dataclass(frozen=True)
class FitOptions:
    """Options of :func:`fit_latent`; defaults suit the built-in families."""

    method: FitMethod = "lm"
    max_iter: int = 100
    ftol: float = 1e-7
    xtol: float = 1e-4
    prior_weight: float = 0.0
    bound: float | None = None
    init: FitInit = "encoder"  # where CurveModel.fit starts: the encoder's mu, or z = 0
    n_starts: int = 1  # CurveModel.fit tries this many starts (extra ones from the prior)
    #: Per-point weights of the squared residuals, shape (n_points,), mean 1 (from a per-point sigma:
    #: w_p = mean(σ²)/σ_p², so a uniform sigma changes nothing); None weighs every point alike.
    weights: NDArray[np.float64] | None = None


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
    cov : ndarray of shape (n_targets, latent_dim, latent_dim), float64
        Laplace (Gauss-Newton) covariance of z; ``inf`` where ill-conditioned. None (with ``z_std``) for a fit in
        parameter space, whose uncertainty is ``theta_cov``.
    z_std : ndarray of shape (n_targets, latent_dim), float64
        Standard deviation of each coordinate of z.
    sigma : ndarray of shape (n_targets,), float64
        The noise level used: the given one (its RMS when per point), or the
        estimate ``sqrt(RSS / (P - d))``.
    chi2 : ndarray of shape (n_targets,), float64
        ``sum(((target - x_hat) / sigma)**2)`` when sigma was given; NaN when it
        was estimated (it would be P - d by construction).
    band_lo, band_hi : ndarray of shape (n_targets, n_points), float32
        ``x_hat ∓ 2·sqrt(diag(J Σ Jᵀ) + σ_emu²)``: the linearised ±2σ band of
        the true curve, z's uncertainty plus the model's own error per point
        (recorded at export; z only for bundles without that record).
    band_z_lo, band_z_hi : ndarray of shape (n_targets, n_points), float32
        ``x_hat ∓ 2·sqrt(diag(J Σ Jᵀ))``: the band of the decoded curve from
        z's uncertainty alone, as if the decoder were exact.
    ill_conditioned : ndarray of shape (n_targets,), bool
        The curve barely depends on some direction of z there; its variance is infinite.
    ood : ndarray of shape (n_targets,), bool, or None
        Out of family. With σ given: χ² per point (noise plus the model's own
        error) above the chosen quantile of in-family fits at that σ. Without:
        the RMS error above the chosen quantile of the held-out fits recorded
        at export. None when the bundle has no such record.
    ood_threshold : float or None
        That quantile: χ² per point with σ given, else an RMS error per point.
    ood_reason : ndarray of shape (n_targets,), str, or None
        Why each target was (not) flagged.
    rms : ndarray of shape (n_targets,), float64
        ``residual / sqrt(n_obs)``: comparable across targets with different point counts.
    n_obs : ndarray of shape (n_targets,), int64
        Observed points per target (``n_points`` for a complete target on the model grid).
    x_hat_obs : ndarray of shape (n_targets, m), float32, or None
        The fit at each target's own points (NaN where a target has fewer
        than m); None for complete targets on the model grid.
    samples : ndarray of shape (n_targets, m, latent_dim), float32, or None
        Posterior samples of z (``method="mcmc"``; of θ, shape (n_targets, m, k), for a fit in parameter space); ``cov`` and ``z_std`` are
        then theirs, and the band is the 2.3%–97.7% pointwise quantiles of
        their decodings (one batched decoder call).
    theta : ndarray of shape (n_targets, k), float64, or None
        The curve's parameters from the bundle's parameter head (None without one,
        or with ``params=False``); see :mod:`curvae.runtime.fitting.params`.
    theta_std, theta_lo, theta_hi : ndarray of shape (n_targets, k), float64, or None
        With ``uncertainty``: the delta-method standard deviation and the 95% interval.
    theta_cov : ndarray of shape (n_targets, k, k), float64, or None
        ``D (J Σ_z Jᵀ + diag(e²)) D``: z's covariance through the head plus its held-out error.
    """

    z: NDArray[np.float32]
    residual: NDArray[np.float64]
    success: NDArray[np.bool_]
    nfev: NDArray[np.int64]
    message: NDArray[np.str_]
    x_hat: NDArray[np.float32]
    # Filled by CurveModel.fit(uncertainty=True); see curvae.runtime.fitting.uncertainty.
    cov: NDArray[np.float64] | None = None
    z_std: NDArray[np.float64] | None = None
    sigma: NDArray[np.float64] | None = None
    chi2: NDArray[np.float64] | None = None
    band_lo: NDArray[np.float32] | None = None
    band_hi: NDArray[np.float32] | None = None
    ill_conditioned: NDArray[np.bool_] | None = None
    ood: NDArray[np.bool_] | None = None
    ood_threshold: float | None = None
    ood_reason: NDArray[np.str_] | None = None
    samples: NDArray[np.float32] | None = None
    rms: NDArray[np.float64] | None = None
    n_obs: NDArray[np.int64] | None = None
    x_hat_obs: NDArray[np.float32] | None = None
    band_z_lo: NDArray[np.float32] | None = None
    band_z_hi: NDArray[np.float32] | None = None
    theta: NDArray[np.float64] | None = None
    theta_std: NDArray[np.float64] | None = None
    theta_cov: NDArray[np.float64] | None = None
    theta_lo: NDArray[np.float64] | None = None
    theta_hi: NDArray[np.float64] | None = None

    def summary(self) -> dict[str, float]:
        """``n``, ``n_success``, ``success_rate``, ``residual_median``, ``residual_p90`` and ``mean_nfev``."""
        return summarise_fits(self.residual, self.success, self.nfev)


def concat_fits(parts: list[FitResult]) -> FitResult:
    """One result from the results of consecutive chunks of targets (rows in order)."""
    builder = FitBuilder(sum(p.z.shape[0] for p in parts))
    for p in parts:
        builder.add(p)
    return builder.result()


class FitBuilder:
    """Fills one :class:`FitResult` of ``n`` rows from the results of consecutive chunks, as they come.

    Each field is allocated once, at its full size, when the first chunk
    arrives, so building the whole result costs no memory beyond it (a list of
    chunks and a concatenation would hold the outputs twice).
    """

    def __init__(self, n: int) -> None:
        self.n, self.pos = n, 0
        self.values: dict[str, object] = {}

    def add(self, part: FitResult) -> None:
        k = part.z.shape[0]
        for f in fields(FitResult):
            got = getattr(part, f.name)
            if f.name not in self.values:
                self.values[f.name] = got if got is None or f.name == "ood_threshold" else \
                    np.empty((self.n, *got.shape[1:]), got.dtype)
            dst = self.values[f.name]
            if not isinstance(dst, np.ndarray):
                continue
            if got is None:
                raise ValueError(f"chunks disagree on FitResult.{f.name}: some have it, some not")
            if dst.dtype.kind == "U" and got.dtype.itemsize > dst.dtype.itemsize:  # a longer text: widen (rare)
                dst = self.values[f.name] = dst.astype(got.dtype)
            dst[self.pos:self.pos + k] = got
        self.pos += k

    def result(self) -> FitResult:
        if self.pos != self.n:
            raise ValueError(f"FitBuilder got {self.pos} rows of {self.n}")
        return FitResult(**self.values)


def summarise_fits(residual: NDArray[np.float64], success: NDArray[np.bool_],
                   nfev: NDArray[np.int64]) -> dict[str, float]:
    """The one summary of a set of fits, each array of shape (n_targets,); see :meth:`FitResult.summary`."""
    n = int(residual.shape[0])
    return {"n": n, "n_success": int(success.sum()), "success_rate": float(success.mean()) if n else 0.0,
            "residual_median": float(np.median(residual)) if n else float("nan"),
            "residual_p90": float(np.percentile(residual, 90)) if n else float("nan"),
            "mean_nfev": float(nfev.mean()) if n else 0.0}


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
    return fit_with_jacobian(decode, targets, z0, options)[0]


def fit_with_jacobian(
    decode: DecodeFn,
    targets: NDArray[np.float32],
    z0: NDArray[np.float32],
    options: FitOptions = FitOptions(),
    obs: Observations | None = None,
) -> tuple[FitResult, NDArray[np.float32]]:
    """:func:`fit_latent`, also returning the decoder's Jacobian at each fitted z, shape (n, d, P).

    The LM engine already holds it (its last accepted probe, which also gives
    ``x_hat``, so neither costs a decoder call); the scipy methods pay one
    batched probe for it. With ``obs`` (see :mod:`curvae.runtime.fitting.observations`),
    ``targets`` is ignored: each target is its observed points, and the
    residual is over those points only.
    """
    if options.method == "lm":
        z, nfev, conv, msg, f, jac = _fit_lm(decode, targets, z0, options, obs)
        x_hat = f.astype(np.float32)  # the probe decoded exactly float32(z)
    elif options.method in ("nelder-mead", "least-squares"):
        z, nfev, conv, msg = _fit_scipy(decode, targets, z0, options, obs)
        f, jac = _probe(decode, z.astype(np.float32).astype(np.float64))
        x_hat = f.astype(np.float32)
    else:  # validated by CurveModel.fit; kept as an internal invariant
        raise AssertionError(options.method)
    z32 = z.astype(np.float32)
    if obs is None:
        residual = np.linalg.norm(x_hat.astype(np.float64) - targets, axis=1)
        n_obs, x_obs = np.full(len(z32), targets.shape[1], np.int64), None
    else:
        fitted = obs.apply(x_hat.astype(np.float64))
        residual = np.linalg.norm(fitted - obs.values, axis=1)  # unobserved entries are 0 - 0
        n_obs, x_obs = obs.n_obs.astype(np.int64), np.where(obs.observed, fitted, np.nan).astype(np.float32)
    finite = np.isfinite(z32).all(axis=1) & np.isfinite(residual)
    msg = np.where(finite, msg, "non-finite code or residual")
    res = FitResult(z=z32, residual=residual, success=conv & finite, nfev=nfev, message=msg.astype(str), x_hat=x_hat,
                    rms=residual / np.sqrt(np.maximum(n_obs, 1)), n_obs=n_obs, x_hat_obs=x_obs)
    return res, jac


def _clip(z: NDArray[np.float64], bound: float | None) -> NDArray[np.float64]:
    return z if bound is None else np.clip(z, -bound, bound)


def _probe(decode: DecodeFn, z: NDArray[np.float64]):
    """Decode each code and its forward-difference neighbours in one call.

    Returns f (m, P) float64 and the Jacobian (m, d, P) float32 by forward
    differences (float32 and this layout keep the normal equations cheap).
    """
    m, d = z.shape
    h = 1e-3 * np.maximum(1.0, np.abs(z))  # (m, d): float32 decoder → step ~ sqrt(eps32)
    rows = np.concatenate([z] + [z + h[:, [k]] * np.eye(d)[k] for k in range(d)]).astype(np.float32)
    out = decode(rows).reshape(d + 1, m, -1)  # (d+1, m, P) float32
    jac = (out[1:] - out[0]).transpose(1, 0, 2) / h[:, :, None].astype(np.float32)  # (m, d, P)
    return out[0].astype(np.float64), np.ascontiguousarray(jac)


def _fit_lm(decode: DecodeFn, targets: NDArray[np.float32], z0: NDArray[np.float32], o: FitOptions,
            obs: Observations | None = None):
    """Batched Levenberg-Marquardt with an optional Gaussian prior.

    Every iteration is one decoder call of (d + 1) rows per active target:
    the trial point with its forward-difference neighbours, so an accepted
    step already carries the Jacobian for the next one.
    """
    t = (targets if obs is None else obs.values).astype(np.float64)  # (n, P), or (n, m) observed
    z = _clip(z0.astype(np.float64), o.bound)
    n, d = z.shape
    w = o.prior_weight
    pw = np.ones(t.shape[1]) if o.weights is None else np.asarray(o.weights, dtype=np.float64)  # (P,)
    pw32 = pw.astype(np.float32)
    eye = np.eye(d)
    at_obs, jac_at_obs, mask_rows = _observers(obs)
    f, jac = _probe(decode, z)  # full model-grid curve and Jacobian: kept for x_hat and the band
    r = at_obs(f, slice(None)) - t
    cost = np.einsum("np,p,np->n", r, pw, r) + w * np.einsum("nd,nd->n", z, z)
    lam = np.full(n, 1e-3)
    nfev = np.full(n, d + 1, dtype=np.int64)
    done = ~np.isfinite(cost)
    conv = np.zeros(n, dtype=bool)
    msg = np.full(n, f"max_iter={o.max_iter} reached", dtype=object)
    msg[done] = "non-finite decoder output"
    for _ in range(o.max_iter):
        idx = np.flatnonzero(~done)
        if idx.size == 0:
            break
        za, ra = z[idx], r[idx].astype(np.float32)
        ja = jac[idx] if jac_at_obs is None else jac_at_obs(jac[idx], idx)
        if mask_rows is None:
            wa = ja if o.weights is None else ja * pw32  # (m, d, P): Jᵀ W
        else:  # a 0/1 mask on the model grid joins the weights: J W M r and J W M Jᵀ (M² = M), one product
            mr = mask_rows(idx)  # (m, P)
            wa = ja * (mr if o.weights is None else mr * pw32)[:, None, :]
        grad = np.einsum("mdp,mp->md", wa, ra).astype(np.float64) + w * za
        hess = np.einsum("mdp,mep->mde", wa, ja).astype(np.float64) + w * eye
        damp = lam[idx, None, None] * (np.maximum(np.diagonal(hess, axis1=1, axis2=2), 1e-9)[:, :, None] * eye)
        try:
            delta = np.linalg.solve(hess + damp, -grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            delta = -grad / np.maximum(np.diagonal(hess + damp, axis1=1, axis2=2), 1e-9)
        trial = _clip(za + delta, o.bound)
        f_t, jac_t = _probe(decode, trial)
        r_t = at_obs(f_t, idx) - t[idx]
        cost_t = np.einsum("mp,p,mp->m", r_t, pw, r_t) + w * np.einsum("md,md->m", trial, trial)
        nfev[idx] += d + 1
        better = np.isfinite(cost_t) & (cost_t < cost[idx])
        acc = idx[better]
        small_f = better & ((cost[idx] - cost_t) <= o.ftol * np.maximum(cost[idx], 1e-30))
        z[acc], r[acc], jac[acc], cost[acc] = trial[better], r_t[better], jac_t[better], cost_t[better]
        f[acc] = f_t[better]
        lam[idx] = np.where(better, np.maximum(lam[idx] / 3, 1e-9), lam[idx] * 4)
        small_x = np.linalg.norm(delta, axis=1) <= o.xtol * (np.linalg.norm(za, axis=1) + o.xtol)
        stuck = lam[idx] > 1e8  # no step improves: a minimum at float32 precision
        for mask, why in ((small_f, "converged: cost change below ftol"),
                          (small_x & ~small_f, "converged: step below xtol"),
                          (stuck & ~small_f & ~small_x, "converged: no further decrease at float32 precision")):
            hit = idx[mask & ~done[idx]]
            done[hit] = conv[hit] = True
            msg[hit] = why
    return z, nfev, conv, msg, f, jac


def _observers(obs: Observations | None):
    """(curves at the observed points, Jacobians at them or None, the 0/1 mask rows of an aligned mask or None),
    for rows ``idx`` of the targets."""
    if obs is None:
        return (lambda f, idx: f), None, None
    if obs.aligned:  # a mask on the model grid: multiplications, no gather; the Jacobian's is folded into W
        mask64 = obs.observed.astype(np.float64)
        mask32 = obs.observed.astype(np.float32)
        return (lambda f, idx: f * mask64[idx]), None, (lambda idx: mask32[idx])
    return (lambda f, idx: obs.take(idx).apply(f)), (lambda j, idx: obs.take(idx).apply_jacobian(j)), None


def _fit_scipy(decode: DecodeFn, targets: NDArray[np.float32], z0: NDArray[np.float32], o: FitOptions,
               obs: Observations | None = None):
    """Per-target scipy reference fits (Nelder-Mead as in the worked example, or least_squares)."""
    from scipy import optimize  # imported here: it is most of the runtime's import time

    n, d = z0.shape
    z = np.empty((n, d))
    nfev = np.zeros(n, dtype=np.int64)
    conv = np.zeros(n, dtype=bool)
    msg = np.empty(n, dtype=object)
    sw = np.sqrt(o.prior_weight)
    sp = np.ones(targets.shape[1]) if o.weights is None else np.sqrt(np.asarray(o.weights, dtype=np.float64))
    bounds = (-np.inf, np.inf) if o.bound is None else (-o.bound, o.bound)
    for i in range(n):
        target = (targets[i] if obs is None else obs.values[i]).astype(np.float64)
        one = None if obs is None else obs.take([i])

        def resid(v: NDArray[np.float64], one=one, target=target) -> NDArray[np.float64]:
            x = decode(v.astype(np.float32)[None, :]).astype(np.float64)
            r = ((x if one is None else one.apply(x))[0] - target) * (sp if one is None else 1.0)
            return np.concatenate([r, sw * v]) if sw else r

        start = _clip(z0[i].astype(np.float64), o.bound)
        if o.method == "nelder-mead":
            res = optimize.minimize(
                lambda v: float(np.sum(resid(v) ** 2)),
                start, method="Nelder-Mead",
                bounds=None if o.bound is None else [bounds] * d,
                options={"maxiter": o.max_iter * 20 * d, "xatol": o.xtol, "fatol": 1e-10},
            )
        else:
            res = optimize.least_squares(resid, start, method="trf", diff_step=1e-3, bounds=bounds,
                                         max_nfev=o.max_iter * (d + 1), ftol=1e-10, xtol=1e-8)
        # least_squares counts Jacobian evaluations apart; each costs d decoder rows.
        used = res.nfev + d * int(getattr(res, "njev", 0) or 0)
        z[i], nfev[i], conv[i], msg[i] = res.x, used, bool(res.success), str(res.message)
    return z, nfev, conv, msg
