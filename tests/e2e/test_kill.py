"""SIGKILL: a training process killed at a random point after its first checkpoint resumes to the same weights.

A real subprocess (`curvae train`), a real `kill -9` at seeded random moments, a real `--resume`; the final
weights are compared bit for bit with those of the same run never killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from curvae.core.errors import RunError
from curvae.training.run import load_checkpoint, load_state_dict

pytestmark = pytest.mark.slow
ARGS = ["--family", "beta", "--n-curves", "800", "--hidden", "32", "--steps", "4000", "--seed", "5",
        "--checkpoint-rounds", "5"]


def curvae(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "curvae", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_state_dict(run / "weights.pt", 2**26)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    p = curvae("train", *ARGS, "--out", str(out))
    assert p.wait(timeout=300) == 0, p.stderr.read()
    return out


@pytest.mark.parametrize("share", list(np.round(np.random.default_rng(2026).uniform(0.05, 0.7, 3), 2)))
def test_a_killed_run_resumes_to_the_uninterrupted_weights(reference, tmp_path, share):
    """Killed after a seeded share of the reference run's training time, counted from the first checkpoint."""
    out = tmp_path / "run"
    p = curvae("train", *ARGS, "--out", str(out))
    t = time.monotonic()
    while not (out / "summary.json").exists():  # the folder is published after the first round
        assert p.poll() is None and time.monotonic() - t < 120, p.stderr.read() if p.poll() is not None else "slow"
        time.sleep(0.01)
    time.sleep(share * json.loads((reference / "summary.json").read_text())["seconds"])
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(timeout=60) == -signal.SIGKILL, "the run ended before the kill: lengthen it"
    status = json.loads((out / "summary.json").read_text())["status"]
    assert status.startswith("running: checkpoint after round "), status
    done = load_checkpoint(out).state["epoch"]
    assert 1 <= done < 174
    r = curvae("train", "--resume", str(out))
    assert r.wait(timeout=300) == 0, r.stderr.read()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["resumed_from"] == [done]
    ref = weights(reference)
    got = weights(out)
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    assert summary["run_id"] == json.loads((reference / "summary.json").read_text())["run_id"]
    assert not list(tmp_path.glob(".run.*")), list(tmp_path.iterdir())  # no temporary folder or lock left


def test_a_second_trainer_on_a_running_run_is_refused(tmp_path):
    out = tmp_path / "run"
    long = [a if a != "4000" else "400000" for a in ARGS]  # still running when the second trainer starts
    p = curvae("train", *long, "--out", str(out))
    try:
        t = time.monotonic()
        while not (out / "summary.json").exists():
            assert p.poll() is None and time.monotonic() - t < 120
            time.sleep(0.01)
        r = subprocess.run([sys.executable, "-m", "curvae", "train", "--resume", str(out)], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 1 and "is being trained right now (process " in r.stderr + r.stdout
        assert "Traceback" not in r.stderr
    finally:
        p.kill()
        p.wait()


def test_a_half_written_checkpoint_is_never_read(reference, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")  # what a kill mid-write leaves
    assert load_checkpoint(run).state["epoch"] == 174  # the temporary file is not the checkpoint
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])  # a torn file (never written so by curvae)
    with pytest.raises(RunError, match="cannot be loaded safely"):
        load_checkpoint(run)
