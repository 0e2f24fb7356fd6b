"""θ → curve on the default Beta model: accuracy on fresh θ, parameter-space fits against z + head, and a
parity gate that refuses a perturbed emulator graph."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from curvae.core.errors import ExportError
from curvae.export.emulator import EmulatorGraph, emulator_parity, train_emulator
from curvae.export.graphs import EXPORT_BATCH, export_graph
from curvae.families import get_family
from curvae.runtime.engine.session import make_session
from curvae.runtime.fitting.engine import FitOptions, fit_with_jacobian

pytestmark = pytest.mark.slow
N = 600
SIGMA = 0.05


def fresh(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    fam = get_family("beta")
    theta = np.random.default_rng(seed).uniform(0.5, 5.0, (n, 2))
    return fam.curves(theta), theta


def test_emulation_is_close_to_the_models_own_floor(default_model):
    model = default_model("beta")
    x, theta = fresh(N, seed=41)
    spread = np.median(np.linalg.norm(x - x.mean(axis=0), axis=1))
    err = np.linalg.norm(model.emulate(theta) - x, axis=1)
    floor = np.median(model.fit(x, uncertainty=False).residual)
    assert np.median(err) / spread <= 0.005  # 0.5% of the curves' spread
    assert np.median(err) <= 2.5 * floor
    rec = model.manifest.emulator  # what the manifest says agrees with what a user measures
    assert 0.5 <= rec.share_median / (np.median(err) / spread) <= 2.0


def test_theta_fits_are_as_accurate_as_z_fits_with_the_head_and_cover_with_sigma(default_model):
    model = default_model("beta")
    x, theta = fresh(N, seed=42)
    noisy = x + np.random.default_rng(43).normal(0, SIGMA, x.shape).astype(np.float32)
    by_z = model.fit(noisy, sigma=SIGMA)
    by_theta = model.fit(noisy, sigma=SIGMA, space="theta")
    err_z = np.median(np.abs(by_z.theta - theta) / theta, axis=0)
    err_theta = np.median(np.abs(by_theta.theta - theta) / theta, axis=0)
    assert (err_theta <= 1.1 * err_z).all(), (err_theta, err_z)
    cover = ((by_theta.theta_lo <= theta) & (theta <= by_theta.theta_hi)).mean(axis=0)
    assert ((cover >= 0.90) & (cover <= 0.98)).all(), cover


def test_the_parity_gate_refuses_a_perturbed_emulator(run_dir):
    from curvae.training.model import FoldedDecoder
    from curvae.training.run import load_run

    decoder = FoldedDecoder(load_run(run_dir).model).eval()
    dec_proto = export_graph(copy.deepcopy(decoder), (torch.zeros(EXPORT_BATCH, 2),), input_names=("z",),
                             output_names=("x_hat",), opset=17, metadata={})
    dec = make_session(dec_proto.SerializeToString(), ["CPUExecutionProvider"], name="decoder")
    curves, theta = get_family("beta").sample(200, seed=5)
    with torch.no_grad():
        z0 = np.zeros((200, 2), np.float32)
    fit, jac = fit_with_jacobian(lambda z: dec.run(None, {"z": z})[0], curves, z0, FitOptions())
    net = train_emulator(theta, fit.z, jac, ("identity", "identity"), iters=(30, 30))
    proto = export_graph(EmulatorGraph(net, copy.deepcopy(decoder)), (torch.ones(EXPORT_BATCH, 2),),
                         input_names=("theta",), output_names=("x_hat", "z"), opset=17, metadata={})
    kw = {"low": np.zeros(2), "high": np.full(2, 5.0), "atol": 1e-5, "rtol": 1e-4}
    assert emulator_parity(net, proto.SerializeToString(), dec, **kw)["passed"]
    for part in ("emulator.net", "decoder"):  # the θ → z network, then the decoder inside the graph
        bad = onnx.ModelProto()
        bad.CopyFrom(proto)
        init = next(i for i in bad.graph.initializer
                    if numpy_helper.to_array(i).ndim == 2 and (part in i.name or part == "decoder"
                                                               and "emulator" not in i.name))
        w = numpy_helper.to_array(init).copy()
        w[0] *= 1.01
        init.CopyFrom(numpy_helper.from_array(w, init.name))
        with pytest.raises(ExportError, match="parity failed: emulator"):
            emulator_parity(net, bad.SerializeToString(), dec, **kw)
