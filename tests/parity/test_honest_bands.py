"""Honest uncertainty on real targets: fresh family curves plus noise of known σ, not decoded codes.

The model's own error (recorded at export) widens the default band to where
the true curve is, and the out-of-family flag knows the noise. Targets of
the docs (docs/uncertainty.md): the band covers the true curve's points at
0.93–0.99, in-family targets are flagged at ≤ 3%, foreign curves at ≥ 95%.
Seeded; each check is a rate over 600 curves (× 100 points for the bands).
"""

from __future__ import annotations

import numpy as np
import pytest

from curvae.families import get_family
from curvae.runtime import CurveModel

pytestmark = pytest.mark.slow
SIGMAS = (0.01, 0.05, 0.2)
N = 600


@pytest.fixture(scope="module", params=["beta", "peak"])
def family_model(request, default_model):
    """The default recipe on a family, exported with its own error recorded."""
    return request.param, default_model(request.param)


def _noisy(family: str, sigma: float, seed: int):
    clean, _ = get_family(family).sample(N, seed=seed)
    return clean, (clean + np.random.default_rng(seed + 1).normal(0, sigma, clean.shape)).astype(np.float32)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_the_default_band_covers_the_true_curve_and_in_family_is_not_flagged(family_model, sigma):
    family, model = family_model
    clean, y = _noisy(family, sigma, seed=31)
    fit = model.fit(y, sigma=sigma)
    covered = float(((clean >= fit.band_lo) & (clean <= fit.band_hi)).mean())
    z_only = float(((clean >= fit.band_z_lo) & (clean <= fit.band_z_hi)).mean())
    assert 0.93 <= covered <= 0.99, f"{family} σ={sigma}: band covers {covered:.3f}"
    assert z_only <= covered  # the z-only band is narrower: it leaves out the model's own error
    assert fit.ood.mean() <= 0.03, f"{family} σ={sigma}: {fit.ood.mean():.1%} of in-family curves flagged"
    assert "in-family fits" in fit.ood_reason[0]


@pytest.mark.parametrize("sigma", SIGMAS)
def test_foreign_curves_are_flagged_whatever_the_noise(family_model, sigma):
    family, model = family_model
    clean, _ = _noisy(family, sigma, seed=41)
    g = np.random.default_rng(5)
    scale = float(np.std(clean))
    x = (model.grid - model.grid[0]) / (model.grid[-1] - model.grid[0])
    m = 300
    foreign = {"sinusoids": scale * np.sin(2 * np.pi * g.uniform(0.5, 4, (m, 1)) * x + g.uniform(0, 6.3, (m, 1))),
               "white noise": g.normal(0, scale, (m, x.size)), "shifted by one std": clean[:m] + scale}
    for name, curves in foreign.items():
        y = (curves + g.normal(0, sigma, curves.shape)).astype(np.float32)
        rate = float(model.fit(y, sigma=sigma).ood.mean())
        assert rate >= 0.95, f"{family} σ={sigma}: only {rate:.1%} of {name} flagged"


def test_decoded_codes_are_covered_at_least_at_nominal_with_the_emulator_term(family_model):
    """Decoded codes have no model error, so the true-curve band may be wider than needed, never narrower."""
    _, model = family_model
    z = np.random.default_rng(8).standard_normal((N, model.latent_dim)).astype(np.float32)
    clean = model.decode(z)
    y = (clean + np.random.default_rng(9).normal(0, 0.05, clean.shape)).astype(np.float32)
    fit = model.fit(y, sigma=0.05)
    assert ((clean >= fit.band_lo) & (clean <= fit.band_hi)).mean() >= 0.954 - 0.02


def test_missing_points_keep_the_band_honest(family_model):
    family, model = family_model
    clean, y = _noisy(family, 0.05, seed=51)
    y[:, ::3] = np.nan  # a third of the points unobserved
    fit = model.fit(y, sigma=0.05)
    covered = float(((clean >= fit.band_lo) & (clean <= fit.band_hi)).mean())
    assert 0.93 <= covered <= 0.995 and fit.ood.mean() <= 0.03


def test_a_bundle_without_the_record_gives_the_z_only_band_under_both_names():
    from pathlib import Path

    golden = CurveModel.load(Path(__file__).resolve().parents[1] / "fixtures" / "golden")
    assert golden.manifest.fit_residuals is None or not golden.manifest.fit_residuals.has_emulator_error
    y = golden.sample(20, seed=1)
    fit = golden.fit(y, sigma=0.05)
    np.testing.assert_array_equal(fit.band_lo, fit.band_z_lo)
    np.testing.assert_array_equal(fit.band_hi, fit.band_z_hi)
