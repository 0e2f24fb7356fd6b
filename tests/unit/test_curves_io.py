import io
import zipfile

import numpy as np
import pytest

from curvae.core.errors import DataFileError, InputError
from curvae.io.curves import load_curves
from curvae.runtime.arrays import as_matrix


@pytest.fixture
def curves():
    return np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)


def test_npy_round_trip(tmp_path, curves):
    np.save(tmp_path / "c.npy", curves)
    got = load_curves(tmp_path / "c.npy")
    np.testing.assert_array_equal(got.curves, curves)
    assert got.grid is None


def test_npz_with_grid(tmp_path, curves):
    grid = np.linspace(0, 1, 7)
    np.savez(tmp_path / "c.npz", curves=curves, grid=grid)
    got = load_curves(tmp_path / "c.npz")
    np.testing.assert_array_equal(got.curves, curves)
    np.testing.assert_array_equal(got.grid, grid)


def test_csv_one_curve_per_row(tmp_path, curves):
    np.savetxt(tmp_path / "c.csv", curves, delimiter=",")
    np.testing.assert_allclose(load_curves(tmp_path / "c.csv").curves, curves, rtol=1e-6)


def test_integer_and_float64_are_cast_safely(tmp_path):
    np.save(tmp_path / "i.npy", np.arange(12).reshape(3, 4))
    got = load_curves(tmp_path / "i.npy").curves
    assert got.dtype == np.float32 and got[2, 3] == 11


def test_n_points_must_match(tmp_path, curves):
    np.save(tmp_path / "c.npy", curves)
    with pytest.raises(DataFileError, match="has 7 points per row; this model needs 100"):
        load_curves(tmp_path / "c.npy", n_points=100)


@pytest.mark.parametrize("bad, where", [(np.nan, "[1, 2]"), (np.inf, "[1, 2]"), (-np.inf, "[1, 2]")])
def test_non_finite_values_name_row_and_column(tmp_path, curves, bad, where):
    curves[1, 2] = bad
    np.save(tmp_path / "c.npy", curves)
    with pytest.raises(DataFileError, match=rf"curves in c.npy\{where[:-1]}\] = .* is not finite"):
        load_curves(tmp_path / "c.npy")


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_curves(tmp_path / "nope.npy")


def test_empty_file(tmp_path):
    (tmp_path / "e.npy").write_bytes(b"")
    with pytest.raises(DataFileError, match="is empty"):
        load_curves(tmp_path / "e.npy")


def test_wrong_suffix(tmp_path):
    (tmp_path / "c.txt").write_text("1,2\n")
    with pytest.raises(DataFileError, match="suffix '.txt'; curvae reads .npy, .npz, .csv"):
        load_curves(tmp_path / "c.txt")


def test_a_one_dimensional_npy_is_one_curve(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(10.0))
    got = load_curves(tmp_path / "v.npy")
    assert got.curves.shape == (1, 10) and got.curves[0, 3] == 3.0


def test_csv_delimiters_headers_and_quoted_bad_cells(tmp_path):
    (tmp_path / "a.csv").write_text("p0;p1;p2\n1;2;3\n4;5;6\n")
    got = load_curves(tmp_path / "a.csv")
    assert got.header == ("p0", "p1", "p2") and got.curves.tolist() == [[1, 2, 3], [4, 5, 6]]
    (tmp_path / "b.csv").write_text("1\t2\t3\n4\t\t6\n")
    assert np.isnan(load_curves(tmp_path / "b.csv", allow_nan=True).curves[1, 1])
    with pytest.raises(DataFileError, match=r"curves in b.csv\[1, 1\] = nan is not finite.*give them to `fit`"):
        load_curves(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("1,2,3\n4," + "x" * 200 + ",6\n")
    with pytest.raises(DataFileError, match=r"c.csv line 2: 'x{57}\.\.\.' is not a number"):
        load_curves(tmp_path / "c.csv")


def test_one_point_curves_are_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((4, 1)))
    with pytest.raises(DataFileError, match="has 1 points per row; at least 2 are needed"):
        load_curves(tmp_path / "c.npy")


def test_too_few_rows_for_training(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((1, 5)))
    with pytest.raises(DataFileError, match="has 1 rows; at least 2 are needed"):
        load_curves(tmp_path / "c.npy", min_rows=2)


def test_zero_rows(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((0, 5)))
    with pytest.raises(DataFileError, match="has 0 rows"):
        load_curves(tmp_path / "c.npy")


def test_object_array_npy_is_never_unpickled(tmp_path):
    arr = np.empty((2, 2), dtype=object)
    np.save(tmp_path / "o.npy", arr, allow_pickle=True)
    with pytest.raises(DataFileError, match="object array .* never loads"):
        load_curves(tmp_path / "o.npy")


def test_ragged_csv(tmp_path):
    (tmp_path / "r.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(DataFileError, match="line 2 has 2 values but earlier rows have 3"):
        load_curves(tmp_path / "r.csv")


def test_non_numeric_csv(tmp_path):
    (tmp_path / "n.csv").write_text("1,2,3\n4,abc,6\n")
    with pytest.raises(DataFileError, match="line 2: 'abc' is not a number"):
        load_curves(tmp_path / "n.csv")


def test_npz_zip_bomb_is_refused_before_decompressing(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.zeros((2000, 100), np.float32))
    with zipfile.ZipFile(tmp_path / "b.npz", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("curves.npy", buf.getvalue())
    assert (tmp_path / "b.npz").stat().st_size < 10_000
    with pytest.raises(DataFileError, match="would decompress to .* over the 100000-byte cap"):
        load_curves(tmp_path / "b.npz", max_npz_bytes=100_000)


def test_npz_without_the_key(tmp_path, curves):
    np.savez(tmp_path / "c.npz", data=curves)
    with pytest.raises(DataFileError, match=r"has arrays \['data'\] but no 'curves'"):
        load_curves(tmp_path / "c.npz")


def test_npz_grid_of_wrong_length(tmp_path, curves):
    np.savez(tmp_path / "c.npz", curves=curves, grid=np.arange(3.0))
    with pytest.raises(DataFileError, match=r"grid in c.npz has shape \(3,\)"):
        load_curves(tmp_path / "c.npz")


def test_not_a_zip(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"hello world")
    with pytest.raises(DataFileError, match="not a valid .npz"):
        load_curves(tmp_path / "c.npz")


def test_as_matrix_rejects_strings_and_float64_overflow():
    with pytest.raises(InputError, match="dtype <U1; curvae needs real numbers"):
        as_matrix(np.array([["a", "b"]]), name="curves")
    with pytest.raises(InputError, match=r"curves\[0, 1\] = 1e\+300 overflows float32"):
        as_matrix(np.array([[1.0, 1e300]]), name="curves")


def test_a_folder_is_not_a_curve_file(tmp_path):
    with pytest.raises(DataFileError, match="is not a file; pass a .npy, .npz or .csv file"):
        load_curves(tmp_path)


def test_object_array_npz_is_never_unpickled(tmp_path):
    np.savez(tmp_path / "o.npz", curves=np.empty((2, 2), dtype=object))
    with pytest.raises(DataFileError, match="object array .* never loads; save plain numeric arrays with np.savez"):
        load_curves(tmp_path / "o.npz")
