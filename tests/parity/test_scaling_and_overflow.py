"""Encoders never overflow, and the parity gate follows the code's scaling.

Two defects that blocked real data: an input that drives log σ² past ~177 made
``exp(½·logvar)·eps`` infinite (and ``inf·0`` NaN), and curves with a small
variation on a large level were refused by the parity gate although the graph
was healthy.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from curvae.core.errors import ExportError
from curvae.export import ExportConfig, export_bundle
from curvae.runtime import CurveModel
from curvae.runtime.bundle.records import TrainingRecord
from curvae.training.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from curvae.training.export_run import export_run
from curvae.training.loop import train
from curvae.training.model import LOGVAR_MAX, VAE, DecoderGraph, EncoderGraph, FoldedDecoder, FoldedEncoder
from curvae.training.run import load_run


def small_variation_curves(n: int = 45, p: int = 1841, seed: int = 0) -> np.ndarray:
    """``0.5 + 0.4·sin²(3x)`` plus four narrow peaks of amplitude ~0.01 and noise 2e-4: a spectrum-like level."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, p)
    amps = rng.normal(0.0, 0.01, (n, 4)) * np.array([1.0, 0.5, 0.3, 0.1])
    peaks = np.exp(-0.5 * ((x[:, None] - np.array([0.2, 0.45, 0.7, 0.85])) / 0.02) ** 2)  # (p, 4)
    return (0.5 + 0.4 * np.sin(3 * x) ** 2 + amps @ peaks.T + rng.normal(0.0, 2e-4, (n, p))).astype(np.float32)


@pytest.fixture(scope="module")
def small_variation_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("small-variation")
    np.save(base / "curves.npy", small_variation_curves())
    cfg = RunConfig(data=DataConfig(data=str(base / "curves.npy")), model=ModelConfig(latent_dim=3),
                    train=TrainConfig(steps=600, seed=0))
    train(cfg, base / "run")
    return base


@pytest.mark.slow
def test_small_variation_on_a_large_level_exports_with_default_tolerances(small_variation_run):
    base = small_variation_run
    res = export_run(base / "run", base / "model", config=ExportConfig(params=False))
    assert res.manifest.parity.passed and res.manifest.parity.atol == ExportConfig().atol
    # The graph itself is accurate: its codes match the float64 model to float32 rounding of the codes' scale.
    vae = load_run(base / "run").model
    curves = small_variation_curves(seed=1)
    with torch.no_grad():
        mu64 = copy.deepcopy(EncoderGraph(vae)).double()(torch.from_numpy(curves).double(),
                                                         torch.zeros(len(curves), 3, dtype=torch.float64))[1]
    mu = CurveModel.load(base / "model").encode(curves)
    np.testing.assert_allclose(mu, mu64.numpy(), atol=2e-5)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["weight", "bias"])
def test_small_variation_graph_with_a_perturbed_layer_is_still_refused(small_variation_run, tmp_path, where):
    vae = load_run(small_variation_run / "run").model
    bad = copy.deepcopy(vae)
    with torch.no_grad():
        if where == "weight":
            bad.encoder_linear.weight[0] *= 1.01  # the weights of the first code, 1% off
        else:
            bad.encoder[-1].bias[1] += 1e-3  # a thousandth of the prior's spread on one code
    with pytest.raises(ExportError, match=r"parity failed: encoder\.(z|mu) at batch \d+ differs by"):
        export_bundle(FoldedEncoder(bad), FoldedDecoder(bad), tmp_path / "m", n_points=vae.cfg.n_points,
                      latent_dim=3, grid=[0.0] * vae.cfg.n_points, family={"name": "custom"}, run_id="x",
                      training=TrainingRecord(), reference=(EncoderGraph(vae), DecoderGraph(vae)))
    assert not (tmp_path / "m").exists()


def _huge_logvar_vae() -> VAE:
    """A model whose log σ² head answers 1e4 for an ordinary curve: far past exp's float32 range."""
    torch.manual_seed(0)
    vae = VAE(ModelConfig(n_points=20, latent_dim=2, hidden=8))
    with torch.no_grad():
        vae.encoder[-1].bias[2:] = 1e4
    return vae.eval()


def test_huge_logvar_gives_finite_codes_in_torch_and_every_graph(tmp_path):
    vae = _huge_logvar_vae()
    x = torch.randn(5, 20)
    eps = torch.cat([torch.zeros(2, 2), torch.randn(3, 2)])  # eps = 0 too: inf·0 was NaN
    for module in (EncoderGraph(vae), FoldedEncoder(vae)):
        z, mu, logvar = module(x, eps)
        assert torch.isfinite(z).all() and torch.isfinite(logvar).all()
        assert float(logvar.max()) == LOGVAR_MAX
    res = export_bundle(FoldedEncoder(vae), FoldedDecoder(vae), tmp_path / "m", n_points=20, latent_dim=2,
                        grid=list(np.linspace(0, 1, 20)), family={"name": "custom"}, run_id="x",
                        training=TrainingRecord(), reference=(EncoderGraph(vae), DecoderGraph(vae)))
    assert res.manifest.parity.passed
    model = CurveModel.load(tmp_path / "m")
    z, mu, logvar = model.encode_with_noise(x.numpy(), eps.numpy())
    assert np.isfinite(z).all() and np.isfinite(logvar).all() and logvar.max() == np.float32(LOGVAR_MAX)
    np.testing.assert_array_equal(z[:2], mu[:2])  # eps = 0 gives z = μ exactly


def test_clamp_leaves_ordinary_logvar_bit_exact():
    from curvae.training.model import clamp_logvar

    lv = torch.linspace(-60.0, LOGVAR_MAX, 10_001)
    assert torch.equal(clamp_logvar(lv), lv)
    assert torch.equal(clamp_logvar(torch.tensor([25.0, 1e30, float("inf")])), torch.full((3,), LOGVAR_MAX))


@pytest.mark.parametrize("opset", [7, 10, 11, 18])
def test_clamp_survives_every_opset(tmp_path, opset):
    vae = _huge_logvar_vae()
    res = export_bundle(FoldedEncoder(vae), FoldedDecoder(vae), tmp_path / "m", n_points=20, latent_dim=2,
                        grid=list(np.linspace(0, 1, 20)), family={"name": "custom"}, run_id="x",
                        training=TrainingRecord(), reference=(EncoderGraph(vae), DecoderGraph(vae)),
                        config=ExportConfig(opset=opset))
    assert res.manifest.opset == opset
    _, _, logvar = CurveModel.load(tmp_path / "m").encode_with_noise(np.ones((3, 20), np.float32),
                                                                      np.zeros((3, 2), np.float32))
    assert np.all(logvar == np.float32(LOGVAR_MAX))
