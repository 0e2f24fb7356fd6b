"""How sure a fit is: the Laplace (Gauss-Newton) covariance of z, a decoded band, and the out-of-family flag.

At the fitted code z the decoder is linearised, ``decode(z + δ) ≈ x̂ + Jδ``
with ``J`` its Jacobian (the LM engine's last forward-difference probe, so no
extra decoder call). With Gaussian noise of standard deviation σ on each
point the posterior of z is approximately Gaussian with covariance

    Σ = (Jᵀ W J + P)⁻¹,   W = diag(1/σ²),   P = I with the N(0, I) prior, else 0.

σ is the user's (a scalar, or one value per point), or estimated per target
as ``σ̂² = RSS / (P − d)``. The estimate assumes the target is the decoded
curve plus independent noise of one level on every point; it absorbs any
model error into σ̂, so it overstates σ for targets the model cannot
represent (those are what the out-of-family flag is for).

Two bands, both linearised and pointwise ±2σ (not of new noisy data):

- ``band_lo``/``band_hi`` answer "where is the true curve?":
  ``x̂ ± 2·sqrt(diag(J Σ Jᵀ) + σ_emu²)``, where ``σ_emu`` is the model's own
  error at each point, measured on held-out curves at export
  (``FitResidualRecord.point_rms``). A real target comes from the family, not
  from the decoder, so the decoder's error adds to the uncertainty of z;
- ``band_z_lo``/``band_z_hi`` cover z only: ``x̂ ± 2·sqrt(diag(J Σ Jᵀ))``, the
  band of the decoded curve as if the decoder were exact.

With σ given, the fit's weights, the covariance and χ² use the per-point
variance ``σ² + σ_emu²``. A bundle without the record (exported before
format 1.2) gives the z-only band under both names. Where ``JᵀWJ`` is singular to
working precision (the curve barely depends on some direction of z), the
variance along it is infinite: ``cov``, ``z_std`` and the band are ``±inf``
for that target and ``ill_conditioned`` says so; nothing is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from curvae.core.errors import InputError
from curvae.runtime.bundle.records import FitResidualRecord
from curvae.runtime.fitting.engine import FitResult
from curvae.runtime.fitting.observations import Observations

#: Relative eigenvalue below which JᵀWJ counts as singular (float32 Jacobians carry ~1e-7 relative error).
ILL_CONDITIONED = 1e-9


@dataclass(frozen=True)
class Uncertainty:
    """Per-target uncertainty of a batch of fits; see :class:`curvae.runtime.fitting.engine.FitResult` for each field."""

    cov: NDArray[np.float64]  # (n, d, d)
    z_std: NDArray[np.float64]  # (n, d)
    sigma: NDArray[np.float64]  # (n,)
    chi2: NDArray[np.float64]  # (n,)
    band_lo: NDArray[np.float32]  # (n, P): where the true curve is (z and the model's own error)
    band_hi: NDArray[np.float32]  # (n, P)
    ill_conditioned: NDArray[np.bool_]  # (n,)
    band_z_lo: NDArray[np.float32]  # (n, P): z's uncertainty only
    band_z_hi: NDArray[np.float32]  # (n, P)


def check_sigma(sigma: float | NDArray | None, n_points: int) -> NDArray[np.float64] | None:
    """``sigma`` as None, or an array of shape (n_points,) of positive finite values; else InputError."""
    if sigma is None:
        return None
    arr = np.asarray(sigma, dtype=np.float64) if not isinstance(sigma, str) else np.array(np.nan)
    if arr.ndim == 0:
        arr = np.full(n_points, float(arr))
    if arr.shape != (n_points,):
        raise InputError(f"sigma has shape {arr.shape}; give one value, or one per curve point ({n_points})")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"sigma[{i}] = {float(arr[i])!r} must be a positive finite noise level; leave sigma out to "
                         "estimate it from each fit's residual")
    return arr


def laplace(
    jac: NDArray[np.float32],
    targets: NDArray[np.float32],
    x_hat: NDArray[np.float32],
    *,
    sigma: NDArray[np.float64] | None,
    prior: bool,
    obs: Observations | None = None,
    emulator_var: NDArray[np.float64] | None = None,
) -> Uncertainty:
    """Covariance of z, its band and χ² from the Jacobian at the optimum.

    With ``obs``, only the observed points count (the covariance uses the
    Jacobian at them, σ̂² = RSS / (n_obs − d)); the band stays on the model grid.

    Parameters
    ----------
    jac : ndarray of shape (n, d, P)
        Decoder Jacobian at each fitted z.
    targets, x_hat : ndarray of shape (n, P)
    sigma : ndarray of shape (P,), or None to estimate it per target
    prior : bool
        Add the N(0, I) prior's unit precision (the fit used ``prior_weight > 0``).
    emulator_var : ndarray of shape (P,), or None
        The model's own error variance per grid point; added to σ² in the
        weights and χ² when σ is given, and to the true-curve band always.
    """
    n, d, p = jac.shape
    j_band = jac  # (n, d, P) float32: the band is on the model grid; products below accumulate in float32
    if obs is None:
        j, resid, dof = jac, targets.astype(np.float64) - x_hat, np.full(n, p - d)
    else:
        if sigma is not None and not np.all(sigma == sigma[0]):
            raise InputError("a per-point sigma applies to targets on the model grid; give one sigma for targets "
                             "with missing points or their own grid")
        j = obs.apply_jacobian(jac)  # (n, d, m) float32
        resid = obs.values - obs.apply(x_hat.astype(np.float64))  # (n, m), 0 where unobserved
        dof = obs.n_obs - d
        sigma = None if sigma is None else np.full(j.shape[2], sigma[0])
        if emulator_var is not None:  # onto each target's observed points, like everything else
            emu_obs = obs.apply(np.broadcast_to(emulator_var, (n, p)))  # (n, m)
    rss = np.einsum("np,np->n", resid, resid)  # per row, in the same order however the rows are chunked
    if sigma is None:
        s2 = rss / np.maximum(dof, 1)  # (n,): one noise level per target
        sig = np.sqrt(s2)
        chi2 = np.full(n, np.nan)
        # Σ = (JᵀJ/s² + P)⁻¹ = s² (JᵀJ + s² P)⁻¹: finite even when s² = 0 (an exact fit: Σ = 0).
        info = (j @ j.transpose(0, 2, 1)).astype(np.float64) + (s2[:, None, None] * np.eye(d) if prior else 0.0)
        scale = s2
    else:
        sig = np.full(n, float(np.sqrt(np.mean(sigma**2))))
        if obs is None:  # one variance per grid point, shared by every target: (P,) weights
            weights = 1.0 / (sigma**2 + (0.0 if emulator_var is None else emulator_var))
            chi2 = (resid * resid) @ weights
            jw = j * weights.astype(np.float32)  # (n, d, P)
        else:  # the model's own error on each target's observed points: (n, m) weights
            weights = 1.0 / (sigma**2 + (0.0 if emulator_var is None else emu_obs))
            chi2 = np.einsum("np,np->n", resid**2, weights)  # unobserved residuals are 0
            jw = j * weights[:, None, :].astype(np.float32)
        info = (jw @ j.transpose(0, 2, 1)).astype(np.float64) + (np.eye(d) if prior else 0.0)
        scale = np.ones(n)
    vals, vecs = np.linalg.eigh(info)  # (n, d), (n, d, d); info is symmetric positive semi-definite
    top = np.maximum(vals[:, -1:], 1e-300)
    ill = (vals[:, 0] <= ILL_CONDITIONED * top[:, 0]) & (scale > 0)
    inv = np.where(vals > ILL_CONDITIONED * top, 1.0 / np.where(vals > 0, vals, 1.0), 0.0)
    cov = (vecs * (inv * scale[:, None])[:, None, :]) @ vecs.transpose(0, 2, 1)
    band_var = np.einsum("ndp,ndp->np", cov.astype(np.float32) @ j_band, j_band)  # (n, P) float32: diag(J Σ Jᵀ)
    cov[ill] = np.inf
    z_std = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0, None))
    np.maximum(band_var, 0, out=band_var)
    half = None
    if emulator_var is not None:
        half = band_var + emulator_var.astype(np.float32)
        np.sqrt(half, out=half)
        half *= 2
        half[ill] = np.inf
    half_z = np.sqrt(band_var, out=band_var)
    half_z *= 2
    half_z[ill] = np.inf
    lo_z, hi_z = x_hat - half_z, np.add(x_hat, half_z, out=half_z)  # the half-widths' memory holds the top
    lo, hi = (lo_z, hi_z) if half is None else (x_hat - half, np.add(x_hat, half, out=half))
    return Uncertainty(cov=cov, z_std=z_std, sigma=sig, chi2=chi2, band_lo=lo, band_hi=hi,
                       ill_conditioned=ill, band_z_lo=lo_z, band_z_hi=hi_z)


def ood_threshold(record: FitResidualRecord | None, quantile: float) -> float | None:
    """The RMS error per point above which a target is out of family: the ``quantile`` of the held-out fits'
    residuals recorded at export, per point; None when the bundle has no record."""
    return None if record is None else record.quantile(quantile) / np.sqrt(record.n_points)


def out_of_family(
    rms: NDArray[np.float64],
    record: FitResidualRecord | None,
    quantile: float,
) -> tuple[NDArray[np.bool_] | None, float | None, NDArray[np.str_]]:
    """Flag targets whose RMS error per point exceeds the ``quantile`` of the held-out fits' (recorded at export).

    Comparing RMS per observed point makes targets with missing points or their
    own grid comparable with the held-out curves (for complete targets on the
    model grid it is the residual compared with the residual quantile).
    Returns ``(ood, threshold, reason)`` with the threshold as an RMS; ``ood`` and ``threshold`` are None when
    the bundle has no record (exported before format 1.1, or without held-out
    curves): the flag is then unavailable, not guessed.
    """
    n = rms.shape[0]
    if record is None:
        why = "unavailable: the bundle records no held-out fit residuals (re-export it with this curvae)"
        return None, None, np.full(n, why)
    threshold = ood_threshold(record, quantile)
    ood = ~(rms <= threshold)  # a NaN is out of family too
    reason = np.full(n, f"RMS error within the {quantile:g} quantile of held-out fits ({threshold:.4g})", dtype="U160")
    for i in np.flatnonzero(ood):  # only the flagged get their own text
        reason[i] = (f"RMS error {rms[i]:.4g} > {threshold:.4g}, the {quantile:g} quantile of "
                     f"{len(record.values)} held-out fits")
    return ood, threshold, reason


#: Noise draws per held-out residual curve when the flag's threshold is simulated for a given σ.
NOISE_DRAWS = 4


#: Thresholds already simulated, by (record, σ, quantile): a fit of many targets runs in chunks, and each chunk
#: (and each later call with the same σ) reuses the value instead of simulating it again. Bounded; the record is
#: kept beside its value, so a key's id() always names the same record.
_THRESHOLDS: dict[tuple, tuple[FitResidualRecord, float]] = {}
THRESHOLD_CACHE_SIZE = 64


def noise_threshold(record: FitResidualRecord, sigma: NDArray[np.float64], quantile: float) -> float:
    """The ``quantile`` of χ² per point, ``Σ_p r_p² / (σ_p² + σ_emu,p²) / P``, over in-family targets.

    In-family residuals are the model's own held-out residual curves (their
    leading directions as recorded, plus the rest as independent draws) plus
    Gaussian noise of the given σ. Points are not treated as independent: the
    model's error is a smooth curve, which a plain χ² quantile would
    under-count. Seeded, so the threshold is the same on every call, and simulated once per (record, σ,
    quantile) in a process.
    """
    sig = np.ascontiguousarray(sigma, dtype=np.float64)
    key = (id(record), sig.shape, sig.tobytes(), float(quantile))
    hit = _THRESHOLDS.get(key)
    if hit is not None and hit[0] is record:
        return hit[1]
    value = _simulated_threshold(record, sig, quantile)
    if len(_THRESHOLDS) >= THRESHOLD_CACHE_SIZE:
        _THRESHOLDS.pop(next(iter(_THRESHOLDS)))
    _THRESHOLDS[key] = (record, value)
    return value


def _simulated_threshold(record: FitResidualRecord, sigma: NDArray[np.float64], quantile: float) -> float:
    g = np.random.default_rng(0)
    emu = record.residual_draws(g)  # (m, P)
    var = sigma**2 + record.emulator_var()
    stats = [np.mean((emu + g.standard_normal(emu.shape) * sigma) ** 2 / var, axis=1) for _ in range(NOISE_DRAWS)]
    return float(np.quantile(np.concatenate(stats), quantile))


def out_of_family_given_sigma(
    chi2: NDArray[np.float64],
    n_obs: NDArray[np.int64],
    record: FitResidualRecord,
    sigma: NDArray[np.float64],
    quantile: float,
) -> tuple[NDArray[np.bool_], float, NDArray[np.str_]]:
    """Flag targets whose χ² per observed point (noise plus the model's own error) is above what in-family
    targets with that noise reach at ``quantile`` (:func:`noise_threshold`)."""
    threshold = noise_threshold(record, sigma, quantile)
    per_point = chi2 / np.maximum(n_obs, 1)
    ood = ~(per_point <= threshold)
    reason = np.full(len(chi2), f"χ² per point within the {quantile:g} quantile of in-family fits at this σ "
                                f"({threshold:.4g})", dtype="U160")
    for i in np.flatnonzero(ood):
        reason[i] = (f"χ² per point {per_point[i]:.4g} > {threshold:.4g}, the {quantile:g} quantile of in-family "
                     "fits with this noise and the model's own error")
    return ood, threshold, reason


def annotate(
    result: FitResult,
    jac: NDArray[np.float32],
    targets: NDArray[np.float32],
    *,
    sigma: NDArray[np.float64] | None,
    prior: bool,
    record: FitResidualRecord | None,
    quantile: float,
    obs: Observations | None = None,
) -> FitResult:
    """``result`` with its uncertainty (:func:`laplace`) and out-of-family fields filled in.

    With σ given and a bundle that records its own error, the flag tests χ² per point against in-family fits at
    that σ (:func:`out_of_family_given_sigma`); otherwise the RMS error against the held-out fits' quantile. The
    latter cannot tell noise from a departure from the family: without σ, a noisy in-family curve looks foreign.
    """
    emu = None if record is None else record.emulator_var()
    u = laplace(jac, targets, result.x_hat, sigma=sigma, prior=prior, obs=obs, emulator_var=emu)
    if sigma is not None and emu is not None and record.scores:
        n_obs = result.n_obs if result.n_obs is not None else np.full(len(u.chi2), result.x_hat.shape[1])
        ood, threshold, reason = out_of_family_given_sigma(u.chi2, n_obs, record, sigma, quantile)
    else:
        ood, threshold, reason = out_of_family(result.rms, record, quantile)
    return replace(result, cov=u.cov, z_std=u.z_std, sigma=u.sigma, chi2=u.chi2, band_lo=u.band_lo,
                   band_hi=u.band_hi, band_z_lo=u.band_z_lo, band_z_hi=u.band_z_hi,
                   ill_conditioned=u.ill_conditioned, ood=ood, ood_threshold=threshold, ood_reason=reason)
