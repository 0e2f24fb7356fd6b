"""Training faults: non-finite losses, interrupts, resume, and checkpoints that must never run code."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from curvae.core.errors import RunError, TrainingError
from curvae.training.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from curvae.training.export_run import export_run
from curvae.training.loop import resume, train
from curvae.training.run import load_checkpoint, load_run

pytestmark = pytest.mark.slow


def cfg(**train_kw) -> RunConfig:
    return RunConfig(data=DataConfig(n_curves=300), model=ModelConfig(hidden=16),
                     train=TrainConfig(**{"epochs": 6, "batch_size": 64, "seed": 2, "device": "cpu", **train_kw}))


def strip_time(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_non_finite_loss_keeps_the_last_good_epoch_and_exports_nothing(tmp_path):
    # log σ² is clamped (an overflowing exp was the usual way to NaN), so only a wild step size still gets there
    bad = cfg(epochs=40, warmup_epochs=40, lr=1e5, lr_final=1e-3, seed=0)
    with pytest.raises(TrainingError, match=r"non-finite at epoch (\d+) .* last good epoch \(\d+\) is kept"):
        train(bad, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"].startswith("failed: non-finite loss at epoch")
    assert summary["epochs_done"] == len(json.loads((tmp_path / "run" / "history.json").read_text())) >= 1
    assert all(torch.isfinite(t).all() for t in load_run(tmp_path / "run").model.state_dict().values())
    with pytest.raises(RunError, match="is not complete .* before exporting"):
        export_run(tmp_path / "run", tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_loss_that_explodes_at_once_writes_nothing(tmp_path):
    with pytest.raises(TrainingError, match="no epoch completed, so nothing was written"):
        train(cfg(lr=1e10, lr_final=1e9), tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_k_epochs_plus_resume_equal_the_straight_run(tmp_path):
    straight = train(cfg(), tmp_path / "straight")
    stopped = train(cfg(), tmp_path / "resumed", stop_after=2)
    assert stopped["status"] == "stopped after epoch 2" and stopped["epochs_done"] == 2
    with pytest.raises(RunError, match="is not complete"):
        export_run(tmp_path / "resumed", tmp_path / "m")
    done = resume(tmp_path / "resumed")
    assert done["status"] == "complete" and done["run_id"] == straight["run_id"]
    a, b = tmp_path / "straight", tmp_path / "resumed"
    assert (a / "weights.pt").read_bytes() == (b / "weights.pt").read_bytes()
    assert strip_time(json.loads((a / "history.json").read_text())) == strip_time(
        json.loads((b / "history.json").read_text()))
    with pytest.raises(TrainingError, match="is already complete"):
        resume(b)


def test_resume_into_another_folder_keeps_the_original(tmp_path):
    train(cfg(), tmp_path / "part", stop_after=3)
    before = (tmp_path / "part" / "weights.pt").read_bytes()
    resume(tmp_path / "part", out=tmp_path / "full")
    assert (tmp_path / "part" / "weights.pt").read_bytes() == before
    assert json.loads((tmp_path / "full" / "summary.json").read_text())["epochs_done"] == 6


def test_resume_refuses_changed_data(tmp_path):
    data = np.random.default_rng(0).normal(size=(100, 10))
    np.save(tmp_path / "d.npy", data)
    c = RunConfig(data=DataConfig(data=str(tmp_path / "d.npy")), model=ModelConfig(hidden=8),
                  train=TrainConfig(epochs=3, seed=0, device="cpu"))
    train(c, tmp_path / "run", stop_after=1)
    np.save(tmp_path / "d.npy", data + 1)
    with pytest.raises(TrainingError, match="the training data differ"):
        resume(tmp_path / "run")


def test_checkpoint_of_another_layout_is_refused_with_a_fix(tmp_path):
    train(cfg(), tmp_path / "run", stop_after=2)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    del state["average"]  # as written by a version without the weight average
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    with pytest.raises(RunError, match="is not a checkpoint of this curvae version .* retrain the run"):
        resume(tmp_path / "run")


def test_weight_average_is_what_gets_written_and_ema_zero_writes_the_last_weights(tmp_path):
    averaged = train(cfg(), tmp_path / "avg")
    last = train(cfg(ema=0.0), tmp_path / "last")
    assert averaged["run_id"] != last["run_id"]  # same data, noise and steps; only the written weights differ
    a, b = load_run(tmp_path / "avg").model.state_dict(), load_run(tmp_path / "last").model.state_dict()
    gap = max(float((a[k] - b[k]).abs().max()) for k in a if "weight" in k)
    assert 0 < gap < 0.5  # an average of nearby weights: different, but close


class Exploit:
    """Unpickling this writes a marker file: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("target", ["weights.pt", "checkpoint.pt"])
def test_planted_code_in_a_checkpoint_never_runs(run_dir, tmp_path, target):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    marker = tmp_path / "pwned"
    with open(run / target, "wb") as fh:
        pickle.dump({"w": Exploit(marker)}, fh)
    loader = load_run if target == "weights.pt" else load_checkpoint
    with pytest.raises(RunError, match="cannot be loaded safely .* nothing in it was run"):
        loader(run)
    assert not marker.exists()


def test_sigterm_during_training_keeps_the_last_epoch_and_leaves_no_temp(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "curvae.cli", "train", "--n-curves", "2000", "--epochs", "5000",
                             "--hidden", "32", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("Error: training interrupted; the last good epoch")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"].startswith("interrupted after epoch") and summary["epochs_done"] >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folder left behind
    ckpt = load_checkpoint(out)
    assert ckpt.state["epoch"] == summary["epochs_done"]
