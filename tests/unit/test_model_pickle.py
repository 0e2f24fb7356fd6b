"""A CurveModel travels to other processes as verified graph bytes, and fits in bounded chunks."""

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curvae.core.errors import BundleError
from curvae.runtime import CurveModel

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"


def test_a_pickled_model_is_small_and_gives_the_same_numbers_in_a_fresh_process(tmp_path):
    model = CurveModel.load(GOLDEN, providers="cpu")
    blob = pickle.dumps(model)
    graphs = sum((GOLDEN / f).stat().st_size for f in ("encoder.onnx", "decoder.onnx"))
    assert len(blob) < graphs + (GOLDEN / "manifest.json").stat().st_size  # bytes and manifest, no session
    z = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    (tmp_path / "m.pkl").write_bytes(blob)
    np.save(tmp_path / "z.npy", z)
    code = ("import pickle, sys, numpy as np; m = pickle.loads(open(sys.argv[1], 'rb').read()); "
            "np.save(sys.argv[3], m.decode(np.load(sys.argv[2])))")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.pkl"), str(tmp_path / "z.npy"),
                    str(tmp_path / "x.npy")], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), model.decode(z))
    again = pickle.loads(blob)
    assert again._enc is pickle.loads(blob)._enc  # one session pair per process for the same graphs


def test_a_pickled_model_with_altered_bytes_refuses_to_unpickle():
    model = CurveModel.load(GOLDEN)
    state = model.__getstate__()
    dec = bytearray(state["graphs"][1])
    dec[len(dec) // 2] ^= 1
    state["graphs"] = (state["graphs"][0], bytes(dec))
    fake = CurveModel.__new__(CurveModel)
    with pytest.raises(BundleError, match="decoder.onnx bytes whose sha256 differs from its manifest"):
        fake.__setstate__(state)


def test_fits_in_chunks_equal_one_call():
    model = CurveModel.load(GOLDEN)
    t = model.sample(50, seed=3)
    t[::7, 10:30] = np.nan
    whole, chunked = model.fit(t), model.fit(t, chunk_rows=16)
    for name in ("z", "residual", "rms", "n_obs", "z_std", "band_lo", "ood"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))
    assert chunked.ood_threshold == whole.ood_threshold
