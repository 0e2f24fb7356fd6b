"""The chunk kernels: rows named in the whole set, draws that follow the row, bad rows stopped or skipped."""

import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from curvae.core.errors import BadRowsError, InputError
from curvae.core.seeding import ROW_BLOCK, row_normals
from curvae.io.chunks import FitTally, column, fit_chunk, fit_columns_for
from curvae.runtime import CurveModel
from curvae.runtime.fitting.engine import FitResult

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
sys.path.insert(0, str(GOLDEN.parent))
from results import assert_same_fit  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return CurveModel.load(GOLDEN)


@pytest.fixture(scope="module")
def targets(model):
    noise = np.random.default_rng(0).normal(0, 0.02, (300, model.n_points)).astype(np.float32)
    return model.sample(300, seed=1) + noise


def test_row_normals_do_not_depend_on_the_chunking():
    whole = row_normals(9, 0, 3 * ROW_BLOCK + 5, (2, 3))
    parts = np.concatenate([row_normals(9, i, min(i + 777, len(whole)), (2, 3)) for i in range(0, len(whole), 777)])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(row_normals(9, 0, 10, (2,)), row_normals(10, 0, 10, (2,)))


def test_seeded_encodes_and_multi_start_fits_do_not_depend_on_the_chunking(model, targets):
    whole = model.encode(targets, sample=True, seed=4)
    parts = np.concatenate([model.encode(targets[i:i + 37], sample=True, seed=4, row_offset=i)
                            for i in range(0, 300, 37)])
    np.testing.assert_array_equal(whole, parts)
    one = model.fit(targets[:60], n_starts=3, seed=2)
    assert_same_fit(one, model.fit(targets[:60], n_starts=3, seed=2, chunk_rows=7))
    tail = model.fit(targets[25:60], n_starts=3, seed=2, row_offset=25)
    np.testing.assert_array_equal(tail.z, one.z[25:])


def test_a_bad_row_is_named_by_its_row_in_the_whole_set(model, targets):
    t = targets[:50].copy()
    t[17, 4] = np.inf
    with pytest.raises(BadRowsError, match=r"targets\[1017, 4\] = inf") as err:
        fit_chunk(model, t, start=1000)
    assert err.value.rows == (1017,)
    t = targets[:50].copy()
    t[30] = np.nan  # a NaN is an unobserved point; a row with none observed cannot be fitted
    with pytest.raises(BadRowsError, match="target 2030 has 0 observed points") as err:
        fit_chunk(model, t, start=2000)
    assert err.value.rows == (2030,)


def test_skipped_rows_are_recorded_and_the_others_fitted_as_without_them(model, targets):
    t = targets[:80].copy()
    t[3, 0] = -np.inf
    t[41] = np.nan
    t[79, :97] = np.nan  # 3 points: one more than latent_dim, enough
    t[60, :99] = np.nan  # 1 point: too few
    res, skipped = fit_chunk(model, t, start=500, skip_bad_rows=True)
    assert skipped.rows.tolist() == [503, 541, 560]
    assert "not finite" in skipped.reasons[0] and "0 observed points" in skipped.reasons[1]
    bad = np.array([3, 41, 60])
    assert not res.success[bad].any() and np.isnan(res.z[bad]).all() and (res.nfev[bad] == 0).all()
    assert all(m.startswith("not fitted: ") for m in res.message[bad])
    assert (column(res, "ood")[bad] == -1).all()
    good = np.setdiff1d(np.arange(80), bad)
    np.testing.assert_array_equal(res.z[good], model.fit(t[good]).z)
    assert res.success[79]
    with pytest.raises(BadRowsError):
        fit_chunk(model, t, start=500)


def test_options_errors_are_not_taken_for_bad_rows(model, targets):
    with pytest.raises(InputError, match="max_iter"):
        fit_chunk(model, targets[:5], skip_bad_rows=True, max_iter=0)


def test_every_fit_field_has_an_output_column(model, bundle_dir):
    names = set(fit_columns_for(model, 3, {"method": "mcmc"}))  # a bundle without a parameter head
    theta = {"theta", "theta_std", "theta_lo", "theta_hi", "theta_cov"}
    assert {f.name for f in fields(FitResult)} - names == {"x_hat_obs"} | theta
    with_head = set(fit_columns_for(CurveModel.load(bundle_dir), 3, {"method": "mcmc"}))
    assert {f.name for f in fields(FitResult)} - with_head == {"x_hat_obs"}
    assert theta.isdisjoint(fit_columns_for(CurveModel.load(bundle_dir), 3, {"params": False}))


def test_the_tally_summarises_like_the_whole_result_in_constant_memory(model, targets):
    res = model.fit(targets)
    tally = FitTally()
    for i in range(0, 300, 64):
        part = FitTally()
        part.add(model.fit(targets[i:i + 64]))
        tally.merge(part)
    s, exact = tally.summary(), res.summary()
    assert s["n"] == exact["n"] == 300 and s["n_success"] == exact["n_success"]
    assert s["residual_median"] == pytest.approx(exact["residual_median"], rel=0.006)
    assert s["residual_p90"] == pytest.approx(exact["residual_p90"], rel=0.006)
    assert s["mean_nfev"] == pytest.approx(exact["mean_nfev"])
    assert tally.hist.nbytes < 64 * 1024


def test_encode_and_decode_chunk_sizes_do_not_change_the_numbers(model, targets):
    np.testing.assert_array_equal(model.encode(targets, chunk_rows=7), model.encode(targets))
    z = model.encode(targets)
    np.testing.assert_array_equal(model.decode(z, chunk_rows=1), model.decode(z))
    with pytest.raises(InputError, match="chunk_rows=0 must be a positive integer"):
        model.decode(z, chunk_rows=0)


def test_row_normals_blocks_are_streams_of_their_own():
    """Rows a block apart differ: a chunking test alone passes if every block repeated the first one's stream."""
    x = row_normals(9, 0, 4 * ROW_BLOCK, (2,))  # (4·ROW_BLOCK, 2)
    blocks = x.reshape(4, ROW_BLOCK, 2)
    for a in range(4):
        for b in range(a + 1, 4):
            assert not np.allclose(blocks[a], blocks[b])
            assert abs(np.corrcoef(blocks[a].ravel(), blocks[b].ravel())[0, 1]) < 0.1  # independent, not shifted
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1.0) < 0.05
