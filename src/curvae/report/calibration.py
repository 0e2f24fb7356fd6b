"""Does the fit's uncertainty mean what it says? Coverage of known codes by the fitted ellipses and bands.

Codes are drawn from the prior (|z| < 2.5), decoded, and given Gaussian
noise of a known level; the share of true codes inside each fitted
ellipse, and of true curve points inside the ±2σ band, is compared with the
nominal rate, for sigma given and for sigma estimated. For a built-in
family, real family curves (not decoded codes) with the same noise are
fitted too: the band must cover *their* true curve, model error included,
and the out-of-family flag must leave them alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from curvae.core.seeding import rng
from curvae.runtime.model import CurveModel

LEVELS = (0.5, 0.68, 0.8, 0.9, 0.95, 0.99)
BAND_NOMINAL = float(stats.norm.cdf(2) - stats.norm.cdf(-2))  # ±2σ pointwise: 0.954


def noise_level(model: CurveModel) -> float:
    """A noise level on the model's own scale: the held-out fits' median RMS error when recorded."""
    rec = model.manifest.fit_residuals
    if rec is not None:
        return max(rec.quantile(0.5) / np.sqrt(model.n_points), 1e-6)
    return 0.01 * float(np.std(model.sample(200, seed=0)))


def coverage(model: CurveModel, *, n: int = 500, seed: int = 0, family=None) -> dict[str, Any]:
    """Empirical coverage at :data:`LEVELS` (ellipses) and of the ±2σ band, sigma given and estimated."""
    g = rng(seed)
    d = model.latent_dim
    z = g.standard_normal((4 * n, d))
    z = z[np.abs(z).max(axis=1) < 2.5][:n].astype(np.float32)
    sigma = noise_level(model)
    clean = model.decode(z)
    targets = clean + g.normal(0, sigma, clean.shape).astype(np.float32)
    out: dict[str, Any] = {"n": len(z), "sigma": float(sigma), "levels": list(LEVELS), "band_nominal": BAND_NOMINAL}
    for label, given in (("given", sigma), ("estimated", None)):
        fit = model.fit(targets, sigma=given)
        ok = ~fit.ill_conditioned
        dz = (fit.z - z).astype(np.float64)[ok]
        d2 = np.einsum("ni,nij,nj->n", dz, np.linalg.inv(fit.cov[ok]), dz)
        out[f"ellipse_{label}"] = [float((d2 <= stats.chi2.ppf(q, df=d)).mean()) for q in LEVELS]
        out[f"band_{label}"] = float(((clean >= fit.band_lo) & (clean <= fit.band_hi))[ok].mean())
    if family is not None:
        real, _ = family.sample(n, seed=g)
        fit = model.fit(real + g.normal(0, sigma, real.shape).astype(np.float32), sigma=sigma)
        out["band_family_given"] = float(((real >= fit.band_lo) & (real <= fit.band_hi)).mean())
        out["band_z_family_given"] = float(((real >= fit.band_z_lo) & (real <= fit.band_z_hi)).mean())
        out["ood_family_given"] = None if fit.ood is None else float(fit.ood.mean())
    return out
