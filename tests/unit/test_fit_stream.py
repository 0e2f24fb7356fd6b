"""Fitting a large memory-mapped file in chunks gives the same results as one call."""

import numpy as np
import pytest

from curvae.core.errors import InputError
from curvae.io.files import fit_file
from curvae.runtime import CurveModel


def test_chunked_fit_equals_one_call_and_writes_every_key(bundle_dir, beta_targets, tmp_path):
    model = CurveModel.load(bundle_dir)
    np.save(tmp_path / "t.npy", beta_targets)
    seen = []
    summary = fit_file(model, tmp_path / "t.npy", tmp_path / "fit.npz", chunk=10,
                       progress=lambda done, total: seen.append((done, total)))
    assert seen == [(d, 64) for d in (10, 20, 30, 40, 50, 60, 64)]
    whole = model.fit(beta_targets)
    with np.load(tmp_path / "fit.npz", allow_pickle=False) as f:
        assert set(f.files) == {"z", "residual", "rms", "n_obs", "success", "nfev", "message", "x_hat", "cov", "z_std", "sigma",
                                "chi2", "band_lo", "band_hi", "ill_conditioned", "ood", "ood_threshold",
                                "ood_reason", "band_z_lo", "band_z_hi", "theta", "theta_std", "theta_lo",
                                "theta_hi", "theta_cov", "param_names"}
        np.testing.assert_allclose(f["theta"], whole.theta, rtol=1e-4)
        np.testing.assert_allclose(f["theta_std"], whole.theta_std, rtol=1e-3)
        assert list(f["param_names"]) == ["alpha", "beta"] and f["theta_cov"].shape == (64, 2, 2)
        np.testing.assert_allclose(f["z"], whole.z, atol=1e-5)
        np.testing.assert_allclose(f["residual"], whole.residual, rtol=1e-5)
        assert f["x_hat"].shape == (64, 100) and f["success"].dtype == bool
        np.testing.assert_allclose(f["z_std"], whole.z_std, rtol=1e-3)
        assert f["cov"].shape == (64, 2, 2) and f["band_lo"].shape == (64, 100)
        assert (f["ood"] == whole.ood.astype(np.int8)).all() and f["ood_threshold"].shape == (1,)
    fit_file(model, tmp_path / "t.npy", tmp_path / "bare.npz", chunk=10, uncertainty=False)
    with np.load(tmp_path / "bare.npz", allow_pickle=False) as f:
        assert set(f.files) == {"z", "residual", "rms", "n_obs", "success", "nfev", "message", "x_hat", "theta",
                                "param_names"}
    (tmp_path / "bare.npz").unlink()
    assert summary["n"] == 64 and summary["residual_median"] == pytest.approx(np.median(whole.residual), rel=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.npz", "t.npy"]  # no parts left behind


def test_bad_rows_deep_in_a_memmapped_file_are_named_and_nothing_is_written(bundle_dir, beta_targets, tmp_path):
    model = CurveModel.load(bundle_dir)
    bad = beta_targets.copy()
    bad[50, 3] = np.inf
    np.save(tmp_path / "t.npy", bad)
    with pytest.raises(InputError, match=r"targets\[50, 3\] = inf is not finite"):
        fit_file(model, tmp_path / "t.npy", tmp_path / "fit.npz", chunk=20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.npy"]
