"""Curves with gaps and on their own x-grid fit as well as complete ones.

Fresh Beta curves with known α and β are fitted three ways: complete, with
30% of the points removed at random, and sampled on 37 points of
[0.05, 0.95]. The decoded fit is compared with the true log-PDF on the model
grid inside the observed range; the median error of each partial fit must be
within 15% of the complete fit's.
"""

from __future__ import annotations

import numpy as np
import pytest

from curvae.families import get_family
from curvae.runtime import CurveModel

N = 1000


@pytest.fixture(scope="module")
def setup(trained_bundle):
    model = CurveModel.load(trained_bundle)
    fam = get_family("beta")
    curves, theta = fam.sample(N, seed=8080)
    full = model.fit(curves)
    return model, fam, curves, theta, full


def _err(x_hat, truth, cols=slice(None)) -> float:
    return float(np.median(np.sqrt(np.mean((x_hat[:, cols] - truth[:, cols]) ** 2, axis=1))))


def test_thirty_percent_missing_fits_like_complete(setup):
    model, _, curves, _, full = setup
    masked = curves.copy()
    masked[np.random.default_rng(1).random(masked.shape) < 0.3] = np.nan
    fit = model.fit(masked)
    assert fit.success.mean() > 0.99
    assert (fit.n_obs == np.isfinite(masked).sum(axis=1)).all()
    np.testing.assert_allclose(fit.rms, fit.residual / np.sqrt(fit.n_obs))
    assert _err(fit.x_hat, curves) <= 1.15 * _err(full.x_hat, curves)


def test_own_grid_of_37_points_fits_like_complete(setup):
    model, fam, curves, theta, full = setup
    x = np.linspace(0.05, 0.95, 37)
    own = fam.logpdf(x, theta).astype(np.float32)
    fit = model.fit(own, grid=x)
    assert fit.success.mean() > 0.99 and fit.x_hat_obs.shape == (N, 37) and (fit.n_obs == 37).all()
    inside = (model.grid >= 0.05) & (model.grid <= 0.95)
    assert _err(fit.x_hat, curves, inside) <= 1.15 * _err(full.x_hat, curves, inside)
    # x_hat_obs is the decoded curve interpolated linearly at the target's own x
    np.testing.assert_allclose(fit.x_hat_obs[0], np.interp(x, model.grid, fit.x_hat[0]), atol=1e-5)


@pytest.mark.parametrize("layout", ["masked", "own grid"])
def test_the_start_reaches_the_best_of_many_starts(setup, layout):
    model, fam, curves, theta, _ = setup
    if layout == "masked":
        t = curves[:300].copy()
        t[np.random.default_rng(2).random(t.shape) < 0.3] = np.nan
        kw = {}
    else:
        x = np.linspace(0.05, 0.95, 37)
        t, kw = fam.logpdf(x, theta[:300]).astype(np.float32), {"grid": x}
    one = model.fit(t, **kw)
    best = model.fit(t, n_starts=8, seed=0, **kw)
    assert np.mean(one.residual <= best.residual * 1.01 + 1e-6) >= 0.99


def test_out_of_family_and_uncertainty_count_observed_points_only(setup):
    model, fam, curves, theta, _ = setup
    x = np.linspace(0.05, 0.95, 37)
    own = fam.logpdf(x, theta[:500]).astype(np.float32)
    fit = model.fit(own, grid=x, sigma=0.01)
    assert fit.ood.mean() < 0.05  # fewer points, same family: RMS per point keeps the flag honest
    assert np.median(fit.chi2) < 37 * 10  # χ² sums over 37 observed points, not 100
    shifted = model.fit(own + 1.0, grid=x)
    assert shifted.ood.mean() > 0.95
