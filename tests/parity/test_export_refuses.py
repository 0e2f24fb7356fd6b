"""The exporter refuses bundles that would be wrong, and then writes nothing."""

import copy

import pytest
import torch

from curvae.core.errors import ExportError, OutputExistsError
from curvae.export import ExportConfig, export_bundle
from curvae.runtime.bundle.records import TrainingRecord
from curvae.training.export_run import export_run
from curvae.training.model import DecoderGraph, EncoderGraph
from curvae.training.run import load_run


def test_graph_off_by_a_thousandth_is_refused_despite_the_float32_allowance(run_dir, tmp_path):
    vae = load_run(run_dir).model
    shifted = copy.deepcopy(vae)
    with torch.no_grad():
        shifted.decoder[-1].bias[3] += 1e-3  # one output point, in standardised units
    with pytest.raises(ExportError, match=r"parity failed: decoder.x_hat at batch \d+ differs by .* > atol=1e-05 "
                                          r"\+ rtol=1e-06·\|torch\| \+ 4·float32 noise \(.*\); nothing was written"):
        export_bundle(EncoderGraph(vae), DecoderGraph(shifted), tmp_path / "m", n_points=100, latent_dim=2,
                      grid=[0.0] * 100, family={"name": "beta"}, run_id="x", training=TrainingRecord(),
                      reference=(EncoderGraph(vae), DecoderGraph(vae)))
    assert list(tmp_path.iterdir()) == []


class NoisyEncoder(torch.nn.Module):
    """An encoder that draws its own noise: exactly what a bundle must not contain."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, eps):
        mu, logvar = self.inner.posterior(x)
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu), mu, logvar


def test_random_op_in_graph_is_refused(run_dir, tmp_path):
    vae = load_run(run_dir).model
    with pytest.raises(ExportError, match=r"contains random ops \['RandomNormalLike'\]"):
        export_bundle(NoisyEncoder(vae), DecoderGraph(vae), tmp_path / "m", n_points=100, latent_dim=2,
                      grid=[0.0] * 100, family={"name": "beta"}, run_id="x", training=TrainingRecord())
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_needs_force(run_dir, bundle_dir, tmp_path):
    with pytest.raises(OutputExistsError, match="already exists; .* pass --force"):
        export_run(run_dir, bundle_dir)


def test_force_replaces_a_bundle_whole(run_dir, bundle_copy):
    (bundle_copy / "stale.txt").write_text("old")
    export_run(run_dir, bundle_copy, force=True)
    assert sorted(p.name for p in bundle_copy.iterdir()) == ["decoder.onnx", "emulator.onnx", "encoder.onnx",
                                                             "manifest.json", "params.onnx"]
    assert not [p for p in bundle_copy.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("kw, match", [({"opset": 6}, "opset=6 is outside the supported 7..23"), ({"opset": 24}, "opset=24 is outside"), ({"atol": 0}, "atol=0 must be"),
                                       ({"rtol": 0.5}, r"rtol=0.5 must be in \[0, 0.01\)")])
def test_bad_export_options(kw, match):
    from curvae.core.errors import InputError

    with pytest.raises(InputError, match=match):
        ExportConfig(**kw)


def test_encoder_graph_wrapper_uses_the_given_noise(run_dir):
    vae = load_run(run_dir).model
    x = torch.zeros(3, 100)
    eps = torch.ones(3, 2)
    z, mu, logvar = EncoderGraph(vae)(x, eps)
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar))


def test_ill_conditioned_output_exports_within_float32_noise(run_dir, tmp_path):
    # Same kind of model, but every hidden unit carries +3000 that the next layer takes off again:
    # the outputs are sums of terms in the thousands, which float32 cannot add to 1e-5 in any order.
    vae = copy.deepcopy(load_run(run_dir).model)
    with torch.no_grad():
        vae.encoder[0].bias += 3000.0
        vae.encoder[2].bias -= 3000.0 * vae.encoder[2].weight.sum(1)
    result = export_bundle(EncoderGraph(vae), DecoderGraph(vae), tmp_path / "m", n_points=100, latent_dim=2,
                           grid=[0.0] * 100, family={"name": "beta"}, run_id="x", training=TrainingRecord())
    parity = result.manifest.parity
    assert parity.passed
    assert parity.max_abs > 1e-5  # a plain allclose gate would have refused this bundle
    assert parity.float32_noise > 1e-5
    assert all(r["max_abs"] <= 1e-5 + 1e-6 * 1e4 + 4 * r["float32_noise"] for r in parity.rows)

