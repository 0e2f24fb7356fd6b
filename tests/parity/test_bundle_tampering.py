"""Bundles that are consistent by hash but wrong inside are refused before any inference."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import onnx
import pytest
from onnx import helper

from curvae.runtime import BundleError, CurveModel
from curvae.runtime.bundle.extras import full_check


def put_graph(bundle, name: str, proto: onnx.ModelProto) -> None:
    """Write a graph and make the manifest's sha256 agree, as a careless or hostile tool would."""
    data = proto.SerializeToString()
    (bundle / f"{name}.onnx").write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["graphs"][name]["sha256"] = hashlib.sha256(data).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def edit_manifest(bundle, **changes) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.update(changes)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_decoder_from_another_run_is_refused(bundle_copy, tmp_path):
    golden = Path(__file__).parents[1] / "fixtures" / "golden"
    other = onnx.load(str(golden / "decoder.onnx"))
    put_graph(bundle_copy, "decoder", other)
    with pytest.raises(BundleError, match="decoder.onnx says run .* but the manifest says run .*one export"):
        CurveModel.load(bundle_copy)


def test_latent_size_disagreement_is_refused(bundle_copy):
    edit_manifest(bundle_copy, latent_dim=3)
    with pytest.raises(BundleError, match=r"disagree with the manifest \(n_points=100, latent_dim=3\)"):
        CurveModel.load(bundle_copy)


def test_external_data_reference_is_refused(bundle_copy):
    proto = onnx.load(str(bundle_copy / "decoder.onnx"))
    init = proto.graph.initializer[0]
    init.ClearField("raw_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    init.external_data.add(key="location", value="../../../etc/passwd")
    put_graph(bundle_copy, "decoder", proto)
    with pytest.raises(BundleError, match="references external data files"):
        CurveModel.load(bundle_copy)


def test_opset_disagreeing_with_manifest_is_refused(bundle_copy):
    edit_manifest(bundle_copy, opset=17)
    with pytest.raises(BundleError, match="has opset 18 and IR version .* but the manifest says 17"):
        CurveModel.load(bundle_copy)


def test_opset_newer_than_onnxruntime_is_a_clear_error(bundle_copy):
    proto = onnx.load(str(bundle_copy / "decoder.onnx"))
    proto.opset_import[0].version = 99
    put_graph(bundle_copy, "decoder", proto)
    edit_manifest(bundle_copy, opset=99)
    proto = onnx.load(str(bundle_copy / "encoder.onnx"))
    proto.opset_import[0].version = 99
    put_graph(bundle_copy, "encoder", proto)
    with pytest.raises(BundleError, match=r"onnxruntime .* cannot load the encoder graph \(opset 99, IR version"):
        CurveModel.load(bundle_copy)


def test_random_op_planted_in_a_graph_is_refused(bundle_copy):
    proto = onnx.load(str(bundle_copy / "decoder.onnx"))
    proto.graph.node.append(helper.make_node("RandomNormal", [], ["noise"], shape=[1]))
    put_graph(bundle_copy, "decoder", proto)
    with pytest.raises(BundleError, match=r"contains random ops \['RandomNormal'\]"):
        CurveModel.load(bundle_copy)


def test_garbage_graph_bytes_are_refused(bundle_copy):
    (bundle_copy / "encoder.onnx").write_bytes(b"\xff" * 64)
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["graphs"]["encoder"]["sha256"] = hashlib.sha256(b"\xff" * 64).hexdigest()
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="encoder.onnx is not a readable ONNX model"):
        CurveModel.load(bundle_copy)


def test_full_check_runs_onnx_checker(bundle_dir, bundle_copy):
    assert full_check(bundle_dir).startswith("onnx.checker full check passed")
    proto = onnx.load(str(bundle_copy / "decoder.onnx"))
    proto.graph.node[0].input[0] = "nonexistent"
    put_graph(bundle_copy, "decoder", proto)
    with pytest.raises(BundleError, match="decoder.onnx fails onnx.checker"):
        full_check(bundle_copy)


def test_a_bundle_copied_whole_still_loads(bundle_dir, tmp_path):
    shutil.copytree(bundle_dir, tmp_path / "moved")
    assert CurveModel.load(tmp_path / "moved").latent_dim == 2
