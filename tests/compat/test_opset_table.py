"""The manifest's "oldest onnxruntime" is true: real releases load a graph exactly when the table says they can.

Each onnxruntime release from 1.15 (the oldest with wheels for this Python)
to the newest is installed on its own, and graphs exported at opsets 7 to
23 are opened with it.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from envs import ORT_RELEASES, ORT_VENV, clean_env, ort_release, venv

from curvae.runtime.bundle.versions import (
    min_ir_version,
    min_onnxruntime,
    parse_version,
)

OPSETS = (7, 13, 18, 19, 20, 21, 22, 23)
TRY = os.path.join(os.path.dirname(__file__), "try_load.py")


@pytest.fixture(scope="session")
def opset_graphs(run_dir, tmp_path_factory):
    from curvae.export import ExportConfig
    from curvae.training.export_run import export_run

    base = tmp_path_factory.mktemp("opsets")
    files = {}
    for opset in OPSETS:
        export_run(run_dir, base / f"opset{opset}", config=ExportConfig(opset=opset, params=False))  # encoder, decoder
        files[opset] = str(base / f"opset{opset}" / "encoder.onnx"), str(base / f"opset{opset}" / "decoder.onnx")
    return files


def test_oldest_onnxruntime_per_opset_is_what_the_manifest_says(opset_graphs, results):
    py = venv(*ORT_VENV)
    seen = {}
    for version in ORT_RELEASES:
        env = {**clean_env(), "PYTHONPATH": ort_release(py, version)}
        files = [f for pair in opset_graphs.values() for f in pair]
        res = subprocess.run([str(py), TRY, *files], capture_output=True, text=True, env=env, check=True)
        got = json.loads(res.stdout.strip().splitlines()[-1])
        assert got["onnxruntime"] == version
        for opset, (enc, dec) in opset_graphs.items():
            seen[(version, opset)] = got[enc] == "ok" and got[dec] == "ok"
    wrong = []
    for opset in OPSETS:
        need = min_onnxruntime(opset, min_ir_version(opset))
        row = {v: seen[(v, opset)] for v in ORT_RELEASES}
        results.append({"table": "opsets", "opset": opset, "ir_version": min_ir_version(opset),
                        "min_onnxruntime": need, "loads": row})
        for version, loaded in row.items():
            if loaded != (parse_version(version) >= parse_version(need)):
                wrong.append(f"opset {opset} on {version}: {'loads' if loaded else 'refused'}, table says >= {need}")
    assert not wrong, wrong
