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
    with pytest.raises(InputError, match=r"family 'weibull' is not built in; choose one of beta, gamma, normal"):
        get_family("weibull")


SCIPY_REFERENCE = {
    "beta": lambda x, t: stats.beta.logpdf(x[None, :], t[:, [0]], t[:, [1]]),
    "gamma": lambda x, t: stats.gamma.logpdf(x[None, :], t[:, [0]], scale=t[:, [1]]),
    "normal": lambda x, t: stats.norm.logpdf(x[None, :], t[:, [0]], t[:, [1]]),
}


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_closed_form_log_pdf_equals_scipy_over_the_whole_parameter_box(name):
    fam = get_family(name)
    theta = fam.sample_params(2000, seed=3)
    got = fam.logpdf(fam.grid(), theta)
    np.testing.assert_allclose(got, SCIPY_REFERENCE[name](fam.grid(), theta), rtol=1e-12, atol=1e-12)
