"""The exporter refuses bundles that would be wrong, and then writes nothing."""

import pytest
import torch

from curvae.export import ExportConfig, export_bundle
from curvae.runtime.errors import ExportError, OutputExistsError
from curvae.training.export_run import export_run
from curvae.training.model import DecoderGraph, EncoderGraph
from curvae.training.run import load_run


def test_parity_over_tolerance_writes_nothing(run_dir, tmp_path):
    out = tmp_path / "model"
    with pytest.raises(ExportError, match=r"parity failed: .* > atol=1e-12 \+ rtol=0·\|torch\|; nothing was written"):
        export_run(run_dir, out, config=ExportConfig(atol=1e-12, rtol=0))
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
                      grid=[0.0] * 100, family={"name": "beta"}, run_id="x", training={})
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_needs_force(run_dir, bundle_dir, tmp_path):
    with pytest.raises(OutputExistsError, match="already exists; .* pass --force"):
        export_run(run_dir, bundle_dir)


def test_force_replaces_a_bundle_whole(run_dir, bundle_copy):
    (bundle_copy / "stale.txt").write_text("old")
    export_run(run_dir, bundle_copy, force=True)
    assert sorted(p.name for p in bundle_copy.iterdir()) == ["decoder.onnx", "encoder.onnx", "manifest.json"]
    assert not [p for p in bundle_copy.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("kw, match", [({"opset": 9}, "opset=9 is outside"), ({"atol": 0}, "atol=0 must be"),
                                       ({"rtol": 0.5}, r"rtol=0.5 must be in \[0, 0.01\)")])
def test_bad_export_options(kw, match):
    from curvae.runtime.errors import InputError

    with pytest.raises(InputError, match=match):
        ExportConfig(**kw)


def test_encoder_graph_wrapper_uses_the_given_noise(run_dir):
    vae = load_run(run_dir).model
    x = torch.zeros(3, 100)
    eps = torch.ones(3, 2)
    z, mu, logvar = EncoderGraph(vae)(x, eps)
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar))
