"""Shared fixtures: one small real training run and its exported bundle per test session."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden"


def small_config(**train_kw):
    from curvae.training.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    return RunConfig(data=DataConfig(family="beta", n_curves=400), model=ModelConfig(hidden=32),
                     train=TrainConfig(**{"steps": 600, "batch_size": 64, "seed": 3, **train_kw}))


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """A real (tiny) training run folder."""
    from curvae.training.loop import train

    out = tmp_path_factory.mktemp("run") / "run"
    train(small_config(), out)
    return out


@pytest.fixture(scope="session")
def bundle_dir(run_dir, tmp_path_factory) -> Path:
    """The bundle exported from :func:`run_dir` with the real exporter."""
    from curvae.training.export_run import export_run

    out = tmp_path_factory.mktemp("bundle") / "model"
    export_run(run_dir, out)
    return out


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path) -> Path:
    """A private copy of the bundle that a test may damage."""
    import shutil

    dst = tmp_path / "model"
    shutil.copytree(bundle_dir, dst)
    return dst


@pytest.fixture(scope="session")
def beta_targets() -> np.ndarray:
    from curvae.families import get_family

    curves, _ = get_family("beta").sample(64, seed=777)
    return curves


def pytest_terminal_summary(terminalreporter):
    """Report how many fuzz examples ran (each ended in success or a typed CurvaeError)."""
    mod = sys.modules.get("test_fuzz_files")
    counts = getattr(mod, "COUNTS", None)
    if counts:
        total = sum(counts.values())
        parts = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        failed = [r for r in terminalreporter.stats.get("failed", []) if "test_fuzz_files" in r.nodeid]
        verdict = f"{len(failed)} fuzz tests FAILED" if failed else "none raised anything but CurvaeError"
        terminalreporter.write_line(f"fuzz: {total} examples ({parts}); {verdict}")


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory) -> Path:
    """The default network trained for 30 epochs (about 2 s): good enough to tell family from foreign."""
    from curvae.training.config import RunConfig, TrainConfig
    from curvae.training.export_run import export_run
    from curvae.training.loop import train

    base = tmp_path_factory.mktemp("trained")
    train(RunConfig(train=TrainConfig(epochs=30, seed=1)), base / "run")
    export_run(base / "run", base / "model")
    return base / "model"


@pytest.fixture(scope="session")
def dask_client():
    """A LocalCluster of 2 worker processes with 1 thread each, started once per session, and its client."""
    import logging

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


#: The families whose emulator a test measures (tests/parity/test_emulator_accuracy.py); the others' default models
#: are exported with their parameter head and without the emulator, which is most of an export's time.
EMULATED = ("beta",)


@pytest.fixture(scope="session")
def default_model(tmp_path_factory):
    """``default_model(family)``: the default recipe trained on a family and exported, once per session."""
    from curvae.export import ExportConfig
    from curvae.runtime import CurveModel
    from curvae.training.config import DataConfig, RunConfig
    from curvae.training.export_run import export_run
    from curvae.training.loop import train

    cache: dict[str, Path] = {}

    def get(family: str) -> CurveModel:
        if family not in cache:
            base = tmp_path_factory.mktemp(f"default-{family}")
            train(RunConfig(data=DataConfig(family=family)), base / "run")
            export_run(base / "run", base / "model", config=ExportConfig(emulator=family in EMULATED))
            cache[family] = base / "model"
        return CurveModel.load(cache[family])

    return get
