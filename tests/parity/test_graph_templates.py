"""Exports reuse a traced graph per structure, with the new weights swapped in, and only where that is exact."""

from __future__ import annotations

import numpy as np
import torch

from curvae.export import graphs
from curvae.runtime.engine.session import make_session
from curvae.training.config import ModelConfig
from curvae.training.model import VAE, FoldedDecoder


def _run(proto, z: np.ndarray) -> np.ndarray:
    return make_session(proto.SerializeToString(), ["CPUExecutionProvider"], name="t").run(None, {"z": z})[0]


def _export(module, d=2):
    return graphs.export_graph(module, (torch.zeros(3, d),), input_names=("z",), output_names=("x_hat",), opset=18,
                               metadata={})


def test_same_structure_reuses_the_template_and_computes_what_a_fresh_trace_does(monkeypatch):
    graphs._TEMPLATES.clear()
    graphs._SEEN.clear()
    traced = []
    real = graphs._trace
    monkeypatch.setattr(graphs, "_trace", lambda *a: traced.append(a) or real(*a))
    torch.manual_seed(0)
    nets = [FoldedDecoder(VAE(ModelConfig(n_points=30, hidden=16, depth=2, activation="silu"))).eval()
            for _ in range(3)]
    _export(nets[0])
    assert len(traced) == 1  # the module itself
    _export(nets[1])
    assert len(traced) == 2  # with random weights: the same graph but for the weights, so it is kept
    proto = _export(nets[2])
    assert len(traced) == 2  # the template, with the third module's weights
    z = np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32)
    fresh = real(nets[2], (torch.zeros(3, 2),), ("z",), ("x_hat",), 18)
    np.testing.assert_array_equal(_run(proto, z), _run(fresh, z))
    other = FoldedDecoder(VAE(ModelConfig(n_points=30, hidden=16, depth=3, activation="silu"))).eval()
    _export(other)  # another structure: traced
    assert len(traced) == 3


class Folded(torch.nn.Module):
    """A forward whose graph holds a constant computed from the state (``1 − mask``), which a swap cannot reach;
    its outputs are large, so an error in that constant is small beside them (as in the parameter head)."""

    def __init__(self, mask: float) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 4)
        self.register_buffer("mask", torch.full((4,), mask))

    def forward(self, z):
        u = self.lin(z) + 8.0
        return u * (1.0 - self.mask) + torch.exp(u * self.mask) * self.mask


def test_a_state_derived_constant_is_never_templated():
    graphs._TEMPLATES.clear()
    graphs._SEEN.clear()
    z = np.random.default_rng(1).standard_normal((20, 2)).astype(np.float32)
    for mask in (1.0, 0.0, 1.0, 0.0):
        module = Folded(mask).eval()
        proto = _export(module)
        with torch.no_grad():
            ref = module(torch.from_numpy(z)).numpy()
        np.testing.assert_allclose(_run(proto, z), ref, rtol=1e-5, atol=1e-5)
    assert not graphs._TEMPLATES


def test_one_trace_serves_every_opset_from_18_up(monkeypatch):
    traced = _counting(monkeypatch)
    torch.manual_seed(0)
    net = FoldedDecoder(VAE(ModelConfig(n_points=30, hidden=16, depth=2, activation="silu"))).eval()
    z = np.random.default_rng(3).standard_normal((40, 2)).astype(np.float32)
    ref = _run(_export(net), z)
    for opset in (19, 21, 23):
        proto = graphs.export_graph(net, (torch.zeros(3, 2),), input_names=("z",), output_names=("x_hat",),
                                    opset=opset, metadata={})
        assert [i.version for i in proto.opset_import if i.domain in ("", "ai.onnx")] == [opset]
        np.testing.assert_array_equal(_run(proto, z), ref)
    assert len(traced) == 2  # the module, then the random copy that makes the template: not one per opset
    assert graphs._same_up_to(proto, 23) and not graphs._same_up_to(proto, 24)  # past the known ceiling: traced


class Scaled(torch.nn.Module):
    """A forward with a constant taken from a size (the input's width), which a swap of weights cannot reach."""

    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(width, out)

    def forward(self, z):
        return self.lin(z) * z.shape[1]


def _counting(monkeypatch) -> list:
    graphs._TEMPLATES.clear()
    graphs._SEEN.clear()
    traced = []
    real = graphs._trace
    monkeypatch.setattr(graphs, "_trace", lambda *a: traced.append(a) or real(*a))
    return traced


def test_a_template_traced_at_two_sizes_serves_every_size(monkeypatch):
    """scikit-learn's checks and grid searches fit many sizes: after two traces at different sizes agree, a third
    size is the template with its weights and sizes, computing what a fresh trace does."""
    traced = _counting(monkeypatch)
    torch.manual_seed(0)
    for n_points, hidden in ((30, 16), (12, 8)):
        _export(FoldedDecoder(VAE(ModelConfig(n_points=n_points, hidden=hidden, depth=2, activation="silu"))).eval())
    assert len(traced) == 2
    net = FoldedDecoder(VAE(ModelConfig(n_points=7, hidden=5, depth=2, activation="silu"))).eval()
    proto = _export(net)
    assert len(traced) == 2  # no trace for the new size
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim][1:] == [7]
    z = np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32)
    fresh = graphs._trace(net, (torch.zeros(3, 2),), ("z",), ("x_hat",), 18)
    np.testing.assert_array_equal(_run(proto, z), _run(fresh, z))


def test_a_size_derived_constant_is_never_served_at_another_size(monkeypatch):
    traced = _counting(monkeypatch)
    for width, out in ((4, 3), (4, 5), (6, 3), (6, 3)):  # two sizes that share the width, then another width
        torch.manual_seed(width * out)
        module = Scaled(width, out).eval()
        proto = _export(module, d=width)
        z = np.random.default_rng(width).standard_normal((20, width)).astype(np.float32)
        with torch.no_grad():
            ref = module(torch.from_numpy(z)).numpy()
        np.testing.assert_allclose(_run(proto, z), ref, rtol=1e-5, atol=1e-5)
    assert len(traced) >= 4  # the width-6 module was traced, not served from the width-4 template


class Switches(torch.nn.Module):
    """Two 0/1 buffers that are often equal (as the emulator's log and positive switches), which the exporter
    then merges into one initializer."""

    def __init__(self, on: list[float], positive: list[float]) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.register_buffer("on", torch.tensor(on))
        self.register_buffer("positive", torch.tensor(positive))

    def forward(self, z):
        u = self.lin(z)
        return u * self.on + torch.exp(u * self.positive) * self.positive


def test_equal_state_tensors_merged_by_the_exporter_still_get_a_template(monkeypatch):
    traced = _counting(monkeypatch)
    switches = ([1.0, 1.0], [1.0, 1.0]), ([1.0, 0.0], [1.0, 0.0]), ([0.0, 1.0], [1.0, 1.0]), ([1.0, 1.0], [0.0, 1.0])
    z = np.random.default_rng(2).standard_normal((20, 2)).astype(np.float32)
    for on, positive in switches:
        module = Switches(on, positive).eval()
        proto = _export(module)
        with torch.no_grad():
            ref = module(torch.from_numpy(z)).numpy()
        np.testing.assert_allclose(_run(proto, z), ref, rtol=1e-5, atol=1e-5)
    assert len(traced) == 3  # the first module, then two distinct random ones; the last two are templated
