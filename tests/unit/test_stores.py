"""Row sources and sinks: .npy/.zarr in, .npz/.npy/.zarr out, renamed into place only when complete."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from curvae.core.errors import BadRowsError, DataFileError, InputError
from curvae.io.files import decode_file, encode_file, fit_file
from curvae.io.stores import ZarrSink, open_rows, open_sink
from curvae.runtime import CurveModel

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
sys.path.insert(0, str(GOLDEN.parent))
from results import assert_identical, read_outputs  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return CurveModel.load(GOLDEN)


def save_zarr(path: Path, array: np.ndarray, chunks=None) -> None:
    zarr.create_array(str(path), data=array, chunks=chunks or "auto")


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".zarr"])
def test_encode_and_decode_stream_into_every_output_format(model, tmp_path, suffix):
    curves = model.sample(50, seed=3)
    np.save(tmp_path / "c.npy", curves)
    encode_file(model, tmp_path / "c.npy", tmp_path / f"z{suffix}", sample=True, seed=5, chunk=7)
    (z,) = read_outputs(tmp_path / f"z{suffix}").values()
    np.testing.assert_array_equal(z, model.encode(curves, sample=True, seed=5))
    save_zarr(tmp_path / "codes.zarr", z, (9, 2))
    decode_file(model, tmp_path / "codes.zarr", tmp_path / f"x{suffix}", chunk=11)
    (x,) = read_outputs(tmp_path / f"x{suffix}").values()
    np.testing.assert_array_equal(x, model.decode(z))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_fit_to_zarr_equals_fit_to_npz_and_records_skipped_rows(model, tmp_path):
    t = model.sample(40, seed=8)
    t[13, 5] = np.inf
    save_zarr(tmp_path / "t.zarr", t, (10, 25))  # chunked along points too: rows are read whole
    a = fit_file(model, tmp_path / "t.zarr", tmp_path / "fit.zarr", chunk=16, skip_bad_rows=True)
    b = fit_file(model, tmp_path / "t.zarr", tmp_path / "fit.npz", chunk=5, skip_bad_rows=True)
    za, nb = read_outputs(tmp_path / "fit.zarr"), read_outputs(tmp_path / "fit.npz")
    assert_identical(za, nb)
    assert {"skipped_rows", "skipped_reasons"} <= za.keys()
    assert za["skipped_rows"].tolist() == [13] and "targets[13, 5] = inf" in za["skipped_reasons"][0]
    assert a["n_skipped"] == b["n_skipped"] == 1 and a["n_success"] == 39
    with pytest.raises(BadRowsError, match=r"targets\[13, 5\]"):
        fit_file(model, tmp_path / "t.zarr", tmp_path / "again.zarr", chunk=5)
    assert not (tmp_path / "again.zarr").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_sink_that_fails_leaves_nothing_and_a_forced_one_replaces_only_when_done(tmp_path):
    dest = tmp_path / "out.zarr"
    sink = open_sink(dest, {"a": ((4, 2), "float32")}, chunk_rows=2)
    sink.write("a", 0, np.ones((2, 2)))
    sink.discard()
    assert list(tmp_path.iterdir()) == []
    save_zarr(dest, np.zeros(3))
    sink = ZarrSink(dest, {"a": ((4, 2), "float32")}, chunk_rows=2)
    assert zarr.open_array(str(dest), mode="r").shape == (3,)  # the old store stays until commit
    sink.write("a", 2, np.ones((2, 2)))
    sink.write("a", 0, np.full((2, 2), 2))
    sink.commit()
    np.testing.assert_array_equal(zarr.open_group(str(dest), mode="r")["a"][:, 0], [2, 2, 1, 1])
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]
    with pytest.raises(InputError, match="a .npy holds one array"):
        open_sink(tmp_path / "x.npy", {"a": ((1,), "float32"), "b": ((1,), "float32")}, chunk_rows=1)


def test_unreadable_zarr_inputs_get_one_clear_line(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        open_rows(tmp_path / "missing.zarr", n_cols=100, what="targets")
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(DataFileError, match="is not a readable Zarr store"):
        open_rows(tmp_path / "junk.zarr", n_cols=100, what="targets")
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("a", shape=(2, 100), dtype="f4")
    group.create_array("b", shape=(2, 100), dtype="f4")
    with pytest.raises(DataFileError, match="is a Zarr group of 2 arrays .a, b., none of them 'curves'"):
        open_rows(tmp_path / "g.zarr", n_cols=100, what="targets")
    group.create_array("curves", shape=(3, 100), dtype="f4")
    assert open_rows(tmp_path / "g.zarr", n_cols=100, what="targets").shape == (3, 100)
    save_zarr(tmp_path / "w.zarr", np.zeros((3, 7)))
    with pytest.raises(DataFileError, match="7 columns per row; this model needs 100"):
        open_rows(tmp_path / "w.zarr", n_cols=100, what="targets")
    save_zarr(tmp_path / "s.zarr", np.array([["a", "b"]]))
    with pytest.raises(DataFileError, match="2-D real numbers"):
        open_rows(tmp_path / "s.zarr", n_cols=100, what="targets")


def test_a_damaged_chunk_is_one_clear_line_naming_its_rows(model, tmp_path):
    save_zarr(tmp_path / "t.zarr", model.sample(20, seed=1), (10, 100))
    (tmp_path / "t.zarr" / "c" / "1" / "0").write_bytes(b"garbage")  # the chunk of rows 10:20
    with pytest.raises(DataFileError, match=r"rows 10:20 could not be read"):
        fit_file(model, tmp_path / "t.zarr", tmp_path / "fit.npz", chunk=10)


def test_importing_the_runtime_imports_no_dask_and_no_zarr():
    code = ("import sys, curvae.runtime, curvae.io.files, curvae.io.stores, curvae.cli; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'zarr')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
