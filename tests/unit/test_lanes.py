"""Large batches on lanes (one single-threaded session per core): the same numbers as one session, errors that
still name their rows, and no lanes where they cannot pay."""

from __future__ import annotations

import numpy as np
import pytest

from curvae.core.errors import BadRowsError
from curvae.runtime import CurveModel
from curvae.runtime.engine import lanes as lanes_mod
from curvae.runtime.engine.lanes import LANE_ROWS, MIN_LANE_ROWS, Lanes


@pytest.fixture(scope="module")
def pair(bundle_dir):
    """The bundle on two lanes, and the same bundle on one single-threaded session (no lanes)."""
    return CurveModel.load(bundle_dir, threads=2), CurveModel.load(bundle_dir, threads=1)


def test_lanes_compute_what_one_session_does_in_any_chunking(pair):
    laned, single = pair
    n = 3 * MIN_LANE_ROWS + 77  # a ragged last chunk
    z = np.random.default_rng(0).standard_normal((n, laned.latent_dim)).astype(np.float32)
    assert laned._lane(1, n) is not None and single._lane(1, n) is None
    x = laned.decode(z)
    np.testing.assert_allclose(x, single.decode(z), rtol=1e-6, atol=1e-6)
    out = np.full_like(x, np.nan)
    assert laned.decode(z, out=out) is out and np.isfinite(out).all()
    np.testing.assert_array_equal(out, x)
    np.testing.assert_allclose(laned.encode(x), single.encode(x), rtol=1e-5, atol=1e-6)
    s1, s2 = laned.encode(x, sample=True, seed=4), single.encode(x, sample=True, seed=4)
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-6)


def test_a_bad_row_in_a_laned_batch_is_named(pair):
    laned, _ = pair
    x = np.asarray(laned.decode(np.zeros((MIN_LANE_ROWS + 5, laned.latent_dim), np.float32)))
    x[MIN_LANE_ROWS + 2] = 3e38  # overflows the first layer: non-finite codes
    with pytest.raises(BadRowsError, match=str(MIN_LANE_ROWS + 2)):
        laned.encode(x)


def test_every_chunk_runs_once_and_the_first_error_is_raised_after_all_lanes_stop(bundle_dir):
    model = CurveModel.load(bundle_dir, threads=2)
    lanes = model._lane(1, MIN_LANE_ROWS)
    seen = []
    lanes.map(lambda sess, lo, hi: seen.append((lo, hi)), 10 * LANE_ROWS + 3)
    assert sorted(seen) == [(lo, min(lo + LANE_ROWS, 10 * LANE_ROWS + 3)) for lo in range(0, 10 * LANE_ROWS + 3,
                                                                                          LANE_ROWS)]
    done = []

    def fail_once(sess, lo, hi):
        if lo == 2 * LANE_ROWS:
            raise ValueError("chunk 2")
        done.append(lo)

    with pytest.raises(ValueError, match="chunk 2"):
        lanes.map(fail_once, 6 * LANE_ROWS)
    assert 5 * LANE_ROWS in done or 4 * LANE_ROWS in done  # the other lane went on to its end


def test_no_lanes_on_one_core_or_another_provider(bundle_dir, monkeypatch):
    graphs = CurveModel.load(bundle_dir)._graphs
    assert lanes_mod.process_lanes(graphs, ["CPUExecutionProvider"], 1) is None
    assert lanes_mod.process_lanes(graphs, ["CUDAExecutionProvider", "CPUExecutionProvider"], 4) is None
    monkeypatch.setattr(lanes_mod, "cores", lambda: 1)
    assert lanes_mod.process_lanes(graphs, ["CPUExecutionProvider"], None) is None
    two = lanes_mod.process_lanes(graphs, ["CPUExecutionProvider"], 2)
    assert isinstance(two[1], Lanes) and len(two[1].sessions) == 2
    assert lanes_mod.process_lanes(graphs, ["CPUExecutionProvider"], 2) is two  # once per process


#: The model a forked child finds in its copy of the parent's memory (not a pickled one, which opens its own).
_INHERITED: dict = {}


def _decode_inherited(z: np.ndarray) -> np.ndarray:
    return _INHERITED["model"].decode(z)


def test_a_forked_child_decodes_a_large_batch_on_lanes_of_its_own(pair):
    """multiprocessing's default start on Linux is fork: the child inherits the model and its lanes, but not the
    lanes' threads; it must start its own instead of waiting forever."""
    import multiprocessing as mp

    laned, _ = pair
    z = np.random.default_rng(5).standard_normal((MIN_LANE_ROWS * 2, laned.latent_dim)).astype(np.float32)
    want = laned.decode(z)  # the parent's lanes exist, with their threads
    _INHERITED["model"] = laned
    try:
        with mp.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(_decode_inherited, (z,)).get(timeout=30)
    finally:
        _INHERITED.clear()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
