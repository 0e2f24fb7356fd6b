"""θ → curve: ``CurveModel.emulate``, ``curvae emulate``, their checks on θ, and fits in parameter space."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from curvae.cli import main
from curvae.core.errors import InputError
from curvae.runtime import CurveModel
from curvae.runtime.emulator import ExtrapolationWarning


@pytest.fixture(scope="module")
def model(bundle_dir) -> CurveModel:
    return CurveModel.load(bundle_dir)


def inside(model: CurveModel, n: int, seed: int = 0, margin: float = 0.05) -> np.ndarray:
    rec = model.manifest.emulator
    lo, hi = np.array(rec.low), np.array(rec.high)
    return np.random.default_rng(seed).uniform(lo + margin * (hi - lo), hi - margin * (hi - lo), (n, rec.k))


def test_the_bundle_records_its_emulator(model):
    rec = model.manifest.emulator
    assert rec is not None and rec.names == ("alpha", "beta")
    assert rec.low == (0.0, 0.0) and rec.high == (5.0, 5.0)  # the family's declared range, not the sample's
    assert rec.parity["passed"] and rec.n_held_out > 0 and rec.theta_fit is not None
    assert 0 < rec.error_median <= rec.error_p90 and rec.spread > 0
    assert (model.path / "emulator.onnx").is_file()


def test_emulate_is_the_decoder_at_the_emulated_code_in_any_chunking(model):
    theta = inside(model, 300)
    whole = model.emulate(theta)
    x, z = model.emulate(theta, codes=True, chunk_rows=7)
    assert whole.shape == (300, model.n_points) and z.shape == (300, model.latent_dim)
    scale = float(np.abs(whole).max())
    np.testing.assert_allclose(x, whole, rtol=1e-5, atol=1e-5 * scale)  # batch sizes round differently in float32
    np.testing.assert_allclose(model.decode(z), x, rtol=1e-5, atol=1e-5 * float(np.abs(x).max()))
    buf = np.empty_like(whole)
    assert model.emulate(theta, out=buf) is buf
    np.testing.assert_array_equal(buf, whole)


def test_a_parameter_outside_the_range_is_named_with_its_range(model):
    theta = inside(model, 5)
    theta[3, 1] = 7.5
    with pytest.raises(InputError) as err:
        model.emulate(theta)
    msg = str(err.value)
    assert "theta[3, 1] (beta) = 7.5" in msg and "[0, 5]" in msg and "extrapolate" in msg and "\n" not in msg
    with pytest.warns(ExtrapolationWarning, match="1 of 5 rows"):
        x = model.emulate(theta, extrapolate=True)
    assert np.isfinite(x).all()
    assert model.emulator.outside(theta).tolist() == [False, False, False, True, False]


@pytest.mark.parametrize("bad, needle", [
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.ones((2, 3)), "3 parameters (alpha, beta)"),
    (np.ones(2), "2-D"),
])
def test_bad_shapes_and_nan_get_one_line_errors(model, bad, needle):
    with pytest.raises(InputError) as err:
        model.emulate(bad)
    assert "\n" not in str(err.value)
    assert needle.lower() in str(err.value).lower() or "parameters" in str(err.value)


def test_cli_emulate_writes_what_the_library_returns(model, tmp_path):
    theta = inside(model, 50, seed=3)
    np.save(tmp_path / "theta.npy", theta)
    np.savetxt(tmp_path / "theta.csv", theta, delimiter=",")
    runner = CliRunner()
    for src, out in (("theta.npy", "curves.npy"), ("theta.csv", "curves2.npy")):
        res = runner.invoke(main, ["emulate", str(model.path), str(tmp_path / src), "--out", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
        np.testing.assert_allclose(np.load(tmp_path / out), model.emulate(theta), rtol=1e-6, atol=1e-6)


def test_cli_emulate_refuses_out_of_range_and_flags_it_with_extrapolate(model, tmp_path):
    theta = inside(model, 20, seed=4)
    theta[11, 0] = -1.0
    np.save(tmp_path / "theta.npy", theta)
    runner = CliRunner()
    res = runner.invoke(main, ["emulate", str(model.path), str(tmp_path / "theta.npy"), "--out",
                               str(tmp_path / "c.npz")])
    assert res.exit_code != 0 and "theta[11, 0] (alpha) = -1" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "c.npz").exists()
    res = runner.invoke(main, ["emulate", str(model.path), str(tmp_path / "theta.npy"), "--out",
                               str(tmp_path / "c.npz"), "--extrapolate"])
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        assert f["outside"].tolist() == [i == 11 for i in range(20)] and f["curves"].shape == (20, model.n_points)
    assert "1 row outside the training range" in res.output


def test_the_emulator_travels_with_pickles_and_saves(model, tmp_path):
    theta = inside(model, 10)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.emulate(theta), model.emulate(theta))
    model.save(tmp_path / "saved")
    np.testing.assert_array_equal(CurveModel.load(tmp_path / "saved").emulate(theta), model.emulate(theta))


def test_theta_fits_recover_the_parameters_of_emulated_curves_with_missing_points(model):
    theta = inside(model, 40, seed=5, margin=0.1)
    x = model.emulate(theta).astype(np.float64)
    x[np.random.default_rng(6).random(x.shape) < 0.3] = np.nan  # 30% of the points unobserved
    fit = model.fit(x, space="theta")
    assert fit.theta.shape == (40, 2) and fit.success.mean() >= 0.95
    assert np.median(np.abs(fit.theta - theta) / theta) < 0.01
    assert fit.theta_lo.shape == (40, 2) and (fit.theta_lo <= fit.theta).all() and (fit.theta <= fit.theta_hi).all()
    assert fit.cov is None and fit.z.shape == (40, model.latent_dim)
    lo, hi = np.array(model.manifest.emulator.low), np.array(model.manifest.emulator.high)
    assert ((fit.theta >= lo - 1e-6) & (fit.theta <= hi + 1e-6)).all()  # the fit stays in the training range


def test_theta_fits_refuse_options_of_latent_fits(model, beta_targets):
    for kw in ({"bound": 2.0}, {"prior_weight": 1.0}):
        with pytest.raises(InputError, match="uniform prior"):
            model.fit(beta_targets[:3], space="theta", **kw)
    with pytest.raises(InputError, match="space='w'"):
        model.fit(beta_targets[:3], space="w")


def test_theta_mcmc_samples_stay_in_the_range(model):
    pytest.importorskip("emcee")
    theta = inside(model, 2, seed=8, margin=0.2)
    x = model.emulate(theta) + np.random.default_rng(9).normal(0, 0.05, (2, model.n_points)).astype(np.float32)
    fit = model.fit(x, space="theta", method="mcmc", sigma=0.05, seed=1)
    lo, hi = np.array(model.manifest.emulator.low), np.array(model.manifest.emulator.high)
    assert fit.samples.shape[0] == 2 and fit.samples.shape[2] == 2
    assert ((fit.samples >= lo - 1e-5) & (fit.samples <= hi + 1e-5)).all()
    assert ((fit.theta_lo <= theta) & (theta <= fit.theta_hi)).all()


def test_cli_fit_in_theta_space(model, tmp_path):
    theta = inside(model, 8, seed=10)
    np.save(tmp_path / "t.npy", model.emulate(theta))
    res = CliRunner().invoke(main, ["fit", str(model.path), str(tmp_path / "t.npy"), "--out", str(tmp_path / "f.npz"),
                                    "--space", "theta"])
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "f.npz", allow_pickle=False) as f:
        assert "cov" not in f.files and f["theta"].shape == (8, 2) and list(f["param_names"]) == ["alpha", "beta"]
        assert np.median(np.abs(f["theta"] - theta) / theta) < 0.01


def test_a_bundle_without_an_emulator_says_so(run_dir, tmp_path):
    res = CliRunner().invoke(main, ["export", str(run_dir), "--out", str(tmp_path / "m"), "--no-params"])
    assert res.exit_code == 0, res.output
    bare = CurveModel.load(tmp_path / "m")
    assert bare.manifest.emulator is None and not (tmp_path / "m" / "emulator.onnx").exists()
    with pytest.raises(InputError, match="has no emulator"):
        bare.emulate(np.ones((1, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bare.fit(np.asarray(bare.sample(2, seed=0)), uncertainty=False).theta is None


def test_no_emulator_keeps_the_head_and_leaves_the_emulator_out(run_dir, tmp_path):
    res = CliRunner().invoke(main, ["export", str(run_dir), "--out", str(tmp_path / "m"), "--no-emulator"])
    assert res.exit_code == 0, res.output
    assert "parameters (params.onnx)" in res.output and "emulator (emulator.onnx)" not in res.output
    model = CurveModel.load(tmp_path / "m")
    assert model.manifest.emulator is None and not (tmp_path / "m" / "emulator.onnx").exists()
    assert model.manifest.params is not None and (tmp_path / "m" / "params.onnx").is_file()
    with pytest.raises(InputError, match="has no emulator.*--no-emulator"):
        model.emulate(np.ones((1, 2)))
    with pytest.raises(InputError, match="has no emulator"):
        model.fit(np.asarray(model.sample(2, seed=0)), space="theta")
    assert model.fit(np.asarray(model.sample(2, seed=0)), uncertainty=False).theta.shape == (2, 2)


def test_codes_and_parameters_csvs_keep_a_numeric_first_row(model, tmp_path):
    rows = np.array([[0.5, 1.5], [2.0, 1.0], [3.0, 4.0]])  # an increasing first row, which curves would read as a grid
    np.savetxt(tmp_path / "rows.csv", rows, delimiter=",", header="a,b", comments="")
    runner = CliRunner()
    for cmd, out in (("emulate", "e.npy"), ("decode", "d.npy")):
        res = runner.invoke(main, [cmd, str(model.path), str(tmp_path / "rows.csv"), "--out", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
        assert np.load(tmp_path / out).shape == (3, model.n_points)


def test_a_tampered_or_missing_emulator_is_refused(bundle_copy):
    from curvae.core.errors import BundleError

    path = bundle_copy / "emulator.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="emulator.onnx has sha256"):
        CurveModel.load(bundle_copy)
    path.unlink()
    with pytest.raises(BundleError, match="emulator.onnx"):
        CurveModel.load(bundle_copy)


def test_theta_fits_take_curves_on_their_own_grid_and_flag_foreign_curves(model):
    theta = inside(model, 20, seed=12, margin=0.1)
    x_own = np.linspace(0.05, 0.95, 37)
    dense = model.emulate(theta).astype(np.float64)
    y = np.stack([np.interp(x_own, model.grid, row) for row in dense])
    fit = model.fit(y, grid=x_own, space="theta")
    assert fit.x_hat_obs.shape == (20, 37) and np.median(np.abs(fit.theta - theta) / theta) < 0.02
    scale = float(np.std(dense))
    sines = scale * np.sin(2 * np.pi * 3 * model.grid)[None] * np.ones((5, 1))
    foreign = model.fit(sines.astype(np.float32), space="theta")
    assert foreign.ood is not None and foreign.ood.all() and not fit.ood.any()


def test_a_parameter_file_of_the_wrong_width_or_with_nan_is_named_as_parameters(model, tmp_path):
    np.save(tmp_path / "wide.npy", np.ones((4, 3)))
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    runner = CliRunner()
    res = runner.invoke(main, ["emulate", str(model.path), str(tmp_path / "wide.npy"), "--out", str(tmp_path / "o.npy")])
    assert res.exit_code == 1 and "parameters in wide.npy has 3 values per row; this model needs 2" in res.output
    res = runner.invoke(main, ["emulate", str(model.path), str(tmp_path / "nan.npy"), "--out", str(tmp_path / "o.npy")])
    assert res.exit_code == 1 and "theta[0, 1] = nan is not finite" in res.output and "`fit`" not in res.output
    assert not (tmp_path / "o.npy").exists()
