"""The out-of-family flag: fresh family curves at about the configured rate, foreign curves nearly always.

The bundle is the default network after 30 epochs; its manifest records the
residuals of 500 held-out curves. With the 0.99 quantile, fresh curves of the
family exceed it with probability ~1/100 (the empirical quantile of 500 values
is itself uncertain by about ±0.5%).
"""

from __future__ import annotations

import numpy as np
import pytest

from curvae.families import get_family
from curvae.runtime import CurveModel


@pytest.fixture(scope="module")
def model(trained_bundle) -> CurveModel:
    return CurveModel.load(trained_bundle)


def test_the_manifest_records_held_out_residuals(model):
    rec = model.manifest.fit_residuals
    assert rec is not None and len(rec.values) == 500 and rec.n_points == 100
    assert list(rec.values) == sorted(rec.values) and rec.quantile(0.99) > rec.quantile(0.5) > 0


@pytest.mark.parametrize("quantile, high", [(0.99, 0.03), (0.9, 0.16)])
def test_fresh_family_curves_are_flagged_at_about_the_configured_rate(model, quantile, high):
    curves, _ = get_family("beta").sample(2000, seed=4242)
    fit = model.fit(curves, ood_quantile=quantile)
    rate = float(fit.ood.mean())
    assert (1 - quantile) / 3 <= rate <= high, rate
    assert fit.success.mean() > 0.99  # `success` keeps its meaning: the optimiser converged
    flagged = np.flatnonzero(fit.ood)
    assert "quantile of 500 held-out fits" in fit.ood_reason[flagged[0]]


def test_foreign_curves_are_flagged(model):
    g = np.random.default_rng(0)
    grid = model.grid
    sines = np.array([a * np.sin(2 * np.pi * f * grid + p) for a, f, p in
                      zip(g.uniform(0.5, 3, 300), g.uniform(0.5, 4, 300), g.uniform(0, 2 * np.pi, 300))], np.float32)
    noise = g.normal(0, 1, (300, 100)).astype(np.float32)
    shifted = get_family("beta").sample(300, seed=5)[0] + np.float32(1.0)
    for name, curves in (("sinusoids", sines), ("white noise", noise), ("log-PDFs shifted by 1", shifted)):
        fit = model.fit(curves)
        assert fit.ood.mean() >= 0.95, f"{name}: only {fit.ood.mean():.1%} flagged"


def test_degenerate_targets(model):
    flat = np.full((2, 100), -3.0, np.float32)  # a constant that no Beta log-PDF is
    fit = model.fit(flat)
    assert fit.ood.all() and np.isfinite(fit.z).all() and not np.isnan(fit.cov).any()
    saturating = np.full((2, 100), 1e3, np.float32)  # far beyond anything the decoder produces
    fit = model.fit(saturating)
    assert fit.ood.all() and not np.isnan(fit.z_std).any() and not np.isnan(fit.band_lo).any()
