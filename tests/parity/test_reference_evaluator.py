"""An independent reading of the graphs: onnx.reference.ReferenceEvaluator against onnxruntime and torch."""

import numpy as np
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from curvae.runtime import CurveModel
from curvae.training.run import load_run


@pytest.fixture(scope="module")
def evaluators(bundle_dir):
    return (ReferenceEvaluator(str(bundle_dir / "encoder.onnx")), ReferenceEvaluator(str(bundle_dir / "decoder.onnx")))


@pytest.mark.parametrize("batch", [1, 2, 7, 300])
def test_reference_evaluator_matches_onnxruntime_and_torch(bundle_dir, run_dir, evaluators, beta_targets, batch):
    enc, dec = evaluators
    model = CurveModel.load(bundle_dir)
    vae = load_run(run_dir).model
    g = np.random.default_rng(batch)
    x = np.resize(beta_targets, (batch, 100)).astype(np.float32)
    eps = g.standard_normal((batch, 2)).astype(np.float32)
    z = g.standard_normal((batch, 2)).astype(np.float32)

    ref_z, ref_mu, ref_logvar = enc.run(None, {"x": x, "eps": eps})
    for got, ref in zip(model.encode_with_noise(x, eps), (ref_z, ref_mu, ref_logvar)):
        np.testing.assert_allclose(got, ref, atol=1e-5)
    with torch.no_grad():
        mu_t, logvar_t = vae.posterior(torch.from_numpy(x))
        np.testing.assert_allclose(ref_mu, mu_t.numpy(), atol=1e-5)
        np.testing.assert_allclose(ref_logvar, logvar_t.numpy(), atol=1e-5)
        x_t = vae.decode(torch.from_numpy(z)).numpy()
    (ref_x,) = dec.run(None, {"z": z})
    np.testing.assert_allclose(model.decode(z), ref_x, atol=1e-5)
    np.testing.assert_allclose(ref_x, x_t, atol=1e-5)
