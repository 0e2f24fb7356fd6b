"""torch vs onnxruntime on the same inputs and the same eps, for both graphs."""

import numpy as np
import onnx
import pytest
import torch

from curvae.export import PARITY_BATCHES, RANDOM_OPS
from curvae.runtime import CurveModel
from curvae.training.run import load_run

ATOL = 1e-5


@pytest.fixture(scope="module")
def pair(run_dir, bundle_dir):
    return load_run(run_dir).model, CurveModel.load(bundle_dir, providers="cpu")


@pytest.mark.parametrize("batch", PARITY_BATCHES)
def test_encoder_matches_torch_with_the_same_eps(pair, beta_targets, batch):
    vae, model = pair
    g = np.random.default_rng(batch)
    x = np.resize(beta_targets, (batch, 100)).astype(np.float32)
    eps = g.standard_normal((batch, 2)).astype(np.float32)
    z, mu, logvar = model.encode_with_noise(x, eps)
    with torch.no_grad():
        mu_t, logvar_t = vae.posterior(torch.from_numpy(x))
        z_t = mu_t + torch.exp(0.5 * logvar_t) * torch.from_numpy(eps)
    np.testing.assert_allclose(mu, mu_t.numpy(), atol=ATOL)
    np.testing.assert_allclose(logvar, logvar_t.numpy(), atol=ATOL)
    np.testing.assert_allclose(z, z_t.numpy(), atol=ATOL)


@pytest.mark.parametrize("batch", PARITY_BATCHES)
def test_decoder_matches_torch(pair, batch):
    vae, model = pair
    z = np.random.default_rng(batch).standard_normal((batch, 2)).astype(np.float32)
    with torch.no_grad():
        ref = vae.decode(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(model.decode(z), ref, atol=ATOL)


def test_z_is_mu_plus_sigma_eps_inside_the_graph(pair, beta_targets):
    _, model = pair
    eps = np.random.default_rng(1).standard_normal((len(beta_targets), 2)).astype(np.float32)
    z, mu, logvar = model.encode_with_noise(beta_targets, eps)
    np.testing.assert_allclose(z, mu + np.exp(logvar / 2) * eps, rtol=1e-5, atol=1e-6)
    z0, mu0, _ = model.encode_with_noise(beta_targets, np.zeros_like(eps))
    np.testing.assert_array_equal(z0, mu0)


def test_same_seed_same_sampled_codes(pair, beta_targets):
    _, model = pair
    a = model.encode(beta_targets, sample=True, seed=5)
    b = model.encode(beta_targets, sample=True, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.encode(beta_targets))


@pytest.mark.parametrize("graph", ["encoder.onnx", "decoder.onnx"])
def test_graphs_have_no_random_op_and_a_named_dynamic_batch(bundle_dir, graph):
    proto = onnx.load(str(bundle_dir / graph), load_external_data=False)
    ops = {n.op_type for n in proto.graph.node} | {n.op_type for f in proto.functions for n in f.node}
    assert not (ops & RANDOM_OPS)  # read with onnx itself, independently of curvae's scanner
    for value in list(proto.graph.input) + list(proto.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert all(init.data_location != onnx.TensorProto.EXTERNAL for init in proto.graph.initializer)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["curvae.graph"] == graph.removesuffix(".onnx")
    assert meta["curvae.latent_dim"] == "2" and meta["curvae.n_points"] == "100"
    assert meta["curvae.run_id"] == CurveModel.load(bundle_dir).manifest.run_id


def test_graph_io_names_and_order(bundle_dir):
    enc = onnx.load(str(bundle_dir / "encoder.onnx"))
    dec = onnx.load(str(bundle_dir / "decoder.onnx"))
    assert [i.name for i in enc.graph.input] == ["x", "eps"]
    assert [o.name for o in enc.graph.output] == ["z", "mu", "logvar"]
    assert [i.name for i in dec.graph.input] == ["z"] and [o.name for o in dec.graph.output] == ["x_hat"]


def test_manifest_records_parity_for_every_batch_and_output(bundle_dir):
    m = CurveModel.load(bundle_dir).manifest
    rows = m.parity.rows
    assert {(r["graph"], r["output"], r["batch"]) for r in rows} == {
        (g, o, b) for b in PARITY_BATCHES for g, outs in (("encoder", ("z", "mu", "logvar")), ("decoder", ("x_hat",)))
        for o in outs}
    assert all(r["passed"] for r in rows) and m.parity.passed
    assert (m.parity.atol, m.parity.rtol) == (1e-5, 1e-6)
    assert max(r["max_abs"] for r in rows) <= 1e-5  # this small model is well inside the pure atol gate
