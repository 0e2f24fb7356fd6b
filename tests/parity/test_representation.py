"""The representation: never worse than PCA, a gate that follows the numbers, real files as they come."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from curvae.core.errors import ExportError
from curvae.core.pca import PCA
from curvae.export import ExportConfig, export_bundle
from curvae.families import get_family
from curvae.runtime import CurveModel
from curvae.runtime.bundle.records import TrainingRecord
from curvae.training.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from curvae.training.data import build_dataset
from curvae.training.export_run import export_run
from curvae.training.loop import train
from curvae.training.model import DecoderGraph, EncoderGraph
from curvae.training.run import load_run


def test_on_exactly_linear_curves_the_model_is_at_least_as_good_as_pca(tmp_path):
    """Beta log-PDFs are linear in 3 functions: at d = 3 the shipped model must reach PCA's exactness."""
    cfg = RunConfig(data=DataConfig(family="beta", n_curves=600), model=ModelConfig(latent_dim=3, hidden=32),
                    train=TrainConfig(steps=400, seed=2))
    summary = train(cfg, tmp_path / "run")
    export_run(tmp_path / "run", tmp_path / "model", config=ExportConfig(params=False))  # the baseline is tested
    model = CurveModel.load(tmp_path / "model")
    targets, _ = get_family("beta").sample(200, seed=99)
    basis = PCA.fit(build_dataset(cfg.data, seed=2).train)
    fit = model.fit(targets)
    pca = basis.residuals(targets, 3)
    assert np.median(fit.residual) <= np.median(pca) + 1e-3  # both at float32 rounding of values up to ~25
    assert summary["selected"] in ("pca", "model") and summary["pca"]["latent_dim"] == 3
    b = model.manifest.baseline
    assert b is not None and b.latent_dim == 3 and b.pca_residual_median[3] < 1e-3
    assert b.components_to_match is not None and b.components_to_match <= 3
    assert "a linear basis is enough" in b.summary() or b.model_residual_median < b.pca_residual_median[3]


def test_on_a_bending_family_the_model_beats_pca_of_its_size(tmp_path):
    cfg = RunConfig(data=DataConfig(family="logistic", n_curves=1500), model=ModelConfig(hidden=64),
                    train=TrainConfig(steps=2500, seed=1))
    summary = train(cfg, tmp_path / "run")
    export_run(tmp_path / "run", tmp_path / "model", config=ExportConfig(params=False))  # the baseline is tested
    b = CurveModel.load(tmp_path / "model").manifest.baseline
    assert summary["selected"] == "model"
    assert all(abs(m) < 0.05 for m in summary["latent_mean"]) and all(abs(s - 1) < 0.05 for s in summary["latent_std"])
    assert b.model_residual_median < 0.5 * b.pca_residual_median[2], b
    assert b.components_to_match is not None and b.components_to_match >= 4
    assert "worth" in b.summary() and not b.linear_is_enough


def _big_curves(n: int, points: int) -> np.ndarray:
    """Peaks of magnitude ~1e4 on an offset of 5e3, over 2,000 points: large sums in every first-layer Gemm."""
    g = np.random.default_rng(0)
    x = np.linspace(0, 1, points)
    c, w, a = g.uniform(0.2, 0.8, (n, 1)), g.uniform(0.05, 0.2, (n, 1)), g.uniform(0.5, 1.5, (n, 1))
    return (5e3 + 1e4 * a * np.exp(-0.5 * ((x - c) / w) ** 2)).astype(np.float32)


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("big")
    np.save(base / "big.npy", _big_curves(300, 2000))
    cfg = RunConfig(data=DataConfig(data=str(base / "big.npy")), model=ModelConfig(hidden=32),
                    train=TrainConfig(steps=150, seed=0))
    train(cfg, base / "run")
    return base


def test_large_values_and_many_points_pass_the_default_gate(big_run, tmp_path):
    res = export_run(big_run / "run", tmp_path / "model")  # default atol 1e-5, rtol 1e-6
    p = res.manifest.parity
    assert p.passed and p.max_abs > 1e-5  # the fixed atol alone would have refused it
    assert p.float32_noise > 0
    model = CurveModel.load(tmp_path / "model")
    assert model.n_points == 2000 and np.isfinite(model.sample(3, seed=0)).all()


def test_a_real_mismatch_is_still_refused_at_that_scale(big_run, tmp_path):
    vae = load_run(big_run / "run").model
    shifted = copy.deepcopy(vae)
    with torch.no_grad():
        shifted.decoder[-1].bias.add_(1e-3)  # every output point, a thousandth of the global scale
    with pytest.raises(ExportError, match=r"parity failed: decoder.x_hat .* nothing was written"):
        export_bundle(EncoderGraph(vae), DecoderGraph(shifted), tmp_path / "m", n_points=2000, latent_dim=2,
                      grid=[0.0] * 2000, family={"name": "custom"}, run_id="x", training=TrainingRecord(),
                      reference=(EncoderGraph(vae), DecoderGraph(vae)))
    assert list(tmp_path.iterdir()) == []


def test_the_seed_recipe_stays_available_and_old_configs_read_as_it():
    seed = RunConfig.seed()
    assert (seed.model.linear_path, seed.model.scaling, seed.model.activation) == (False, "per-point", "relu")
    assert (seed.train.epochs, seed.train.loss, seed.train.lr) == (100, "sse", 1e-2)
    old = {"data": {"family": "beta", "n_curves": 5000, "data": None, "val_fraction": 0.1},
           "model": {"n_points": 100, "latent_dim": 2, "hidden": 256, "depth": 1, "activation": "relu"},
           "train": {"epochs": 100, "batch_size": 32, "lr": 0.01, "lr_final": 5e-05, "warmup_epochs": 3, "beta": 1.0,
                     "kl_warmup_epochs": 0, "ema": 0.999, "adam_beta2": 0.99, "threads": 1, "device": "auto",
                     "seed": 0}}
    cfg = RunConfig.from_dict(json.loads(json.dumps(old)))
    assert cfg.model == seed.model and cfg.train == seed.train


def test_the_budget_is_steps_whatever_the_data_size():
    small, large = TrainConfig().plan(1_000), TrainConfig().plan(1_000_000)
    assert small[0] * small[1] >= 12_000 and large[0] * large[1] >= 12_000
    assert large[0] * large[1] < 12_000 + large[1] and small[0] * small[1] < 12_000 + small[1]
    assert TrainConfig(epochs=3).plan(320) == (3, 10)
    with pytest.raises(Exception, match="were both given"):
        TrainConfig(epochs=3, steps=10)
