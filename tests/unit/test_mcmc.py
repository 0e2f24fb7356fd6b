"""MCMC posterior samples agree with the Laplace fit where the posterior is Gaussian (small noise)."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("emcee")

from curvae.runtime import CurveModel  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"


def test_mcmc_and_laplace_agree_for_small_noise():
    model = CurveModel.load(GOLDEN)
    g = np.random.default_rng(0)
    z = g.standard_normal((6, 2)).astype(np.float32)
    x = model.decode(z) + g.normal(0, 0.05, (6, 100)).astype(np.float32)
    mc = model.fit(x, method="mcmc", sigma=0.05, seed=1)
    la = model.fit(x, sigma=0.05)
    assert mc.samples.shape == (6, 1600, 2) and np.isfinite(mc.samples).all()
    ratio = mc.z_std / la.z_std
    assert (0.8 < ratio).all() and (ratio < 1.25).all(), ratio
    assert np.abs(mc.samples.mean(axis=1) - la.z).max() < 0.35 * la.z_std.max()
    np.testing.assert_array_equal(mc.z, la.z)  # the point estimate is still the LM optimum
    # the sampled band is the decodings' own 95.4% interval: it holds the fitted curve
    assert ((mc.band_lo <= mc.x_hat + 1e-6) & (mc.x_hat <= mc.band_hi + 1e-6)).mean() > 0.95
    again = model.fit(x, method="mcmc", sigma=0.05, seed=1)
    np.testing.assert_array_equal(again.samples, mc.samples)  # seeded
