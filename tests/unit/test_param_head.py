"""The parameter head as a user meets it: data files with params, bundles with and without a head, damaged heads."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from curvae.cli import main
from curvae.core.errors import BundleError, DataFileError, InputError
from curvae.families import get_family
from curvae.io.curves import load_curves
from curvae.runtime import CurveModel

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"  # a format-1.0 bundle: no head


def _curves(n=40):
    return get_family("peak").sample(n, seed=1)


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("params, names, fragment", [
    (np.zeros((39, 2)), None, "params in d.npz have 39 rows but the file has 40 curves"),
    (np.full((40, 2), np.nan), None, "row 0, column 0 is nan; every parameter must be finite"),
    (np.zeros((40, 2, 2)), None, "have shape (40, 2, 2)"),
    (np.array([["a", "b"]] * 40), None, "dtype <U1; they must be a real (n_curves, k) array"),
    (np.zeros((40, 2)), np.array(["a"]), "param_names in d.npz have shape (1,)"),
    (np.zeros((40, 2)), np.array(["a", "a"]), "repeat a name"),
    (np.zeros((40, 2)), np.array([1.0, 2.0]), "they must be 2 strings"),
    (None, np.array(["a", "b"]), "has param_names but no params array"),
    (np.zeros((40, 0)), None, "have 0 columns; give 1..64 parameters"),
])
def test_bad_params_arrays_get_one_line_errors(tmp_path, params, names, fragment):
    curves, _ = _curves()
    arrays = {"curves": curves, **({"params": params} if params is not None else {}),
              **({"param_names": names} if names is not None else {})}
    path = _save(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataFileError) as err:
        load_curves(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    res = CliRunner().invoke(main, ["train", "--data", str(path), "--steps", "20", "--out", str(tmp_path / "run")])
    assert res.exit_code == 1 and "Traceback" not in res.output and fragment in res.output
    assert not (tmp_path / "run").exists()


def test_params_travel_with_the_curves_and_name_their_columns(tmp_path):
    curves, theta = _curves()
    f = load_curves(_save(tmp_path / "d.npz", curves=curves, params=theta, param_names=np.array(["c", "w"])))
    np.testing.assert_array_equal(f.params, theta)
    assert f.param_names == ("c", "w")
    f = load_curves(_save(tmp_path / "e.npz", curves=curves, params=theta[:, 0]))  # one parameter, unnamed
    assert f.params.shape == (40, 1) and f.param_names == ("theta0",)


def test_user_data_with_params_gets_a_head_named_as_the_file_says(tmp_path):
    """Curves from a file, with their parameters: the bundle's head carries the file's names, the held-out curves
    kept in the manifest keep their parameters, and `curvae fit` writes theta with param_names."""
    from curvae.training.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from curvae.training.export_run import export_run
    from curvae.training.loop import train

    curves, theta = get_family("peak").sample(600, seed=2)
    data = _save(tmp_path / "peaks.npz", curves=curves, params=theta, param_names=np.array(["centre", "width"]))
    train(RunConfig(data=DataConfig(data=str(data)), model=ModelConfig(hidden=32),
                    train=TrainConfig(steps=400, batch_size=64)), tmp_path / "run")
    export_run(tmp_path / "run", tmp_path / "model")
    model = CurveModel.load(tmp_path / "model")
    head = model.manifest.params
    assert head.names == ("centre", "width") and head.transforms == ("log", "log")
    assert len(head.held_out) == len(model.manifest.held_out.curves) == 60
    # The kept held-out parameters are those of the kept held-out curves.
    rows = [int(np.flatnonzero((curves == c).all(axis=1))[0]) for c in model.manifest.held_out.array()[:5]]
    np.testing.assert_allclose(np.asarray(head.held_out[:5]), theta[rows])
    np.save(tmp_path / "t.npy", curves[:20])
    res = CliRunner().invoke(main, ["fit", str(tmp_path / "model"), str(tmp_path / "t.npy"), "--out",
                                    str(tmp_path / "fit.npz")])
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "fit.npz", allow_pickle=False) as f:
        assert list(f["param_names"]) == ["centre", "width"] and f["theta"].shape == (20, 2)
        assert (f["theta_lo"] <= f["theta"]).all() and (f["theta"] <= f["theta_hi"]).all()


def test_a_bundle_without_a_head_loads_and_fits_as_before():
    model = CurveModel.load(GOLDEN)
    assert model.manifest.params is None and model.param_head is None
    fit = model.fit(model.sample(5, seed=0))
    assert fit.theta is None and fit.theta_std is None
    with pytest.raises(InputError, match="has no parameter head"):
        model.params(np.zeros((1, 2)))


def test_fit_returns_theta_and_params_false_skips_it(bundle_dir, beta_targets):
    model = CurveModel.load(bundle_dir)
    fit = model.fit(beta_targets[:20])
    assert fit.theta.shape == fit.theta_std.shape == fit.theta_lo.shape == (20, 2)
    assert fit.theta_cov.shape == (20, 2, 2)
    np.testing.assert_allclose(fit.theta, model.params(fit.z), rtol=1e-6)
    assert (fit.theta_lo < fit.theta).all() and (fit.theta < fit.theta_hi).all()
    assert model.fit(beta_targets[:20], params=False).theta is None
    bare = model.fit(beta_targets[:20], uncertainty=False)
    assert bare.theta.shape == (20, 2) and bare.theta_std is None
    # Chunking changes nothing.
    np.testing.assert_allclose(model.fit(beta_targets[:20], chunk_rows=7).theta_std, fit.theta_std, rtol=1e-9)


def test_a_pickled_model_carries_its_verified_head(bundle_dir):
    model = CurveModel.load(bundle_dir)
    z = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    back = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(back.params(z), model.params(z))
    state = model.__getstate__()
    state["head"] = state["head"][:-1] + bytes([state["head"][-1] ^ 1])
    with pytest.raises(BundleError, match="params.onnx bytes whose sha256 differs"):
        CurveModel.__new__(CurveModel).__setstate__(state)


def test_a_tampered_head_is_refused(bundle_copy):
    p = bundle_copy / "params.onnx"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"params.onnx has sha256 .* re-export the bundle"):
        CurveModel.load(bundle_copy)


def test_a_missing_or_renamed_head_is_refused(bundle_copy):
    (bundle_copy / "params.onnx").unlink()
    with pytest.raises(BundleError, match=r"missing \['params.onnx'\]"):
        CurveModel.load(bundle_copy)


@pytest.mark.parametrize("edit, fragment", [
    (lambda p: p.update(names=["a"]), "params.transforms has 2 values for 1 parameters"),
    (lambda p: p.update(transforms=["log", "cube"]), "must each be one of"),
    (lambda p: p.update(error=[-1.0, 0.1]), "the errors >= 0"),
    (lambda p: p["graph"].update(file="encoder.onnx"), "repeat a name"),
    (lambda p: p["graph"].update(file="../params.onnx"), "must be a plain *.onnx file name"),
    (lambda p: p["graph"].update(outputs=["x_hat"]), "differs from the format's"),
])
def test_a_manifest_with_a_bad_head_record_is_refused(bundle_copy, edit, fragment):
    path = bundle_copy / "manifest.json"
    raw = json.loads(path.read_text())
    edit(raw["params"])
    path.write_text(json.dumps(raw))
    with pytest.raises(BundleError) as err:
        CurveModel.load(bundle_copy)
    assert fragment in str(err.value) and "re-export the bundle" in str(err.value)


def test_export_no_params_leaves_the_head_out(run_dir, tmp_path):
    res = CliRunner().invoke(main, ["export", str(run_dir), "--out", str(tmp_path / "m"), "--no-params"])
    assert res.exit_code == 0, res.output
    assert "params.onnx" not in {p.name for p in (tmp_path / "m").iterdir()}
    assert CurveModel.load(tmp_path / "m").param_head is None


def test_info_lists_the_parameters(bundle_dir):
    res = CliRunner().invoke(main, ["info", str(bundle_dir)])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.strip().startswith("params:"))
    assert "alpha in [" in line and "beta in [" in line and "held-out relative error median" in line
