"""The CLI end to end through click's runner, with exact file sets and shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from curvae.cli import main
from curvae.families import get_family
from curvae.runtime import CurveModel

RUN_FILES = {"config.json", "weights.pt", "checkpoint.pt", "history.json", "summary.json"}


def invoke(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for frag in fragments:
        assert frag in lines[0], lines[0]


@pytest.mark.slow
def test_train_export_encode_decode_sample_fit(tmp_path, beta_targets):
    run, model = tmp_path / "run", tmp_path / "model"
    res = invoke("train", "--family", "normal", "--n-curves", "300", "--epochs", "3", "--hidden", "32",
                 "--latent-dim", "3", "--seed", "1", "--out", run)
    assert "held-out SSE" in res.output
    assert {p.name for p in run.iterdir()} == RUN_FILES
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert {"recon", "kl", "val_recon", "val_rmse", "lr"} <= set(history[0])

    res = invoke("export", run, "--out", model)
    assert "parity passed on batches [1, 2, 7, 1000]" in res.output
    assert {p.name for p in model.iterdir()} == {"manifest.json", "encoder.onnx", "decoder.onnx", "params.onnx",
                                                 "emulator.onnx"}

    res = invoke("check", model, "--run", run)
    assert "sha256, opsets and run ids OK" in res.output and "onnx.checker full check passed" in res.output
    assert "parity OK" in res.output and "CPUExecutionProvider" in res.output

    res = invoke("info", model, "--json")
    info = json.loads(res.output)
    assert info["family"] == "normal" and info["latent_dim"] == 3 and info["n_points"] == 100
    assert info["running_on"]["decoder"] in info["available_providers"]

    from curvae.families import get_family

    curves, _ = get_family("normal").sample(9, seed=4)
    np.savetxt(tmp_path / "curves.csv", curves, delimiter=",")
    invoke("encode", model, tmp_path / "curves.csv", "--out", tmp_path / "codes.npy")
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (9, 3) and codes.dtype == np.float32

    invoke("encode", model, tmp_path / "curves.csv", "--out", tmp_path / "z1.npy", "--sample", "--seed", "7")
    invoke("encode", model, tmp_path / "curves.csv", "--out", tmp_path / "z2.npy", "--sample", "--seed", "7")
    np.testing.assert_array_equal(np.load(tmp_path / "z1.npy"), np.load(tmp_path / "z2.npy"))

    invoke("decode", model, tmp_path / "codes.npy", "--out", tmp_path / "dec.npy")
    assert np.load(tmp_path / "dec.npy").shape == (9, 100)

    invoke("sample", model, "-n", "5", "--seed", "2", "--out", tmp_path / "s.npy")
    assert np.load(tmp_path / "s.npy").shape == (5, 100)

    res = invoke("fit", model, tmp_path / "curves.csv", "--out", tmp_path / "fit.npz")
    assert "9 fits" in res.output
    with np.load(tmp_path / "fit.npz", allow_pickle=False) as f:
        assert {"z", "residual", "success", "x_hat", "nfev"} <= set(f.files)
        assert f["z"].shape == (9, 3) and f["x_hat"].shape == (9, 100) and f["residual"].shape == (9,)
        assert f["success"].dtype == bool

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["run", "model", "curves.csv", "codes.npy", "z1.npy", "z2.npy", "dec.npy", "s.npy", "fit.npz"])


def test_user_curves_train_a_custom_model(tmp_path):
    x = np.linspace(0, 1, 20)
    rng = np.random.default_rng(0)
    curves = np.sin(rng.uniform(1, 3, (200, 1)) * x + rng.uniform(0, 1, (200, 1)))
    np.savez(tmp_path / "mine.npz", curves=curves, grid=x)
    invoke("train", "--data", tmp_path / "mine.npz", "--epochs", "2", "--hidden", "16", "--out", tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["family"]["name"] == "custom" and summary["n_train"] + summary["n_val"] == 200
    np.testing.assert_allclose(summary["grid"], x)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["n_points"] == 20


def test_bad_inputs_give_one_line_errors(tmp_path, bundle_dir):
    np.save(tmp_path / "short.npy", np.zeros((3, 50), np.float32))
    one_line_error(invoke("encode", bundle_dir, tmp_path / "short.npy", "--out", tmp_path / "c.npy", ok=False),
                   "50 points per row; this model needs 100")
    bad = np.zeros((3, 100), np.float32)
    bad[2, 7] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    one_line_error(invoke("encode", bundle_dir, tmp_path / "nan.npy", "--out", tmp_path / "c.npy", ok=False),
                   "[2, 7] = nan is not finite", "give them to `fit`, which takes NaN as unobserved")
    bad[2, 7] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    one_line_error(invoke("fit", bundle_dir, tmp_path / "inf.npy", "--out", tmp_path / "f.npz", ok=False),
                   "[2, 7] = inf is not finite")
    one_line_error(invoke("info", tmp_path / "nowhere", ok=False), "is not a folder")
    one_line_error(invoke("sample", bundle_dir, "-n", "2", "--out", tmp_path / "s.txt", ok=False), "must end in .npy")
    one_line_error(invoke("encode", bundle_dir, tmp_path / "missing.npy", "--out", tmp_path / "c.npy", ok=False),
                   "does not exist")
    one_line_error(invoke("info", bundle_dir, "--providers", "banana", ok=False),
                   "'banana' is not available", "CPUExecutionProvider")
    one_line_error(invoke("train", "--family", "weibull", "--out", tmp_path / "r", ok=False), "not built in")
    one_line_error(invoke("train", "--epochs", "0", "--out", tmp_path / "r", ok=False), "epochs=0")
    assert not (tmp_path / "r").exists() and not (tmp_path / "c.npy").exists()


def test_outputs_are_not_overwritten_without_force(tmp_path, bundle_dir):
    out = tmp_path / "s.npy"
    invoke("sample", bundle_dir, "-n", "2", "--seed", "0", "--out", out)
    first = out.read_bytes()
    one_line_error(invoke("sample", bundle_dir, "-n", "3", "--out", out, ok=False), "already exists", "--force")
    assert out.read_bytes() == first
    invoke("sample", bundle_dir, "-n", "3", "--out", out, "--force")
    assert np.load(out).shape == (3, 100)


def test_training_is_reproducible_on_cpu(tmp_path):
    args = ["train", "--n-curves", "200", "--epochs", "3", "--hidden", "16", "--device", "cpu", "--seed", "5"]
    invoke(*args, "--out", tmp_path / "a")
    invoke(*args, "--out", tmp_path / "b")
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [(h["recon"], h["kl"], h["val_recon"]) for h in ha] == [(h["recon"], h["kl"], h["val_recon"]) for h in hb]
    assert (tmp_path / "a" / "weights.pt").read_bytes() == (tmp_path / "b" / "weights.pt").read_bytes()


def test_every_command_has_help():
    from curvae.cli import main

    assert set(main.commands) == {"train", "export", "check", "info", "encode", "decode", "sample", "fit", "report",
                                  "explore", "demo", "emulate"}
    for cmd in main.commands:
        out = invoke(cmd, "--help").output
        assert out.startswith(f"Usage: main {cmd} ") or out.startswith(f"Usage: curvae {cmd} "), out[:80]


@pytest.mark.slow
def test_demo_writes_its_outputs_and_summary(tmp_path):
    out = tmp_path / "demo"
    res = invoke("demo", "--out", out, "--epochs", "3", "--n-targets", "40")
    for key in ("training", "parity max abs", "residual median", "p90"):
        assert key in res.output
    assert {p.name for p in out.iterdir()} == {"run", "model", "targets.npy", "samples.npy", "fit.npz", "summary.json",
                                               "report"}
    assert (out / "report" / "index.html").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fit"]["n_targets"] == 40 and summary["parity"]["max_abs"] <= 1e-5
    assert "params     alpha, beta of each target from its fit" in res.output and set(summary["params"]) == {"alpha",
                                                                                                            "beta"}
    with np.load(out / "fit.npz", allow_pickle=False) as f:  # the parameters, against the targets' true ones
        rel = np.abs(f["theta"] - f["theta_true"]) / f["theta_true"]
        np.testing.assert_allclose(np.median(rel, axis=0), [summary["params"]["alpha"], summary["params"]["beta"]])
        assert list(f["param_names"]) == ["alpha", "beta"]
    one_line_error(invoke("demo", "--out", out, "--epochs", "1", ok=False), "already exists")


def test_fit_writes_uncertainty_and_the_flag_and_takes_sigma(trained_bundle, tmp_path):
    from curvae.families import get_family

    curves, _ = get_family("beta").sample(20, seed=9)
    targets = np.concatenate([curves, np.full((1, 100), -3.0, np.float32)])  # 20 in family, 1 foreign
    np.save(tmp_path / "t.npy", targets)
    res = invoke("fit", trained_bundle, tmp_path / "t.npy", "--out", tmp_path / "fit.npz", "--sigma", "0.05")
    assert "wrote" in res.output and "21 fits" in res.output and "out of family" in res.output
    with np.load(tmp_path / "fit.npz", allow_pickle=False) as f:
        assert f["cov"].shape == (21, 2, 2) and f["band_hi"].shape == (21, 100)
        assert f["ood"][-1] == 1 and np.isfinite(f["chi2"]).all() and np.allclose(f["sigma"], 0.05)
        assert f["ood_reason"][-1].startswith("χ² per point ")  # σ given: the flag knows the noise
    np.savetxt(tmp_path / "sigma.csv", np.full(100, 0.05), delimiter=",")
    invoke("fit", trained_bundle, tmp_path / "t.npy", "--out", tmp_path / "fit2.npz", "--sigma-file",
           tmp_path / "sigma.csv")
    with np.load(tmp_path / "fit2.npz", allow_pickle=False) as f, np.load(tmp_path / "fit.npz") as g:
        np.testing.assert_allclose(f["z_std"], g["z_std"], rtol=1e-6)
    one_line_error(invoke("fit", trained_bundle, tmp_path / "t.npy", "--out", tmp_path / "x.npz", "--sigma", "-1",
                          ok=False), "sigma[0] = -1.0 must be a positive finite noise level")
    one_line_error(invoke("fit", trained_bundle, tmp_path / "t.npy", "--out", tmp_path / "x.npz", "--sigma", "0.1",
                          "--sigma-file", tmp_path / "sigma.csv", ok=False), "--sigma and --sigma-file were both")
    one_line_error(invoke("fit", trained_bundle, tmp_path / "t.npy", "--out", tmp_path / "x.npz",
                          "--ood-quantile", "1.5", ok=False), "ood_quantile=1.5 must be in (0, 1)")
    res = invoke("fit", trained_bundle, tmp_path / "t.npy", "--out", tmp_path / "bare.npz", "--no-uncertainty")
    with np.load(tmp_path / "bare.npz", allow_pickle=False) as f:
        assert "cov" not in f.files and "ood" not in f.files


def test_explore_refuses_what_it_cannot_serve(tmp_path):
    one_line_error(invoke("explore", tmp_path, "--port", "0", ok=False), "has no manifest.json")
    golden = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "golden"
    one_line_error(invoke("explore", golden, "--web", tmp_path, ok=False), "the explorer page is not in")
    one_line_error(invoke("explore", golden, "--host", "0.0.0.0", "--port", "0", ok=False),
                   "--host 0.0.0.0 serves the explorer beyond this machine", "--allow-host NAME")


def test_fit_with_mcmc_writes_posterior_samples(tmp_path):
    pytest.importorskip("emcee")
    golden = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "golden"
    from curvae.runtime import CurveModel

    np.save(tmp_path / "t.npy", CurveModel.load(golden).sample(2, seed=4))
    invoke("fit", golden, tmp_path / "t.npy", "--out", tmp_path / "f.npz", "--method", "mcmc", "--seed", "3")
    with np.load(tmp_path / "f.npz", allow_pickle=False) as f:
        assert f["samples"].shape == (2, 1600, 2) and np.isfinite(f["samples"]).all()
        np.testing.assert_allclose(f["z_std"], f["samples"].std(axis=1, ddof=1), rtol=1e-4)


def test_fit_long_format_csv_with_ragged_grids_keeps_first_appearance_order(trained_bundle, tmp_path):
    from curvae.families import get_family

    fam = get_family("beta")
    theta = np.array([[2.0, 3.0], [0.8, 1.5], [4.0, 4.5]])
    rows = []
    g = np.random.default_rng(0)
    for key, th, k in (("zeta", theta[0], 23), ("alpha", theta[1], 41), ("m7", theta[2], 12)):
        x = np.sort(g.uniform(0.05, 0.95, k))
        rows += [(key, xv, yv) for xv, yv in zip(x, fam.logpdf(x, th[None])[0])]
    order = g.permutation(len(rows))
    first = []
    for i in order:  # ids in any order: the output follows first appearance
        if rows[i][0] not in first:
            first.append(rows[i][0])
    (tmp_path / "long.csv").write_text("y,id,x\n" + "".join(f"{rows[i][2]},{rows[i][0]},{rows[i][1]}\n"
                                                            for i in order))
    res = invoke("fit", trained_bundle, tmp_path / "long.csv", "--out", tmp_path / "f.npz")
    assert "read" in res.output and "long format" in res.output and "3 fits" in res.output
    with np.load(tmp_path / "f.npz", allow_pickle=False) as f:
        assert f["ids"].tolist() == first
        n_obs = dict(zip(f["ids"].tolist(), f["n_obs"].tolist()))
        assert n_obs == {"zeta": 23, "alpha": 41, "m7": 12}
        assert f["x_obs"].shape == (3, 41) and f["x_hat_obs"].shape == (3, 41)
        assert np.isnan(f["x_hat_obs"][f["ids"].tolist().index("m7"), 12:]).all()
        assert f["success"].all() and (f["rms"] < 0.1).all()
    # the same curves through --grid and an .npz 'grid', with --clip-range
    x = np.linspace(0.0, 1.0, 30)  # the ends fall outside [0.01, 0.99]
    y = fam.logpdf(np.clip(x, 1e-3, 1 - 1e-3), theta).astype(np.float32)
    np.save(tmp_path / "y.npy", y)
    np.savetxt(tmp_path / "x.csv", x[None], delimiter=",")
    one_line_error(invoke("fit", trained_bundle, tmp_path / "y.npy", "--grid", tmp_path / "x.csv", "--out",
                          tmp_path / "g.npz", ok=False), "x = 0.0 is outside the model's grid")
    res = invoke("fit", trained_bundle, tmp_path / "y.npy", "--grid", tmp_path / "x.csv", "--clip-range",
                 "--out", tmp_path / "g.npz")
    assert "--clip-range dropped 6 points" in res.output
    np.savez(tmp_path / "own.npz", curves=y, grid=x)
    invoke("fit", trained_bundle, tmp_path / "own.npz", "--clip-range", "--out", tmp_path / "h.npz")
    with np.load(tmp_path / "g.npz") as a, np.load(tmp_path / "h.npz") as b:
        np.testing.assert_allclose(a["z"], b["z"], atol=1e-6)
        assert (a["n_obs"] == 28).all()


def _spectra_like_csv(path, n=120, points=300, grid_row=True):
    """A file shaped like chemotools' fermentation spectra: a first row of increasing wavenumbers, then spectra."""
    g = np.random.default_rng(4)
    wn = np.linspace(428.0, 1833.0, points)
    bands = np.stack([np.exp(-0.5 * ((wn - c) / 25.0) ** 2) for c in (600, 1050, 1400, 1650)])
    spectra = g.uniform(-1500, 2400, (n, 4)) @ bands + g.normal(0, 5, (n, points))
    rows = np.vstack([wn, spectra]) if grid_row else spectra
    np.savetxt(path, rows, delimiter=",", fmt="%.6g")
    return wn, spectra


def test_a_csv_with_its_grid_as_first_row_trains_and_exports_with_no_flags(tmp_path):
    wn, spectra = _spectra_like_csv(tmp_path / "spectra.csv")
    res = invoke("train", "--data", tmp_path / "spectra.csv", "--out", tmp_path / "run", "--steps", "300")
    assert "read the first row of" in res.output and "as the grid" in res.output
    assert "baseline: held-out RMSE model" in res.output
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["n_train"] + s["n_val"] == len(spectra)  # the grid row is no curve
    np.testing.assert_allclose(s["grid"], wn, rtol=1e-5)  # as written, to 6 digits
    res = invoke("export", tmp_path / "run", "--out", tmp_path / "model")  # default tolerances
    assert "baseline: held-out fit residual median" in res.output
    info = json.loads(invoke("info", tmp_path / "model", "--json").output)
    assert info["baseline"]["method"] == "pca" and "verdict" in info["baseline"]
    np.testing.assert_allclose(CurveModel.load(tmp_path / "model").grid, wn, rtol=1e-5)
    # the same file, first row read as a curve on request
    invoke("train", "--data", tmp_path / "spectra.csv", "--out", tmp_path / "run2", "--steps", "20",
           "--header", "none")
    s2 = json.loads((tmp_path / "run2" / "summary.json").read_text())
    assert s2["n_train"] + s2["n_val"] == len(spectra) + 1


def test_header_modes_and_their_errors(tmp_path):
    _spectra_like_csv(tmp_path / "plain.csv", grid_row=False)
    res = invoke("train", "--data", tmp_path / "plain.csv", "--out", tmp_path / "r", "--steps", "10")
    assert "as the grid" not in res.output  # spectra rows are not increasing: no grid guessed
    one_line_error(invoke("train", "--data", tmp_path / "plain.csv", "--out", tmp_path / "r2", "--header", "grid",
                          ok=False), "is not a strictly increasing grid", "--header none")


def test_increasing_curves_are_not_mistaken_for_a_grid(tmp_path):
    from curvae.io.curves import load_curves

    curves, _ = get_family("logistic").sample(50, seed=0)  # every curve increases
    np.savetxt(tmp_path / "l.csv", curves, delimiter=",")
    f = load_curves(tmp_path / "l.csv")
    assert f.grid is None and len(f.curves) == 50


def test_a_curve_far_outside_the_others_is_named_by_its_row(tmp_path):
    _, spectra = _spectra_like_csv(tmp_path / "s.csv", grid_row=False)
    spectra[17] *= 400.0
    np.savetxt(tmp_path / "s.csv", spectra, delimiter=",", fmt="%.6g")
    res = invoke("train", "--data", tmp_path / "s.csv", "--out", tmp_path / "r", "--steps", "20", ok=None)
    assert "row 17 (" in res.output and "far outside the others" in res.output


def test_the_seed_preset_trains_the_worked_example(tmp_path):
    invoke("train", "--preset", "seed", "--epochs", "2", "--n-curves", "200", "--out", tmp_path / "run")
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["model"]["linear_path"] is False and cfg["model"]["scaling"] == "per-point"
    assert cfg["train"]["loss"] == "sse" and cfg["train"]["epochs"] == 2 and cfg["train"]["steps"] is None


def test_fit_targets_with_their_grid_as_first_row(trained_bundle, tmp_path):
    model = CurveModel.load(trained_bundle)
    targets, _ = get_family("beta").sample(5, seed=3)
    np.savetxt(tmp_path / "t.csv", np.vstack([model.grid, targets]), delimiter=",")
    invoke("fit", trained_bundle, tmp_path / "t.csv", "--out", tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz", allow_pickle=False) as f:
        assert f["z"].shape == (5, 2)  # the grid row is no target
    invoke("fit", trained_bundle, tmp_path / "t.csv", "--out", tmp_path / "g.npz", "--header", "none")
    with np.load(tmp_path / "g.npz", allow_pickle=False) as f:
        assert f["z"].shape == (6, 2)


def test_a_bundle_of_user_data_keeps_hashed_held_out_curves_for_its_report(tmp_path):
    import shutil

    from curvae.runtime.bundle.format import read_manifest

    pytest.importorskip("matplotlib")
    _spectra_like_csv(tmp_path / "s.csv")
    invoke("train", "--data", tmp_path / "s.csv", "--out", tmp_path / "run", "--steps", "200")
    invoke("export", tmp_path / "run", "--out", tmp_path / "model")
    m = read_manifest(tmp_path / "model")
    assert m.held_out is not None and m.held_out.array().shape == (12, 300)  # the run's 10% held-out split
    invoke("report", tmp_path / "model", "--out", tmp_path / "rep")
    numbers = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert numbers["fit"]["targets"] == "held-out" and numbers["fit"]["n_targets"] == 12
    invoke("export", tmp_path / "run", "--out", tmp_path / "private", "--held-out", "0")
    assert read_manifest(tmp_path / "private").held_out is None
    shutil.copytree(tmp_path / "model", tmp_path / "altered")
    raw = json.loads((tmp_path / "altered" / "manifest.json").read_text())
    raw["held_out"]["curves"][0][0] += 1.0
    (tmp_path / "altered" / "manifest.json").write_text(json.dumps(raw))
    one_line_error(invoke("info", tmp_path / "altered", ok=False), "do not match their sha256")


def test_too_few_curves_is_named_not_blamed_on_the_learning_rate(tmp_path):
    import warnings

    np.save(tmp_path / "two.npy", np.random.default_rng(0).normal(size=(2, 50)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torch warning reaches the user
        res = invoke("train", "--data", tmp_path / "two.npy", "--out", tmp_path / "r", ok=False)
    one_line_error(res, "2 curves are too few to train on", "give at least 10 curves")
    assert not (tmp_path / "r").exists()


def test_python_dash_m_curvae_is_the_cli():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "curvae", "--help"], capture_output=True, text=True, check=True)
    assert "Usage: python -m curvae" in out.stdout and "train" in out.stdout
