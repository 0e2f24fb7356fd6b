"""Fuzzing the readers of files other people write: manifests, graph bytes, run folders.

The only outcomes allowed are success or a typed ``CurvaeError``, within a
time budget (hypothesis' deadline) and a memory budget (tracemalloc's peak)
per example. ``CURVAE_FUZZ_EXAMPLES`` sets the examples per test (``make
fuzz`` runs many more); the counts are printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from hostile import nested_if_model  # noqa: E402

from curvae.core.errors import CurvaeError  # noqa: E402
from curvae.runtime.bundle.format import read_bundle, read_manifest, vet_graph  # noqa: E402
from curvae.runtime.bundle.scan import scan_model  # noqa: E402

pytestmark = pytest.mark.fuzz

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
EXAMPLES = int(os.environ.get("CURVAE_FUZZ_EXAMPLES", "150"))
MEMORY_BUDGET = 64 * 2**20  # per example, above what the reader itself needs for the golden bundle
FUZZ = settings(max_examples=EXAMPLES, deadline=2000, derandomize=os.environ.get("CURVAE_FUZZ_EXAMPLES") is None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
COUNTS: dict[str, int] = {}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30)


def outcome(kind: str, call) -> None:
    """Run ``call``: it may succeed or raise CurvaeError, within the memory budget; anything else fails."""
    COUNTS[kind] = COUNTS.get(kind, 0) + 1
    tracemalloc.start()
    try:
        call()
    except CurvaeError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MEMORY_BUDGET, f"{kind}: peak {peak / 2**20:.0f} MiB"


@pytest.fixture(scope="module")
def golden_manifest() -> dict:
    return json.loads((GOLDEN / "manifest.json").read_text())


@pytest.fixture
def bundle(tmp_path) -> Path:
    dst = tmp_path / "b"
    shutil.copytree(GOLDEN, dst)
    return dst


def paths(tree, prefix=()):
    """Every key path of a JSON tree."""
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree[:3]):
            yield from paths(v, (*prefix, i))


@FUZZ
@given(data=st.data())
def test_mutated_manifests(golden_manifest, tmp_path_factory, data):
    """The real manifest with one to three values replaced by random JSON, or deleted."""
    m = json.loads(json.dumps(golden_manifest))
    all_paths = [p for p in paths(m) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(all_paths))
        parent = m
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue
    folder = tmp_path_factory.mktemp("m")
    shutil.copytree(GOLDEN, folder / "b")
    (folder / "b" / "manifest.json").write_text(json.dumps(m))
    outcome("mutated manifests", lambda: read_bundle(folder / "b"))


@FUZZ
@given(doc=json_values | st.binary(max_size=300))
def test_arbitrary_manifest_documents(bundle, doc):
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    (bundle / "manifest.json").write_bytes(raw)
    outcome("arbitrary manifests", lambda: read_manifest(bundle))


def _mutations():
    golden = (GOLDEN / "decoder.onnx").read_bytes()
    flip = st.tuples(st.integers(0, len(golden) - 1), st.integers(1, 255)).map(
        lambda t: golden[:t[0]] + bytes([golden[t[0]] ^ t[1]]) + golden[t[0] + 1:])
    truncate = st.integers(0, len(golden) - 1).map(lambda n: golden[:n])
    insert = st.tuples(st.integers(0, len(golden)), st.binary(min_size=1, max_size=12)).map(
        lambda t: golden[:t[0]] + t[1] + golden[t[0]:])
    overflow = st.tuples(st.integers(0, len(golden) - 1), st.sampled_from([b"\xff" * 9 + b"\x01", b"\xff\xff\xff\x7f",
                                                                           b"\x80" * 11])).map(
        lambda t: golden[:t[0]] + t[1] + golden[t[0] + len(t[1]):])
    bomb = st.integers(1, 3000).map(nested_if_model)
    return st.one_of(flip, truncate, insert, overflow, bomb, st.binary(max_size=400))


@FUZZ
@given(data=_mutations())
def test_mutated_graph_bytes(data):
    def scan():
        facts = scan_model(data, name="decoder.onnx")
        vet_graph(data, facts.opsets.get("", 0), facts.ir_version, name="decoder.onnx")

    outcome("graph byte strings", scan)


@settings(max_examples=max(10, EXAMPLES // 5), deadline=5000, derandomize=FUZZ.derandomize,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(index=st.integers(0, 18000), value=st.integers(1, 255))
def test_mutated_graphs_through_onnxruntime(bundle, index, value):
    """Byte flips that keep a graph parseable go all the way to onnxruntime (hash updated to match)."""
    from curvae.runtime import CurveModel

    path = bundle / "decoder.onnx"
    data = bytearray((GOLDEN / "decoder.onnx").read_bytes())
    data[index % len(data)] ^= value
    path.write_bytes(bytes(data))
    m = json.loads((bundle / "manifest.json").read_text())
    import hashlib

    m["graphs"]["decoder"]["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(m))

    def load_and_run():
        model = CurveModel.load(bundle, providers="cpu")
        model.decode(np.zeros((3, model.latent_dim), np.float32))

    outcome("graphs loaded by onnxruntime", load_and_run)


@FUZZ
@given(which=st.sampled_from(["config.json", "history.json", "summary.json", "weights.pt", "checkpoint.pt"]),
       doc=json_values | st.binary(max_size=300))
def test_run_folders(run_dir, tmp_path_factory, which, doc):
    from curvae.training.run import load_checkpoint, load_run

    run = tmp_path_factory.mktemp("r") / "run"
    shutil.copytree(run_dir, run)
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    (run / which).write_bytes(raw)
    outcome("run folders", lambda: (load_run(run), load_checkpoint(run)))
