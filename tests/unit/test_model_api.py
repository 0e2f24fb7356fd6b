"""CurveModel's public API: shapes, chunking, seeding and errors for user mistakes."""

import numpy as np
import pytest

from curvae.runtime import CurveModel, InputError


@pytest.fixture(scope="module")
def model(bundle_dir):
    return CurveModel.load(bundle_dir, providers="cpu")


def test_chunked_calls_equal_single_calls(model, beta_targets):
    z = np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32)
    whole_dec, whole_enc = model.decode(z), model.encode(beta_targets, sample=True, seed=4)
    np.testing.assert_array_equal(model.decode(z, chunk_rows=7), whole_dec)
    np.testing.assert_array_equal(model.encode(beta_targets, sample=True, seed=4, chunk_rows=7), whole_enc)


@pytest.mark.parametrize("rows", [3, 50])
def test_decode_into_a_reused_buffer_equals_a_fresh_result(model, rows):
    z = np.random.default_rng(1).standard_normal((rows, 2)).astype(np.float32)
    buf = np.full((rows, 100), np.nan, np.float32)
    got = model.decode(z, out=buf, chunk_rows=7)  # 50 rows: the chunked path writes each chunk into out
    assert got is buf
    np.testing.assert_array_equal(buf, model.decode(z))
    view = np.zeros((rows, 300), np.float32)[:, ::3]  # a strided, writeable view works too
    np.testing.assert_array_equal(model.decode(z, out=view), buf)


def test_decode_refuses_an_out_that_overlaps_its_input(model):
    memory = np.zeros(200, np.float32)
    with pytest.raises(InputError, match="out overlaps the codes"):
        model.decode(memory[:4].reshape(2, 2), out=memory.reshape(2, 100))  # decoding would overwrite the codes


def test_sample_is_seeded_and_accepts_a_generator(model):
    np.testing.assert_array_equal(model.sample(4, seed=1), model.sample(4, seed=1))
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(model.sample(3, seed=g1), model.sample(3, seed=g2))


def test_integer_and_float64_inputs_are_cast(model):
    z64 = np.zeros((2, 2))
    np.testing.assert_array_equal(model.decode(z64), model.decode(z64.astype(np.float32)))
    assert model.decode(np.zeros((1, 2), dtype=np.int64)).dtype == np.float32


@pytest.mark.parametrize("call, match", [
    (lambda m: m.decode(np.zeros((2, 3))), "z has 3 latent dims per row; this model needs 2"),
    (lambda m: m.decode(np.zeros((0, 2))), "z has 0 rows; at least 1 are needed"),
    (lambda m: m.decode(np.zeros(2)), r"z has shape \(2,\); it must be 2-D"),
    (lambda m: m.encode(np.full((1, 100), np.nan)), r"curves\[0, 0\] = nan is not finite"),
    (lambda m: m.encode(np.zeros((1, 100), dtype=complex)), "dtype complex128"),
    (lambda m: m.encode(np.zeros((1, 100), dtype=bool)), "dtype bool"),
    (lambda m: m.encode(np.zeros((1, 100), dtype=object)), "dtype object"),
    (lambda m: m.encode([[1, 2], [3]]), "could not be read as an array"),
    (lambda m: m.sample(0), "n=0 must be a positive integer"),
    (lambda m: m.sample(2.5), "n=2.5 must be a positive integer"),
    (lambda m: m.fit(np.zeros((1, 100)), method="bfgs"), "method='bfgs' is not a fit method"),
    (lambda m: m.fit(np.zeros((1, 100)), init="random"), "init='random' is not supported"),
    (lambda m: m.fit(np.zeros((1, 100)), n_starts=0), "n_starts=0 must be a positive integer"),
    (lambda m: m.fit(np.zeros((1, 100)), prior_weight=-1.0), "prior_weight=-1.0 must be finite and >= 0"),
    (lambda m: m.fit(np.zeros((1, 100)), bound=0.0), "bound=0.0 must be a positive finite number"),
    (lambda m: m.encode_with_noise(np.zeros((2, 100)), np.zeros((3, 2))), "eps has 3 rows but curves has 2"),
    (lambda m: m.encode(np.full((3, 100), 3e38, np.float32)), r"curves rows \[0, 1, 2\] give non-finite codes"),
    (lambda m: m.decode(np.array([[0.0, 1e6]])), r"z\[0, 1\] = 1000000.0 is outside ±10000"),
    (lambda m: m.decode(np.zeros((1, 2, 1))), r"z has shape \(1, 2, 1\); it must be 2-D"),
    (lambda m: m.decode(np.zeros((3, 2)), out=np.empty((3, 100))), r"out has dtype float64 and shape \(3, 100\); "
                                                                  r"it must be float32 of shape \(3, 100\)"),
    (lambda m: m.decode(np.zeros((3, 2)), out=np.empty((4, 100), np.float32)), r"must be float32 of shape \(3, 100\)"),
    (lambda m: m.decode(np.zeros((3, 2)), out=[[0.0] * 100] * 3), "out is a list, not a numpy array"),
    (lambda m: m.decode(np.zeros((3, 2)), out=np.broadcast_to(np.float32(0), (3, 100))), "out is read-only"),
])
def test_user_mistakes_raise_curvae_errors(model, call, match):
    with pytest.raises(InputError, match=match):
        call(model)


def test_multistart_never_worse_than_single_start(model, beta_targets):
    one = model.fit(beta_targets)
    many = model.fit(beta_targets, n_starts=4, seed=0)
    assert (many.residual <= one.residual + 1e-6).all()
    assert many.z.shape == (64, 2) and many.nfev.min() > one.nfev.min()


def test_fit_beats_the_encoder_alone(model, beta_targets):
    mu = model.encode(beta_targets)
    before = np.linalg.norm(model.decode(mu) - beta_targets, axis=1)
    fit = model.fit(beta_targets)
    assert fit.success.all()
    assert (fit.residual <= before + 1e-5).all() and fit.residual.mean() < before.mean()


def test_sampled_codes_have_the_posterior_spread_on_real_curves(model):
    """``encode(sample=True)`` draws z = μ + σ·eps with eps ~ N(0, I): (z − μ)/σ has unit spread.

    The calibrated loss leaves σ near 1e-3 or below, so comparing z with μ to a tolerance cannot see a wrong
    noise scale; the standardised draws can.
    """
    from curvae.families import get_family

    curves, _ = get_family("beta").sample(3000, seed=21)
    mu, logvar = model.posterior(curves)
    z = model.encode(curves, sample=True, seed=4)
    u = (z.astype(np.float64) - mu) / np.exp(0.5 * logvar.astype(np.float64))  # (3000, d)
    assert np.all(np.abs(u.std(axis=0) - 1.0) < 0.05), u.std(axis=0)
    assert np.all(np.abs(u.mean(axis=0)) < 0.06), u.mean(axis=0)
