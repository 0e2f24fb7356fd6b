"""A Node.js consumer (examples/node, onnxruntime-node from npm) gives the Python runtime's numbers.

This is the proof that a bundle needs neither Python nor torch. Skipped, with
the reason, where node or npm is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from curvae.runtime import CurveModel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "node"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                       reason="node and npm are not installed; the Node.js consumer test needs both"),
]


@pytest.fixture(scope="module")
def node_app(tmp_path_factory) -> Path:
    app = tmp_path_factory.mktemp("node") / "app"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("node_modules"))
    shutil.copytree(EXAMPLE.parent / "shared", app.parent / "shared")  # the bundle rules it shares with the browser
    env = {**os.environ, "ONNXRUNTIME_NODE_INSTALL_CUDA": "skip"}
    # The CPU binary ships inside onnxruntime-node; its install script only fetches CUDA binaries.
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=app, env=env, check=True,
                   capture_output=True, timeout=300)
    return app


@pytest.mark.parametrize("variant", [None, "fp16"])
def test_node_matches_python(node_app, run_dir, beta_targets, tmp_path, variant):
    from curvae.training.export_run import export_run

    bundle = tmp_path / "model"
    export_run(run_dir, bundle, variants={"fp16": 0.05} if variant else None)
    eps = np.random.default_rng(3).standard_normal((len(beta_targets), 2)).astype(np.float32)
    theta = np.random.default_rng(4).uniform(0.2, 4.8, (9, 2))
    (tmp_path / "noise.json").write_text(json.dumps({"curves": beta_targets.tolist(), "eps": eps.tolist(),
                                                     "theta": theta.tolist()}))
    args = ["node", "index.js", str(bundle), str(tmp_path / "noise.json"), str(tmp_path / "out.json")]
    out = subprocess.run(args + (["--variant", variant] if variant else []), cwd=node_app, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads((tmp_path / "out.json").read_text())

    model = CurveModel.load(bundle, variant=variant)
    grid = np.asarray(got["grid_z"], np.float32)
    axis = np.linspace(-2, 2, 5)
    np.testing.assert_allclose(grid, [[a, b] for b in axis for a in axis], atol=1e-7)
    np.testing.assert_allclose(np.asarray(got["grid_x_hat"]), model.decode(grid), atol=1e-5)
    z, mu, logvar = model.encode_with_noise(beta_targets, eps)
    np.testing.assert_allclose(np.asarray(got["z"]), z, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got["mu"]), mu, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got["logvar"]), logvar, atol=1e-5)
    assert got["param_names"] == ["alpha", "beta"]  # the parameter head, read under the same rules
    np.testing.assert_allclose(np.asarray(got["theta_mu"]), model.params(mu), rtol=1e-5)
    emulated = model.emulate(theta)  # the emulator, read under the same rules, gives Python's curves
    np.testing.assert_allclose(np.asarray(got["emulated"]), emulated, atol=1e-5 * float(np.abs(emulated).max()))


def test_node_refuses_a_tampered_bundle(node_app, bundle_copy, tmp_path):
    p = bundle_copy / "decoder.onnx"
    data = bytearray(p.read_bytes())
    data[100] ^= 0xFF
    p.write_bytes(bytes(data))
    (tmp_path / "noise.json").write_text(json.dumps({"curves": [[0.0] * 100], "eps": [[0.0, 0.0]]}))
    out = subprocess.run(["node", "index.js", str(bundle_copy), str(tmp_path / "noise.json"), str(tmp_path / "o.json")],
                         cwd=node_app, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.startswith("Error: decoder.onnx has sha256") and not (tmp_path / "o.json").exists()


def test_node_refuses_a_tampered_parameter_head(node_app, bundle_copy, tmp_path):
    p = bundle_copy / "params.onnx"
    data = bytearray(p.read_bytes())
    data[-20] ^= 0xFF
    p.write_bytes(bytes(data))
    (tmp_path / "noise.json").write_text(json.dumps({"curves": [[0.0] * 100], "eps": [[0.0, 0.0]]}))
    out = subprocess.run(["node", "index.js", str(bundle_copy), str(tmp_path / "noise.json"), str(tmp_path / "o.json")],
                         cwd=node_app, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.startswith("Error: params.onnx has sha256") and not (tmp_path / "o.json").exists()


def _node_refusal(node_app, bundle, tmp_path) -> str:
    (tmp_path / "noise.json").write_text(json.dumps({"curves": [[0.0] * 100], "eps": [[0.0, 0.0]]}))

    def limit():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))  # V8 reserves address space freely

    out = subprocess.run(["node", "index.js", str(bundle), str(tmp_path / "noise.json"), str(tmp_path / "o.json")],
                         cwd=node_app, capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert out.returncode == 1 and not (tmp_path / "o.json").exists(), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out.stderr.strip()


def test_node_refuses_hostile_bundles(node_app, bundle_copy, tmp_path):
    m = json.loads((bundle_copy / "manifest.json").read_text())
    good = json.dumps(m)
    (bundle_copy / "manifest.json").write_text(good[:-1] + ', "unused": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "manifest.json nests 100001 levels deep, over the cap of 32" in _node_refusal(node_app, bundle_copy, tmp_path)
    m["grid"][3] = m["grid"][2]
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    assert "grid[3] does not increase" in _node_refusal(node_app, bundle_copy, tmp_path)
    (bundle_copy / "manifest.json").write_text(good)
    (bundle_copy / "encoder.onnx").unlink()
    os.symlink("/dev/zero", bundle_copy / "encoder.onnx")
    assert "encoder.onnx is a symlink to '/dev/zero', outside its folder" in _node_refusal(node_app, bundle_copy,
                                                                                          tmp_path)
    (bundle_copy / "encoder.onnx").unlink()
    with open(bundle_copy / "encoder.onnx", "wb") as fh:
        fh.truncate(64 * 2**30)
    assert "encoder.onnx is 68719476736 bytes, over the" in _node_refusal(node_app, bundle_copy, tmp_path)
