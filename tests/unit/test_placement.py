"""Where each node ran, as onnxruntime's profiler recorded it."""

import pytest

from curvae.core.errors import ProviderError
from curvae.io.files import placement_summary
from curvae.runtime import CurveModel
from curvae.runtime.engine.placement import check_placement


def test_every_node_of_both_graphs_is_accounted_for_on_cpu(bundle_dir):
    m = CurveModel.load(bundle_dir, providers="cpu", strict=True)
    placed = m.placement()
    assert set(placed) == {"encoder", "decoder"}
    for graph in placed.values():
        assert list(graph) == ["CPUExecutionProvider"]
    # The MLP's two Gemms survive optimisation (the first fused with its activation), plus the affine path's.
    assert sum("Gemm" in op for op in placed["decoder"]["CPUExecutionProvider"]) == 3
    assert placement_summary(placed)["decoder"] == (
        f"{len(placed['decoder']['CPUExecutionProvider'])} of {len(placed['decoder']['CPUExecutionProvider'])} "
        "nodes on CPUExecutionProvider")


def test_strict_refuses_nodes_that_ran_elsewhere():
    placed = {"CPUExecutionProvider": ["Gemm", "Relu"], "OpenVINOExecutionProvider": ["OpenVINO-EP-subgraph"]}
    with pytest.raises(ProviderError, match=r"OpenVINOExecutionProvider was requested, but of the decoder graph's "
                                            r"3 nodes 2 on CPUExecutionProvider \(Gemm, Relu\)"):
        check_placement(placed, "OpenVINOExecutionProvider", name="decoder")
    check_placement({"CPUExecutionProvider": ["Gemm"]}, "CPUExecutionProvider", name="decoder")
