"""curvae as a scikit-learn transformer: :class:`CurveVAE` drops in where ``PCA(n_components=d)`` stands.

It is a thin adapter over the same code paths as the CLI (STYLE §14): ``fit`` trains with the recipe
(:func:`curvae.recipe.capacity.train_searched`, or one given network), exports with the parity gate
(:func:`curvae.training.export_run.export_run`) and keeps the bundle's runtime model; ``transform``,
``inverse_transform`` and ``score`` delegate to :class:`curvae.runtime.CurveModel`. scikit-learn is the
``[sklearn]`` extra, and nothing else in curvae imports it.

Example
-------
>>> from sklearn.pipeline import make_pipeline
>>> from curvae.sklearn import CurveVAE
>>> pipe = make_pipeline(CurveVAE(latent_dim=2, random_state=0), LinearRegression())   # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from curvae.core.errors import InputError
from curvae.runtime import CurveModel
from curvae.runtime.fitting.engine import FitResult

#: Fewest curves ``fit`` accepts: the trainer keeps a held-out share (at least one curve) and needs 8 besides.
MIN_SAMPLES = 10


class CurveVAE(TransformerMixin, BaseEstimator):
    """A VAE of curves as a scikit-learn transformer: rows are curves, columns are grid points.

    ``fit`` trains (torch, the ``[train]`` extra) and exports an ONNX bundle checked against torch;
    ``transform`` returns the posterior means μ, like PCA's scores, and ``inverse_transform`` decodes
    codes back to curves. A fitted estimator needs only the runtime (numpy, scipy, onnxruntime): it pickles
    as its verified graph bytes, and :meth:`from_bundle` loads a bundle written by ``curvae export`` or
    :meth:`save`.

    Parameters
    ----------
    latent_dim : int, default=2
        Size of the code, as ``PCA``'s ``n_components``.
    preset : {"auto", "fast", "seed"}, default="auto"
        ``"auto"`` chooses the network by the capacity search on the held-out split within
        ``budget_seconds`` (docs/training-recipe.md); ``"fast"`` trains one depth-1 ReLU network;
        ``"seed"`` the worked example's recipe. ``hidden``, ``depth`` or ``activation`` fix the network.
    budget_seconds : float, default=60.0
        Seconds the capacity search may spend training.
    steps : int, optional
        Optimiser steps per network (12,000 when None).
    batch_size, hidden, depth : int, optional
        Curves per step, hidden width and depth; None leaves them to the recipe.
    activation : {"relu", "silu", "tanh", "elu"}, optional
        Hidden-layer activation; None leaves it to the recipe.
    val_fraction : float, default=0.1
        Held-out share of the training curves (model selection and the parity of the fit residuals).
    emulator : bool, default=True
        With ``y`` (the curves' parameters), also train and ship the emulator (θ → curve, ``bundle_.emulate``)
        beside the parameter head. False keeps the head only and saves the emulator's training, about 10 s per
        fit on 2,000 curves (a grid search fits many times).
    random_state : int, optional
        Seeds the split, the weights and the noise: the same value gives the same weights on CPU. None draws
        a seed.

    Attributes
    ----------
    bundle_ : CurveModel
        The exported bundle's runtime model (``bundle_.fit`` fits new targets with uncertainty and θ).
    baseline_ : dict or None
        PCA of the same size against the model, on the held-out curves: ``{"latent_dim", "model_residual",
        "pca_residual", "pca_components_to_match"}``.
    n_features_in_ : int
        Grid points per curve.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of a DataFrame ``X`` whose names are all strings.
    seed_ : int
        The training seed used (``random_state`` or the one drawn).

    Examples
    --------
    >>> from curvae.families import get_family
    >>> X, theta = get_family("beta").sample(2000, seed=0)
    >>> vae = CurveVAE(latent_dim=2, preset="fast", steps=3000, random_state=0).fit(X)   # doctest: +SKIP
    >>> vae.transform(X[:5]).shape                                                       # doctest: +SKIP
    (5, 2)
    """

    def __init__(self, latent_dim: int = 2, *, preset: Literal["auto", "fast", "seed"] = "auto",
                 budget_seconds: float = 60.0, steps: int | None = None, batch_size: int | None = None,
                 hidden: int | None = None, depth: int | None = None, activation: str | None = None,
                 val_fraction: float = 0.1, emulator: bool = True, random_state: int | None = None) -> None:
        self.latent_dim = latent_dim
        self.preset = preset
        self.budget_seconds = budget_seconds
        self.steps = steps
        self.batch_size = batch_size
        self.hidden = hidden
        self.depth = depth
        self.activation = activation
        self.val_fraction = val_fraction
        self.emulator = emulator
        self.random_state = random_state

    # -- scikit-learn's estimator protocol ------------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # codes and curves are float32, as the graphs compute
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> CurveVAE:
        """Train on the curves ``X`` (n_curves, n_points) and export the bundle.

        ``y``, when given as parameters (n_curves,) or (n_curves, k), trains the parameter head: ``bundle_.fit``
        then returns θ with intervals. A DataFrame's columns are the grid points; numeric column names that
        increase are taken as the grid's x values.
        """
        from curvae.recipe.capacity import train_searched
        from curvae.recipe.config import PRESETS, SearchConfig
        from curvae.training.config import SEED_MODEL, SEED_TRAIN, DataConfig, ModelConfig, RunConfig, TrainConfig
        from curvae.export.config import ExportConfig
        from curvae.training.export_run import export_run
        from curvae.training.loop import train

        grid = _numeric_columns(X)
        X = validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=MIN_SAMPLES,
                          ensure_min_features=2)
        if self.preset not in PRESETS:
            raise InputError(f"preset={self.preset!r} must be one of {', '.join(PRESETS)}")
        if not isinstance(self.latent_dim, (int, np.integer)) or not 1 <= self.latent_dim <= X.shape[1]:
            raise InputError(f"latent_dim={self.latent_dim!r} must be an integer in [1, n_features={X.shape[1]}]")
        theta = None if y is None else np.asarray(y, dtype=np.float64)
        if theta is not None:
            theta = theta.reshape(len(theta), -1) if theta.ndim == 1 else theta
            if theta.ndim != 2 or theta.shape[0] != X.shape[0] or not np.all(np.isfinite(theta)):
                raise InputError(f"y has shape {np.shape(y)}; give finite parameters of shape (n_curves,) or "
                                 f"(n_curves, k) with n_curves={X.shape[0]}, or y=None")
        self.seed_ = (int(self.random_state) if self.random_state is not None
                      else int(np.random.SeedSequence().generate_state(1)[0] >> 1))
        given = {k: v for k, v in {"hidden": self.hidden, "depth": self.depth, "activation": self.activation}.items()
                 if v is not None}
        seed_recipe = self.preset == "seed"
        model_kw = {**(SEED_MODEL if seed_recipe else {}), **given, "latent_dim": int(self.latent_dim),
                    "n_points": int(X.shape[1])}
        train_kw = {**({k: v for k, v in SEED_TRAIN.items() if not (k == "epochs" and self.steps)}
                       if seed_recipe else {}),
                    **{k: v for k, v in {"steps": self.steps, "batch_size": self.batch_size}.items() if v is not None},
                    "seed": self.seed_}
        with tempfile.TemporaryDirectory(prefix="curvae-sklearn-") as tmp:
            data = Path(tmp) / "curves.npz"
            arrays: dict[str, Any] = {"curves": np.asarray(X, np.float32)}
            if grid is not None:
                arrays["grid"] = grid
            if theta is not None:
                arrays.update(params=theta, param_names=np.array([f"y{j}" for j in range(theta.shape[1])]))
            np.savez(data, **arrays)
            cfg = RunConfig(data=DataConfig(data=str(data), val_fraction=self.val_fraction),
                            model=ModelConfig(**model_kw), train=TrainConfig(**train_kw))
            run = Path(tmp) / "run"
            if self.preset == "auto" and not given:
                train_searched(cfg, run, search=SearchConfig(budget_seconds=self.budget_seconds),
                               batch_size=self.batch_size)
            else:
                train(cfg, run)
            export_run(run, Path(tmp) / "model", config=ExportConfig(held_out=0, params=theta is not None,
                                                                              emulator=bool(self.emulator)))
            self.bundle_ = CurveModel.load(Path(tmp) / "model")  # holds its verified bytes: the folder may go
        self.baseline_ = _baseline(self.bundle_)
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float32]:
        """Posterior means μ of the curves ``X``: ndarray of shape (n_curves, latent_dim), float32."""
        check_is_fitted(self, "bundle_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return self.bundle_.encode(X)

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.float32]:
        """Curves of codes ``X`` (n, latent_dim): ndarray of shape (n, n_features_in_), float32."""
        check_is_fitted(self, "bundle_")
        z = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float32)
        return self.bundle_.decode(z)

    def score(self, X: ArrayLike, y: ArrayLike | None = None) -> float:
        """Negative mean L2 fit residual of the curves ``X``: higher is better, for ``GridSearchCV``."""
        check_is_fitted(self, "bundle_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        res = self.bundle_.fit(X, uncertainty=False, params=False).residual
        return -float(np.mean(res))

    def fit_curves(self, X: ArrayLike, **kwargs: Any) -> FitResult:
        """:meth:`CurveModel.fit` of the target curves ``X``: codes, uncertainty, out-of-family flag and θ."""
        check_is_fitted(self, "bundle_")
        X = validate_data(self, X, dtype=np.float32, reset=False, ensure_all_finite="allow-nan")
        return self.bundle_.fit(X, **kwargs)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> NDArray[np.object_]:
        """``z0, z1, …``: the names of the code's dimensions."""
        check_is_fitted(self, "bundle_")
        return np.asarray([f"z{i}" for i in range(self.bundle_.latent_dim)], dtype=object)

    # -- the bundle ------------------------------------------------------------------------------------------

    def save(self, path: str | Path, *, force: bool = False) -> None:
        """Write the fitted bundle to the folder ``path`` (``curvae`` commands and :meth:`from_bundle` read it)."""
        check_is_fitted(self, "bundle_")
        self.bundle_.save(path, force=force)

    @classmethod
    def from_bundle(cls, path: str | Path, **load_kw: Any) -> CurveVAE:
        """A fitted estimator from a bundle folder, without torch: it transforms, decodes and scores."""
        model = CurveModel.load(path, **load_kw)
        est = cls(latent_dim=model.latent_dim)
        est.bundle_ = model
        est.n_features_in_ = model.n_points
        est.seed_ = int((model.manifest.training.config.get("train") or {}).get("seed", 0))
        est.baseline_ = _baseline(model)
        return est

    def _expected_failed_checks(self) -> dict[str, str]:
        """scikit-learn checks that cannot apply to this estimator, with the reason (passed to
        ``parametrize_with_checks(expected_failed_checks=...)``; docs/sklearn.md)."""
        return {}


def _baseline(model: CurveModel) -> dict[str, Any] | None:
    """PCA of the same size against the model on the held-out curves, from the manifest (None if not recorded)."""
    b = model.manifest.baseline
    if b is None:
        return None
    return {"latent_dim": b.latent_dim, "model_residual": b.model_residual_median,
            "pca_residual": b.pca_same_size, "pca_components_to_match": b.components_to_match}


def _numeric_columns(X: Any) -> NDArray[np.float64] | None:
    """A DataFrame's column names as the grid's x values, when they are all numbers that increase; else None."""
    cols = getattr(X, "columns", None)
    if cols is None:
        return None
    try:
        grid = np.asarray([float(c) for c in cols], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return grid if grid.size >= 2 and np.all(np.isfinite(grid)) and np.all(np.diff(grid) > 0) else None
