"""Property tests: every public runtime call returns finite output of the documented shape,
or raises curvae's own error, for any shape, dtype and value (NaN, Inf, huge, tiny, empty);
and a valid input (2-D, the right width, at least one row, real and finite, of sane
magnitude) must succeed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from curvae.runtime import CurvaeError, CurveModel

DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_,
                          np.complex64])
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model(bundle_dir):
    return CurveModel.load(bundle_dir)


def arrays(cols: st.SearchStrategy[int]):
    """Arrays of 0-3 dims around the expected shape, any dtype, any values."""

    @st.composite
    def build(draw):
        dtype = draw(DTYPES)
        ndim = draw(st.sampled_from([0, 1, 2, 2, 2, 3]))
        shape = tuple(draw(st.integers(0, 5)) for _ in range(ndim - 1)) + ((draw(cols),) if ndim else ())
        if np.dtype(dtype).kind == "f":
            elements = st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8)
        elif np.dtype(dtype).kind == "c":
            elements = st.complex_numbers(width=64, allow_nan=False, allow_infinity=False, max_magnitude=10)
        else:
            elements = None
        return draw(hnp.arrays(dtype, shape, elements=elements))

    return build()


def is_valid(x, cols: int, bound: float) -> bool:
    """What the runtime documents as acceptable input: it must not be refused."""
    if x.dtype.kind not in "fiu" or x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != cols:
        return False
    with np.errstate(all="ignore"):
        return bool(np.isfinite(x.astype(np.float64)).all() and np.abs(x.astype(np.float64)).max() <= bound)


def finite_or_curvae_error(call, expect_shape, must_succeed=False):
    try:
        out = call()
    except CurvaeError:
        assert not must_succeed, "a valid input was refused"
        return
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert o.shape == expect_shape and o.dtype == np.float32
        assert np.isfinite(o).all()


@SETTINGS
@given(x=arrays(st.sampled_from([99, 100, 100, 100, 101])))
def test_encode_and_posterior(model, x):
    rows = x.shape[0] if x.ndim == 2 else -1
    valid = is_valid(x, 100, bound=30.0)  # the scale of log-PDF curves
    finite_or_curvae_error(lambda: model.encode(x), (rows, 2), valid)
    finite_or_curvae_error(lambda: model.encode(x, sample=True, seed=0), (rows, 2), valid)
    finite_or_curvae_error(lambda: model.posterior(x), (rows, 2), valid)


@SETTINGS
@given(z=arrays(st.sampled_from([1, 2, 2, 2, 3])))
def test_decode(model, z):
    rows = z.shape[0] if z.ndim == 2 else -1
    finite_or_curvae_error(lambda: model.decode(z), (rows, 100), is_valid(z, 2, bound=1e4))


@SETTINGS
@given(n=st.one_of(st.integers(-3, 20), st.floats(allow_nan=True), st.none(), st.text(max_size=2)))
def test_sample(model, n):
    valid = isinstance(n, int) and not isinstance(n, bool) and n >= 1
    finite_or_curvae_error(lambda: model.sample(n, seed=1), (n if isinstance(n, int) else -1, 100), valid)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(t=arrays(st.sampled_from([99, 100, 100, 101])))
def test_fit(model, t):
    try:
        res = model.fit(t)
    except CurvaeError:
        assert not is_valid(t, 100, bound=30.0), "valid targets were refused"
        return
    n = t.shape[0]
    assert res.z.shape == (n, 2) and res.residual.shape == (n,) and res.x_hat.shape == (n, 100)
    assert np.isfinite(res.z[res.success]).all() and np.isfinite(res.residual[res.success]).all()


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(z=hnp.arrays(np.float32, st.tuples(st.integers(1, 40), st.just(2)),
                    elements=st.floats(-4, 4, width=32)))
def test_valid_codes_always_decode_and_round_trip_in_shape(model, z):
    x = model.decode(z)
    assert x.shape == (z.shape[0], 100) and x.dtype == np.float32 and np.isfinite(x).all()
    assert model.encode(x).shape == z.shape
