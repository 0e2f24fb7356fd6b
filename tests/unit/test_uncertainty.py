"""Laplace uncertainty: exact on a linear decoder, calibrated on a real one, honest when degenerate.

Coverage tests draw z_true from the prior (|z| < 2.5), make targets
``decode(z_true) + N(0, σ²)``, and compare the share of z_true inside the
fitted 68% and 95% ellipses (and of decode(z_true) inside the ±2σ band)
with the nominal rates, within 3.5 binomial standard errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from curvae.core.errors import InputError
from curvae.runtime import CurveModel
from curvae.runtime.fitting.uncertainty import laplace

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
N = 2000


@pytest.fixture(scope="module")
def model() -> CurveModel:
    return CurveModel.load(GOLDEN)


@pytest.fixture(scope="module")
def truth(model):
    g = np.random.default_rng(2024)
    z = g.standard_normal((3 * N, 2))
    return z[np.abs(z).max(axis=1) < 2.5][:N].astype(np.float32)


def test_linear_decoder_gives_the_exact_gaussian_posterior():
    g = np.random.default_rng(0)
    a = g.standard_normal((2, 50))  # x = z @ a: J = a for every z
    jac = np.broadcast_to(a.astype(np.float32), (4, 2, 50)).copy()
    targets = g.standard_normal((4, 50)).astype(np.float32)
    x_hat = targets - g.normal(0, 0.1, (4, 50)).astype(np.float32)
    sigma = np.full(50, 0.1)
    u = laplace(jac, targets, x_hat, sigma=sigma, prior=False)
    np.testing.assert_allclose(u.cov[0], 0.01 * np.linalg.inv(a @ a.T), rtol=1e-5)
    u = laplace(jac, targets, x_hat, sigma=sigma, prior=True)
    np.testing.assert_allclose(u.cov[0], np.linalg.inv(a @ a.T / 0.01 + np.eye(2)), rtol=1e-5)
    band = 2 * np.sqrt(np.einsum("dp,de,ep->p", a, u.cov[0], a))
    np.testing.assert_allclose(u.band_hi[0] - x_hat[0], band, rtol=1e-4)
    resid = targets - x_hat
    np.testing.assert_allclose(u.chi2, (resid.astype(np.float64) ** 2).sum(1) / 0.01, rtol=1e-5)


def _within(rate: float, nominal: float, n: int) -> bool:
    return abs(rate - nominal) <= 3.5 * np.sqrt(nominal * (1 - nominal) / n)


@pytest.mark.parametrize("sigma", [0.02, 0.1])
@pytest.mark.parametrize("given", [True, False])
def test_latent_ellipses_and_bands_cover_at_the_nominal_rates(model, truth, sigma, given):
    g = np.random.default_rng(int(sigma * 1000) + given)
    clean = model.decode(truth)
    targets = clean + g.normal(0, sigma, clean.shape).astype(np.float32)
    fit = model.fit(targets, sigma=sigma if given else None)
    assert fit.success.all() and not fit.ill_conditioned.any()
    dz = (fit.z - truth).astype(np.float64)
    d2 = np.einsum("ni,nij,nj->n", dz, np.linalg.inv(fit.cov), dz)
    for level in (0.68, 0.95):
        rate = float((d2 <= stats.chi2.ppf(level, df=2)).mean())
        assert _within(rate, level, N), f"{level:.0%} ellipse covers {rate:.3f}"
    band = float(((clean >= fit.band_lo) & (clean <= fit.band_hi)).mean())
    assert abs(band - 0.954) <= 0.02, f"±2σ band covers {band:.3f} of the true curve's points"
    if given:
        assert np.median(fit.chi2) == pytest.approx(98, rel=0.05)  # χ² with P - d = 98 degrees of freedom
    else:
        assert np.isnan(fit.chi2).all() and np.median(fit.sigma) == pytest.approx(sigma, rel=0.03)


def test_per_point_sigma_weights_the_points(model, truth):
    sigma = np.linspace(0.01, 0.2, model.n_points)
    g = np.random.default_rng(5)
    clean = model.decode(truth[:500])
    fit = model.fit(clean + (g.standard_normal(clean.shape) * sigma).astype(np.float32), sigma=sigma)
    dz = (fit.z - truth[:500]).astype(np.float64)
    d2 = np.einsum("ni,nij,nj->n", dz, np.linalg.inv(fit.cov), dz)
    assert _within(float((d2 <= stats.chi2.ppf(0.95, df=2)).mean()), 0.95, 500)


def test_an_exact_target_has_zero_variance_not_nan(model, truth):
    fit = model.fit(model.decode(truth[:5]))  # sigma estimated from a residual of ~0
    assert np.isfinite(fit.cov).all() and (fit.z_std < 1e-3).all() and np.isfinite(fit.band_lo).all()


def test_ill_conditioned_fits_get_infinite_variance_and_a_flag():
    jac = np.zeros((3, 2, 20), np.float32)
    jac[:, 0, :] = 1.0  # the curve does not depend on z[1] at all
    t = np.ones((3, 20), np.float32)
    u = laplace(jac, t, t - 0.1, sigma=np.full(20, 0.1), prior=False)
    assert u.ill_conditioned.all() and np.isinf(u.z_std).all() and np.isinf(u.band_hi).all()
    assert not np.isnan(u.cov).any() and not np.isnan(u.band_lo).any()
    u = laplace(jac, t, t - 0.1, sigma=np.full(20, 0.1), prior=True)  # the prior makes it proper again
    assert not u.ill_conditioned.any() and u.z_std[0, 1] == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("sigma, match", [(0.0, r"sigma\[0\] = 0.0 must be a positive finite"),
                                          (-1.0, r"sigma\[0\] = -1.0 must be a positive"),
                                          (float("nan"), r"sigma\[0\] = nan must be"),
                                          (np.ones(7), r"sigma has shape \(7,\); give one value, or one per")])
def test_bad_sigma_is_a_clear_error(model, sigma, match):
    with pytest.raises(InputError, match=match):
        model.fit(model.sample(2, seed=0), sigma=sigma)


def test_bundles_without_the_residual_record_report_the_flag_unavailable():
    old = CurveModel.load(GOLDEN.parent / "golden-1.0")
    fit = old.fit(old.sample(3, seed=1))
    assert fit.ood is None and fit.ood_threshold is None
    assert fit.ood_reason[0].startswith("unavailable: the bundle records no held-out fit residuals")
    assert fit.z_std.shape == (3, 2)  # the covariance does not need the record


@pytest.mark.parametrize("sigma", [None, 0.05])
def test_default_band_carries_the_recorded_model_error(bundle_dir, sigma):
    """The true-curve band's half-width² is the z band's plus the model's own per-point error², as recorded.

    Only the slow calibration test would otherwise see a band that leaves the model's own error out.
    """
    from curvae.families import get_family

    m = CurveModel.load(bundle_dir)
    emu = m.manifest.fit_residuals.emulator_var()  # (P,)
    assert emu is not None and np.all(emu > 0)
    targets, _ = get_family("beta").sample(20, seed=8)
    fit = m.fit(targets, sigma=sigma)
    half = (fit.band_hi.astype(np.float64) - fit.band_lo) / 4.0  # (n, P): the ±2σ band's σ
    half_z = (fit.band_z_hi.astype(np.float64) - fit.band_z_lo) / 4.0
    np.testing.assert_allclose(half**2 - half_z**2, np.broadcast_to(emu, half.shape), rtol=2e-3,
                               atol=1e-6 * float(emu.max()))


def test_sigma_aware_threshold_is_simulated_once_per_sigma(bundle_dir, monkeypatch):
    """A fit in many chunks simulates the σ-aware out-of-family threshold once, not once per chunk."""
    from curvae.families import get_family
    from curvae.runtime.fitting import uncertainty

    calls = []
    real = uncertainty._simulated_threshold
    monkeypatch.setattr(uncertainty, "_simulated_threshold", lambda *a: calls.append(a) or real(*a))
    uncertainty._THRESHOLDS.clear()
    m = CurveModel.load(bundle_dir)
    targets, _ = get_family("beta").sample(50, seed=9)
    whole = m.fit(targets, sigma=0.05)
    chunked = m.fit(targets, sigma=0.05, chunk_rows=7)  # 8 chunks
    assert len(calls) == 1
    np.testing.assert_array_equal(whole.ood, chunked.ood)
    assert whole.ood_threshold == chunked.ood_threshold
    m.fit(targets, sigma=0.07)
    assert len(calls) == 2  # another σ, another threshold
