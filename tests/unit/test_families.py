import numpy as np
import pytest
from scipy import stats

from curvae.core.errors import InputError
from curvae.families import FAMILIES, get_family

FAMILY_NAMES = sorted(FAMILIES)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_family_curves_are_finite_float32_on_its_grid(name):
    fam = get_family(name)
    curves, theta = fam.sample(50, seed=0)
    assert curves.shape == (50, fam.n_points) and curves.dtype == np.float32
    assert np.isfinite(curves).all()
    assert theta.shape == (50, len(fam.params))
    for j, (_, lo, hi) in enumerate(fam.params):
        assert (theta[:, j] > lo).all() and (theta[:, j] < hi).all()


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_same_seed_same_curves_other_seed_other_curves(name):
    fam = get_family(name)
    a, _ = fam.sample(10, seed=42)
    b, _ = fam.sample(10, seed=42)
    c, _ = fam.sample(10, seed=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_beta_is_the_worked_example_setup():
    fam = get_family("beta")
    np.testing.assert_allclose(fam.grid(), np.linspace(0.01, 0.99, 100))
    assert [p[1:] for p in fam.params] == [(0.0, 5.0), (0.0, 5.0)]
    theta = np.array([[2.0, 3.0], [0.5, 4.5]])
    expected = stats.beta.logpdf(fam.grid()[None, :], theta[:, [0]], theta[:, [1]])
    np.testing.assert_allclose(fam.curves(theta), expected, rtol=1e-6)


def test_family_description_lists_parameter_ranges():
    d = get_family("gamma").to_dict()
    assert d["name"] == "gamma" and d["params"] == {"shape": [0.5, 5.0], "scale": [0.5, 2.0]}


def test_unknown_family_lists_the_built_in_ones():
    with pytest.raises(InputError, match=r"family 'weibull' is not built in; choose one of beta, gamma, normal, "
                                         r"peak, logistic, damped, planck"):
        get_family("weibull")


def _planck_si(lam_um, temp):
    """Planck's law B_λ(T) in SI units, from scipy's constants (an independent writing of the formula)."""
    from scipy import constants as c

    lam = lam_um * 1e-6
    return 2 * c.h * c.c ** 2 / lam ** 5 / np.expm1(c.h * c.c / (lam * c.k * temp))


def _planck_ref(x, t):
    peak = _planck_si(np.array([2.897771955e-3 / 5000 * 1e6]), 5000.0)[0]
    return t[:, [1]] * _planck_si(x[None, :], t[:, [0]]) / peak


SCIPY_REFERENCE = {
    "beta": lambda x, t: stats.beta.logpdf(x[None, :], t[:, [0]], t[:, [1]]),
    "gamma": lambda x, t: stats.gamma.logpdf(x[None, :], t[:, [0]], scale=t[:, [1]]),
    "normal": lambda x, t: stats.norm.logpdf(x[None, :], t[:, [0]], t[:, [1]]),
    "peak": lambda x, t: stats.norm.pdf(x[None, :], t[:, [0]], t[:, [1]]) * t[:, [1]] * np.sqrt(2 * np.pi),
    "logistic": lambda x, t: __import__("scipy.special").special.expit((x[None, :] - t[:, [0]]) * t[:, [1]]
                                                                        * np.log(10)),
    "damped": lambda x, t: np.exp(-t[:, [1]] * x[None, :]) * np.cos(2 * np.pi * t[:, [0]] * x[None, :] + t[:, [2]]),
    "planck": _planck_ref,
}


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_closed_form_log_pdf_equals_scipy_over_the_whole_parameter_box(name):
    fam = get_family(name)
    theta = fam.sample_params(2000, seed=3)
    got = fam.logpdf(fam.grid(), theta)
    np.testing.assert_allclose(got, SCIPY_REFERENCE[name](fam.grid(), theta), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_samples_with_its_named_parameters(name):
    fam = get_family(name)
    curves, theta = fam.sample(30, seed=5)
    np.testing.assert_allclose(fam.curves(theta), curves)  # the parameters are the curves' own
    assert fam.param_names == tuple(fam.to_dict()["params"]) and len(fam.param_names) == theta.shape[1]


def _pca_residual(train, test, d):
    m = train.mean(0)
    v = np.linalg.svd(train - m, full_matrices=False)[2][:d]
    r = (test - m) - ((test - m) @ v.T) @ v
    return np.linalg.norm(r, axis=1)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_exponential_families_are_linear_in_three_functions_and_the_others_bend(name):
    """What the docs say of each family: PCA with 3 components is exact on beta, gamma, normal only."""
    fam = get_family(name)
    train, _ = fam.sample(2000, seed=1)
    test, _ = fam.sample(200, seed=2)
    worst = float(_pca_residual(train.astype(np.float64), test.astype(np.float64), 3).max())
    if fam.linear_dim is not None:
        assert fam.linear_dim == 3 and worst < 1e-3
    else:
        assert worst > 0.05
