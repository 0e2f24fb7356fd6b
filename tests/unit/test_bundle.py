import json

import numpy as np
import pytest

from curvae.core.errors import BundleError
from curvae.runtime import CurveModel
from curvae.runtime.bundle.format import (
    FORMAT_VERSION,
    Manifest,
    read_bundle,
    read_manifest,
)


def test_bundle_without_variants_holds_its_four_graphs_and_manifest(bundle_dir):
    assert {p.name for p in bundle_dir.iterdir()} == read_manifest(bundle_dir).files() == {
        "manifest.json", "encoder.onnx", "decoder.onnx", "params.onnx", "emulator.onnx"}


def test_manifest_round_trip_and_required_facts(bundle_dir):
    raw = json.loads((bundle_dir / "manifest.json").read_text())
    m = Manifest.from_dict(raw)
    assert Manifest.from_dict(m.to_dict()) == m
    assert (m.format_version, m.n_points, m.latent_dim) == (FORMAT_VERSION, 100, 2)
    assert (m.ir_version, m.min_onnxruntime) == (8, "1.14")
    np.testing.assert_allclose(m.grid, np.linspace(0.01, 0.99, 100))
    assert m.family["name"] == "beta" and m.family["params"] == {"alpha": [0.0, 5.0], "beta": [0.0, 5.0]}
    assert set(m.producer) >= {"curvae", "torch", "onnx", "onnxruntime"}
    assert m.parity.passed and m.parity.batches == (1, 2, 7, 1000)
    assert m.training.epochs == len(m.training.history) == 100  # 600 steps in rounds of one 6-step epoch
    assert m.export is not None and m.export.opset == 18
    assert raw == m.to_dict()  # one writer, one reader: the JSON round-trips exactly


def test_flipped_byte_is_caught_by_sha256(bundle_copy):
    p = bundle_copy / "decoder.onnx"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="decoder.onnx has sha256 .* but the manifest says"):
        CurveModel.load(bundle_copy)


def test_truncated_graph_is_caught(bundle_copy):
    p = bundle_copy / "encoder.onnx"
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(BundleError, match="encoder.onnx has sha256"):
        read_bundle(bundle_copy)


def test_missing_and_extra_files(bundle_copy):
    (bundle_copy / "notes.txt").write_text("hi")
    with pytest.raises(BundleError, match=r"unexpected files \['notes.txt'\]"):
        read_bundle(bundle_copy)
    (bundle_copy / "notes.txt").unlink()
    (bundle_copy / "decoder.onnx").unlink()
    with pytest.raises(BundleError, match=r"missing \['decoder.onnx'\]"):
        read_bundle(bundle_copy)


def test_unknown_major_format_version(bundle_copy):
    p = bundle_copy / "manifest.json"
    raw = json.loads(p.read_text())
    raw["format_version"] = "2.0"
    p.write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="format_version '2.0' is not supported .* reads 1.x"):
        read_manifest(bundle_copy)


def test_malformed_manifest(bundle_copy):
    (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="is not valid JSON"):
        read_manifest(bundle_copy)
    (bundle_copy / "manifest.json").write_text(json.dumps({"format_version": "1.0"}))
    with pytest.raises(BundleError, match="manifest is malformed"):
        read_manifest(bundle_copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="is not a folder"):
        read_manifest(tmp_path / "nothing")
    with pytest.raises(BundleError, match="has no manifest.json"):
        read_manifest(tmp_path)
