"""The fitting engine against a known numpy decoder, where the true codes are known."""

import numpy as np
import pytest

from curvae.runtime.fitting.engine import FIT_METHODS, FitOptions, fit_latent

rng = np.random.default_rng(0)
W = rng.normal(size=(2, 30))
B = rng.normal(size=30)


def decode(z):
    return np.tanh(z.astype(np.float64) @ W + B).astype(np.float32)


@pytest.mark.parametrize("method", FIT_METHODS)
def test_recovers_true_codes_from_a_nearby_start(method):
    z_true = rng.uniform(-0.8, 0.8, size=(20, 2)).astype(np.float32)
    targets = decode(z_true)
    z0 = (z_true + rng.normal(scale=0.2, size=z_true.shape)).astype(np.float32)
    res = fit_latent(decode, targets, z0, FitOptions(method=method))
    assert res.success.all(), res.message
    np.testing.assert_allclose(res.z, z_true, atol=2e-3)
    assert res.residual.max() < 1e-3
    assert res.z.shape == (20, 2) and res.x_hat.shape == (20, 30) and (res.nfev > 0).all()


def test_lm_needs_few_decoder_rows_per_target():
    z_true = rng.uniform(-0.5, 0.5, size=(200, 2)).astype(np.float32)
    res = fit_latent(decode, decode(z_true), np.zeros_like(z_true), FitOptions())
    assert res.success.all()
    assert res.nfev.mean() < 120  # the worked example's Nelder-Mead spends about 120


def test_bound_keeps_codes_inside():
    z_true = np.full((5, 2), 1.5, np.float32)
    res = fit_latent(decode, decode(z_true), np.zeros_like(z_true), FitOptions(bound=1.0))
    assert np.abs(res.z).max() <= 1.0 + 1e-6


def test_prior_weight_pulls_codes_towards_zero():
    z_true = rng.uniform(-1, 1, size=(10, 2)).astype(np.float32)
    free = fit_latent(decode, decode(z_true), np.zeros_like(z_true), FitOptions())
    held = fit_latent(decode, decode(z_true), np.zeros_like(z_true), FitOptions(prior_weight=5.0))
    assert (np.linalg.norm(held.z, axis=1) < np.linalg.norm(free.z, axis=1)).all()


def test_non_finite_decoder_output_is_never_a_success():
    def broken(z):
        out = decode(z)
        out[:, 0] = np.nan
        return out

    z = np.zeros((3, 2), np.float32)
    res = fit_latent(broken, decode(z), z, FitOptions())
    assert not res.success.any()
    assert all("non-finite" in m for m in res.message)
