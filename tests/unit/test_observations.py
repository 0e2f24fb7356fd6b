"""Observation maps: the interpolation they apply, and every degenerate input a clear error or a stated result."""

from pathlib import Path

import numpy as np
import pytest

from curvae.core.errors import InputError
from curvae.runtime import CurveModel
from curvae.runtime.fitting.observations import (
    on_model_grid,
    on_own_grids,
    on_shared_grid,
)

GRID = np.linspace(0.01, 0.99, 100)
GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"


def test_interpolation_is_linear_in_the_decoded_curve():
    g = np.random.default_rng(0)
    curve = g.standard_normal((3, 100))
    xs = [np.sort(g.uniform(0.01, 0.99, k)) for k in (5, 9, 7)]
    obs, dropped = on_own_grids([(x, np.zeros_like(x)) for x in xs], GRID, latent_dim=2)
    got = obs.apply(curve)
    assert dropped == 0 and got.shape == (3, 9) and obs.n_obs.tolist() == [5, 9, 7]
    for i, x in enumerate(xs):
        np.testing.assert_allclose(got[i, :len(x)], np.interp(x, GRID, curve[i]), atol=1e-6)
        assert (got[i, len(x):] == 0).all()  # padding adds nothing
    jac = g.standard_normal((3, 2, 100)).astype(np.float32)
    np.testing.assert_allclose(obs.apply_jacobian(jac)[1, 0], np.interp(xs[1], GRID, jac[1, 0]), atol=1e-5)


def test_a_mask_is_the_same_operator_as_the_general_gather():
    v = np.random.default_rng(1).standard_normal((2, 100)).astype(np.float32)
    v[0, [3, 50, 99]] = np.nan
    obs = on_model_grid(v, latent_dim=2)
    curves = np.random.default_rng(2).standard_normal((2, 100))
    gathered = obs.w0 * np.take_along_axis(curves, obs.i0, 1) + obs.w1 * np.take_along_axis(curves, obs.i0 + 1, 1)
    np.testing.assert_allclose(obs.apply(curves), gathered * obs.observed)


def test_non_monotonic_x_is_sorted_not_refused():
    x = np.array([0.5, 0.1, 0.9, 0.3])
    y = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    a, _ = on_own_grids([(x, y)], GRID, latent_dim=2)
    b, _ = on_own_grids([(np.sort(x), y[np.argsort(x)])], GRID, latent_dim=2)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.x, b.x)


@pytest.mark.parametrize("make, match", [
    (lambda: on_model_grid(np.full((2, 100), np.nan), latent_dim=2), r"target 0 has 0 observed points; at least 3"),
    (lambda: on_model_grid(np.where(np.arange(100) < 2, 1.0, np.nan)[None], latent_dim=2),
     r"target 0 has 2 observed points; at least 3 \(latent_dim \+ 1\)"),
    (lambda: on_own_grids([(np.array([0.2, 0.2, 0.4]), np.ones(3))], GRID, latent_dim=2),
     r"x = 0.2 appears twice"),
    (lambda: on_own_grids([(np.array([0.2, 0.4, 1.5]), np.ones(3))], GRID, latent_dim=2),
     r"x = 1.5 is outside the model's grid \[0.01, 0.99\].*--clip-range"),
    (lambda: on_shared_grid(np.ones((2, 5)), np.linspace(0.1, 0.9, 4), GRID, latent_dim=2),
     r"the targets' grid has 4 values but the targets have 5 points"),
])
def test_degenerate_inputs_are_clear_errors(make, match):
    with pytest.raises(InputError, match=match):
        make()


def test_clip_range_drops_and_counts():
    x = np.array([0.0, 0.2, 0.4, 0.6, 1.2])
    obs, dropped = on_own_grids([(x, np.ones(5))], GRID, latent_dim=2, clip_range=True)
    assert dropped == 2 and obs.n_obs.tolist() == [3]


def test_model_level_errors_name_the_row():
    model = CurveModel.load(GOLDEN)
    t = model.sample(3, seed=0)
    t[1, :] = np.nan
    with pytest.raises(InputError, match="target 1 has 0 observed points"):
        model.fit(t)
    t = model.sample(2, seed=0)
    t[0, :50] = np.nan
    with pytest.raises(InputError, match="a per-point sigma applies to complete targets"):
        model.fit(t, sigma=np.linspace(0.1, 0.2, 100))
