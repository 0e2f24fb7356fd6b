"""curvae.sklearn.CurveVAE: scikit-learn's own checks, pipelines, grid search, pandas, pickling and bundles."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the [sklearn] extra; `make test` installs it

from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from curvae.families import get_family  # noqa: E402
from curvae.runtime import CurveModel  # noqa: E402
from curvae.sklearn import CurveVAE  # noqa: E402

#: Small enough for scikit-learn's ~50 checks to run in well under a minute on 2 cores.
SMALL = {"preset": "fast", "steps": 40, "hidden": 8, "random_state": 0}


@parametrize_with_checks([CurveVAE(**SMALL)], expected_failed_checks=lambda est: est._expected_failed_checks())
def test_scikit_learn_checks(estimator, check):
    if getattr(check, "func", check).__name__ == "check_array_api_input" and os.environ.get("SCIPY_ARRAY_API") != "1":
        _in_array_api_mode(check.keywords)  # SciPy reads the mode at import: a process of its own
        return
    check(estimator)


def _in_array_api_mode(keywords: dict) -> None:
    """Run scikit-learn's array-API input check in a process with ``SCIPY_ARRAY_API=1``; it must pass there."""
    code = ("from sklearn.utils.estimator_checks import check_array_api_input\n"
            "from curvae.sklearn import CurveVAE\n"
            f"check_array_api_input('CurveVAE', CurveVAE(**{SMALL!r}), **{keywords!r})\n"
            "print('ARRAY API CHECK OK')")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "SCIPY_ARRAY_API": "1"},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ARRAY API CHECK OK" in out.stdout, out.stdout + out.stderr


@pytest.fixture(scope="module")
def beta():
    x, theta = get_family("beta").sample(400, seed=3)
    return x, theta


@pytest.fixture(scope="module")
def fitted(beta):
    x, theta = beta
    return CurveVAE(preset="fast", steps=400, hidden=32, random_state=1).fit(x, theta)


def test_fit_transform_inverse_and_the_bundle(fitted, beta):
    x, theta = beta
    z = fitted.transform(x)
    assert z.shape == (400, 2) and z.dtype == np.float32
    np.testing.assert_array_equal(z, fitted.bundle_.encode(x))  # the runtime's own encoder, nothing else
    back = fitted.inverse_transform(z)
    b = fitted.baseline_
    assert back.shape == x.shape and float(np.median(np.linalg.norm(back - x, axis=1))) < b["pca_residual"]
    assert list(fitted.get_feature_names_out()) == ["z0", "z1"]
    assert fitted.n_features_in_ == 100
    assert b["latent_dim"] == 2 and b["model_residual"] < b["pca_residual"]
    assert fitted.bundle_.emulator is not None  # with y, the emulator by default
    fit = fitted.fit_curves(x[:20], sigma=0.05)  # fits with uncertainty and θ stay reachable
    assert fit.theta.shape == (20, 2) and np.median(np.abs(fit.theta - theta[:20]) / theta[:20]) < 0.2
    assert fitted.score(x) == pytest.approx(-np.mean(fitted.bundle_.fit(x, uncertainty=False).residual))


def test_float64_input_is_cast_once_and_float32_is_not_copied(fitted, beta, monkeypatch):
    x64 = np.ascontiguousarray(beta[0], dtype=np.float64)
    np.testing.assert_array_equal(fitted.transform(x64), fitted.transform(x64.astype(np.float32)))
    seen = []
    real = fitted.bundle_.encode
    monkeypatch.setattr(fitted.bundle_, "encode", lambda a, **kw: seen.append(a) or real(a, **kw))
    x32 = np.ascontiguousarray(beta[0], dtype=np.float32)
    fitted.transform(x32)
    assert np.shares_memory(seen[0], x32)  # the float32 input reaches the runtime as it is


def test_same_random_state_same_weights(beta):
    x = beta[0][:200]
    a = CurveVAE(**{**SMALL, "random_state": 7}).fit(x)
    b = CurveVAE(**{**SMALL, "random_state": 7}).fit(x)
    assert a.bundle_.manifest.run_id == b.bundle_.manifest.run_id
    np.testing.assert_array_equal(a.transform(x), b.transform(x))


def test_grid_search_picks_the_latent_size_by_cross_validation(beta):
    # Beta log-PDFs are exactly linear in three functions: at latent_dim=3 the fits are exact.
    search = GridSearchCV(CurveVAE(preset="fast", steps=200, hidden=16, random_state=0),
                          {"latent_dim": [1, 2, 3]}, cv=3)
    search.fit(beta[0][:300])
    assert search.best_params_ == {"latent_dim": 3}
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] < scores[1] < scores[2]


def test_pipeline_and_pandas(beta):
    pd = pytest.importorskip("pandas")
    x, theta = beta
    frame = pd.DataFrame(x, columns=[f"p{i}" for i in range(x.shape[1])])
    pipe = make_pipeline(CurveVAE(preset="fast", steps=300, hidden=16, emulator=False, random_state=0),
                         LinearRegression())
    pipe.fit(frame, theta[:, 0])
    assert pipe[0].bundle_.manifest.params is not None and pipe[0].bundle_.emulator is None  # the head only
    assert pipe.score(frame, theta[:, 0]) > 0.5  # α from the codes, linearly
    vae = pipe[0].set_output(transform="pandas")
    out = vae.transform(frame)
    assert list(out.columns) == ["z0", "z1"] and list(vae.feature_names_in_) == list(frame.columns)
    with pytest.raises(ValueError, match="feature names"):
        vae.transform(frame.rename(columns={"p0": "q0"}))
    # Numeric column names are the grid's x values.
    grid = get_family("beta").grid()
    numeric = CurveVAE(**SMALL).fit(pd.DataFrame(x[:60], columns=grid))
    np.testing.assert_allclose(numeric.bundle_.grid, grid)


def test_bad_input_gets_sklearn_errors_with_curvae_messages(fitted, beta):
    x = beta[0]
    with pytest.raises(NotFittedError):
        CurveVAE().transform(x)
    with pytest.raises(ValueError, match="100 features"):
        fitted.transform(x[:, :50])
    bad = x[:30].copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(bad)
    with pytest.raises(ValueError, match="minimum of 10 is required"):
        CurveVAE(**SMALL).fit(x[:5])
    with pytest.raises(ValueError, match=r"latent_dim=0 must be an integer in \[1, n_features=100\]"):
        CurveVAE(**{**SMALL, "latent_dim": 0}).fit(x[:40])
    with pytest.raises(ValueError, match="preset='huge' must be one of auto, fast, seed"):
        CurveVAE(**{**SMALL, "preset": "huge"}).fit(x[:40])
    with pytest.raises(ValueError, match="y has shape"):
        CurveVAE(**SMALL).fit(x[:40], np.ones(7))


def test_pickle_is_the_bundle_and_save_from_bundle_round_trip(fitted, beta, tmp_path):
    fitted.save(tmp_path / "model")
    size = sum(p.stat().st_size for p in (tmp_path / "model").iterdir())
    blob = pickle.dumps(fitted)
    assert len(blob) <= 1.2 * size
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.transform(beta[0]), fitted.transform(beta[0]))
    loaded = CurveVAE.from_bundle(tmp_path / "model")
    np.testing.assert_array_equal(loaded.transform(beta[0]), fitted.transform(beta[0]))
    assert CurveModel.load(tmp_path / "model").manifest.run_id == fitted.bundle_.manifest.run_id
    assert loaded.baseline_ == fitted.baseline_
