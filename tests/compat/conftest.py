"""Fixtures of the compat tier: the venvs, the bundles, the shared inputs, and the matrix they fill.

Every compat test adds rows to one results table; when the session ends, the
table is written into ``docs/portability.md`` (between its ``compat``
markers) and ``docs/portability-matrix.json``. That page is never edited by
hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from envs import CONSTRAINTS, ORT_RELEASES, ORT_VENV, ROOT, declared_floors, ort_release, prefetch, venv  # noqa: E402
from matrix import write_matrix  # noqa: E402
from reference64 import Reference64  # noqa: E402

BATCHES = (1, 7, 1000)
RESULTS: list[dict] = []
_COMPAT = {"collected": set(), "finished": set()}


def _is_compat(nodeid: str) -> bool:
    return nodeid.replace("\\", "/").startswith("tests/compat/")


def pytest_collection_modifyitems(items):
    for item in items:
        if _is_compat(item.nodeid):
            item.add_marker(pytest.mark.compat)
            _COMPAT["collected"].add(item.nodeid)


def pytest_collection_finish(session):
    """A clean checkout has no environments: when compat tests are to run, build them all at once, in the
    background, while the first tests run."""
    if any(_is_compat(item.nodeid) for item in session.items):
        prefetch(*(lambda spec=spec: venv(*spec()) for spec in (oldest_spec, newest_spec, openvino_spec, witness_spec)),
                 _ort_releases)


def _ort_releases() -> None:
    py = venv(*ORT_VENV)
    for version in ORT_RELEASES:
        ort_release(py, version)


def pytest_runtest_logreport(report):
    if _is_compat(report.nodeid) and (report.when == "call" or report.skipped or report.failed):
        _COMPAT["finished"].add(report.nodeid)


def pytest_sessionfinish(session):
    """The matrix is rewritten only by a run of the whole compat tier (every test of every file here), so a
    partial run (one file, ``-k``) cannot shrink it."""
    files = {p.name for p in Path(__file__).parent.glob("test_*.py")}
    ran = {nodeid.replace("\\", "/").split("::")[0].rsplit("/", 1)[-1] for nodeid in _COMPAT["collected"]}
    if RESULTS and _COMPAT["collected"] and _COMPAT["collected"] <= _COMPAT["finished"] and files <= ran:
        write_matrix(RESULTS, ROOT / "docs")


@pytest.fixture(scope="session")
def results():
    return RESULTS


# ----------------------------------------------------------------- venvs
def oldest_spec() -> tuple[str, list[list[str]]]:
    """The oldest onnxruntime, numpy, scipy and click that pyproject.toml accepts, together."""
    pins = CONSTRAINTS.parent / "build" / "compat" / "oldest-pins.txt"
    pins.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{name}=={version}\n" for name, version in declared_floors().items())
    if not pins.exists() or pins.read_text() != text:
        pins.write_text(text)
    return "oldest", [["-c", str(pins), "-e", f"{ROOT}[cpu]"]]


def newest_spec() -> tuple[str, list[list[str]]]:
    """Whatever the registry has newest for every runtime dependency."""
    return "newest", [["--upgrade", "-e", f"{ROOT}[cpu]"]]


def openvino_spec() -> tuple[str, list[list[str]]]:
    """curvae[openvino]: onnxruntime's OpenVINO execution-provider build, and no other onnxruntime."""
    return "openvino-ep", [["-c", str(CONSTRAINTS), "-e", f"{ROOT}[openvino]"]]


def witness_spec() -> tuple[str, list[list[str]]]:
    return "witness", [["-r", str(Path(__file__).parent / "witness-requirements.txt")]]


@pytest.fixture(scope="session")
def oldest_py() -> Path:
    return venv(*oldest_spec())


@pytest.fixture(scope="session")
def newest_py() -> Path:
    return venv(*newest_spec())


@pytest.fixture(scope="session")
def openvino_ep_py() -> Path:
    return venv(*openvino_spec())


@pytest.fixture(scope="session")
def witness_py() -> Path:
    return venv(*witness_spec())


# --------------------------------------------------------------- bundles
@pytest.fixture(scope="session")
def fresh_bundle(tmp_path_factory) -> Path:
    """A bundle exported in this run, with the demo's network shape and both precision variants."""
    from curvae.export import ExportConfig
    from curvae.training.config import DataConfig, RunConfig, TrainConfig
    from curvae.training.export_run import export_run
    from curvae.training.loop import train

    base = tmp_path_factory.mktemp("compat")
    train(RunConfig(data=DataConfig(n_curves=2000), train=TrainConfig(epochs=6, seed=5)), base / "run")
    # The encoder and decoder are what the other runtimes run: no parameter head, no emulator.
    export_run(base / "run", base / "model", config=ExportConfig(params=False), variants={"fp16": 0.05, "int8": 0.5})
    return base / "model"


@pytest.fixture(scope="session")
def bundles(fresh_bundle) -> dict[str, Path]:
    return {"golden": ROOT / "tests" / "fixtures" / "golden", "fresh": fresh_bundle}


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> Path:
    """Beta curves, noise and codes at batches 1, 7 and 1000, and 64 fit targets, in one .npz."""
    from curvae.families import get_family

    g = np.random.default_rng(2026)
    curves, _ = get_family("beta").sample(1000 + 64, seed=99)
    data = {"targets": curves[1000:]}
    for b in BATCHES:
        data[f"x_b{b}"] = curves[:b]
        data[f"eps_b{b}"] = g.standard_normal((b, 2)).astype(np.float32)
        data[f"z_b{b}"] = g.standard_normal((b, 2)).astype(np.float32)
    path = tmp_path_factory.mktemp("inputs") / "inputs.npz"
    np.savez(path, **data)
    return path


@pytest.fixture(scope="session")
def expected(bundles, inputs) -> dict[str, dict[str, np.ndarray]]:
    """Float64 outputs of each bundle's float32 graphs for the shared inputs (see reference64.py)."""
    data = np.load(inputs)
    out = {}
    for name, path in bundles.items():
        ref = Reference64(path)
        e = {}
        for b in BATCHES:
            e[f"z_b{b}"], e[f"mu_b{b}"], e[f"logvar_b{b}"] = ref.encode(data[f"x_b{b}"], data[f"eps_b{b}"])
            e[f"x_hat_b{b}"] = ref.decode(data[f"z_b{b}"])
        e["sample"] = ref.decode(np.random.default_rng(7).standard_normal((50, 2)).astype(np.float32))
        e["decode64"] = ref.decode  # for checking a fit's residual in float64
        out[name] = e
    return out


@pytest.fixture(scope="session")
def ort_cpu(bundles, inputs) -> dict[str, dict[str, np.ndarray]]:
    """The pinned onnxruntime CPU provider's outputs (this environment), the witnesses' reference."""
    from curvae.runtime import CurveModel

    data = np.load(inputs)
    out = {}
    for name, path in bundles.items():
        for variant in [None, "fp16", "int8"] if name == "fresh" else [None]:
            m = CurveModel.load(path, providers="cpu", variant=variant)
            o = {}
            for b in BATCHES:
                o[f"z_b{b}"], o[f"mu_b{b}"], o[f"logvar_b{b}"] = m.encode_with_noise(data[f"x_b{b}"],
                                                                                     data[f"eps_b{b}"])
                o[f"x_hat_b{b}"] = m.decode(data[f"z_b{b}"])
            fit = m.fit(data["targets"])
            o.update(sample=m.sample(50, seed=7), fit_z=fit.z, fit_residual=fit.residual)
            out[name if variant is None else f"{name}.{variant}"] = o
    return out


def load_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def facts_of(out: dict) -> dict:
    return json.loads(str(out["facts"])) if "facts" in out else {}
