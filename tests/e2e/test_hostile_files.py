"""Hostile bundles and run folders: each gets one line, a non-zero exit and no traceback, in bounded memory.

Every case runs the real ``curvae`` command in a subprocess whose address
space is capped (RLIMIT_AS), so a read that ran away would die with
MemoryError instead of passing.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from hostile import nested_if_model  # noqa: E402

MEMORY_LIMIT = 1024 * 2**20  # `curvae info` on a real bundle runs in under 512 MiB of address space here
TIME_LIMIT = 60.0
CLI = [sys.executable, "-m", "curvae.cli"]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(*args) -> subprocess.CompletedProcess:
    t0 = time.perf_counter()
    res = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, preexec_fn=_limit_memory,
                         timeout=TIME_LIMIT)
    res.seconds = time.perf_counter() - t0
    return res


def assert_one_line_refusal(res, *fragments) -> None:
    assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr and "MemoryError" not in res.stderr, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def rehash(bundle: Path, name: str) -> None:
    """Update the manifest's hash after a graph was replaced: a hostile author can always do this."""
    m = json.loads((bundle / "manifest.json").read_text())
    m["graphs"][name]["sha256"] = hashlib.sha256((bundle / f"{name}.onnx").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(m))


def test_deeply_nested_manifest_key(bundle_copy):
    m = json.loads((bundle_copy / "manifest.json").read_text())
    text = json.dumps(m)[:-1] + ', "unused": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (bundle_copy / "manifest.json").write_text(text)
    assert_one_line_refusal(run_cli("info", bundle_copy), "manifest.json nests 100001 levels deep, over the cap")


def test_graph_symlinked_to_dev_zero(bundle_copy):
    (bundle_copy / "encoder.onnx").unlink()
    os.symlink("/dev/zero", bundle_copy / "encoder.onnx")
    assert_one_line_refusal(run_cli("info", bundle_copy), "encoder.onnx is a symlink to '/dev/zero', outside its folder")


def test_graph_as_a_huge_sparse_file(bundle_copy):
    with open(bundle_copy / "decoder.onnx", "r+b") as fh:
        fh.truncate(64 * 2**30)  # 64 GiB, no disk used
    res = run_cli("check", bundle_copy)
    assert_one_line_refusal(res, "decoder.onnx is 68719476736 bytes, over the", "-byte cap for this file")
    assert res.seconds < 30


def test_graph_with_thousands_of_nested_subgraphs(bundle_copy):
    (bundle_copy / "decoder.onnx").write_bytes(nested_if_model(5000))
    rehash(bundle_copy, "decoder")
    assert_one_line_refusal(run_cli("info", bundle_copy), "decoder.onnx is not a readable ONNX model",
                            "subgraphs nested deeper than 64 levels")


def test_nan_in_the_manifest_grid(bundle_copy):
    text = (bundle_copy / "manifest.json").read_text()
    m = json.loads(text)
    m["grid"][7] = "__NAN__"
    (bundle_copy / "manifest.json").write_text(json.dumps(m).replace('"__NAN__"', "NaN"))
    assert_one_line_refusal(run_cli("info", bundle_copy), "manifest.json is not valid JSON", "NaN is not a JSON number")
    m["grid"][7] = 1e400 if False else m["grid"][6]  # a repeated value: not strictly increasing
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    assert_one_line_refusal(run_cli("info", bundle_copy), "grid[7] does not increase")


def test_deeply_nested_run_config(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"]["extra"] = json.loads("[" * 50 + "]" * 50)
    text = json.dumps(cfg)[:-1] + ', "x": ' + "[" * 200_000 + "]" * 200_000 + "}"
    (run / "config.json").write_text(text)
    assert_one_line_refusal(run_cli("export", run, "--out", tmp_path / "m"), "config.json nests", "over the cap")
    assert not (tmp_path / "m").exists()
    assert_one_line_refusal(run_cli("train", "--resume", run), "config.json nests")


def test_run_weights_symlinked_outside_and_a_fifo_checkpoint(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "weights.pt").unlink()
    os.symlink("/dev/zero", run / "weights.pt")
    assert_one_line_refusal(run_cli("export", run, "--out", tmp_path / "m"), "weights.pt is a symlink")
    (run / "checkpoint.pt").unlink()
    os.mkfifo(run / "checkpoint.pt")  # opening a FIFO for reading would block forever
    assert_one_line_refusal(run_cli("train", "--resume", run), "checkpoint.pt is not a regular file")


def test_symlink_inside_the_bundle_is_followed(bundle_copy):
    (bundle_copy / "store").mkdir()
    shutil.move(bundle_copy / "decoder.onnx", bundle_copy / "store" / "decoder.bin")
    os.symlink("store/decoder.bin", bundle_copy / "decoder.onnx")
    res = run_cli("info", bundle_copy)
    # the graph is read through the link; the extra folder is then refused by the exact-file-set rule
    assert_one_line_refusal(res, "unexpected files ['store']")
