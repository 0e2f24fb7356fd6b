"""Training on more than one process: `curvae train --nproc 2` and `torchrun -m curvae train`, with gloo on this CPU.

Real processes, real collectives: the two launches give the same run, a stop and a resume give the same run
as a straight one, a killed rank ends the job with one line (never a hang) and leaves a checkpoint that resumes,
and a non-finite loss stops every rank.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ARGS = ["--family", "beta", "--n-curves", "800", "--hidden", "32", "--steps", "2400", "--seed", "4",
        "--sync-every", "8", "--checkpoint-rounds", "4"]


def run(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curvae", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "run"
    r = run("train", *ARGS, "--nproc", "2", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_two_processes_train_and_report_once(straight):
    s = summary(straight)
    assert s["status"] == "complete" and s["world_size"] == 2 and s["sync_every"] == 8
    assert s["steps_per_rank"] == 1260 and s["steps"] == 2 * 1260 and s["n_train"] == 720  # 105 rounds of 12


def test_torchrun_gives_the_same_run_as_nproc(straight, tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "-m", "curvae", "train", *ARGS, "--out", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert summary(out)["run_id"] == summary(straight)["run_id"]
    assert r.stdout.count(f"run {out} (complete)") == 1  # rank 0 reports; the other rank is quiet


def test_stop_and_resume_with_two_processes_is_the_straight_run(straight, tmp_path):
    out = tmp_path / "run"
    assert run("train", *ARGS, "--nproc", "2", "--stop-after", "5", "--out", str(out)).returncode == 0
    assert summary(out)["status"] == "stopped after epoch 5"
    r = run("train", "--resume", str(out), "--nproc", "1")
    assert r.returncode == 1 and "was trained by 2 processes and this job has 1; resume it with --nproc 2" in r.stderr
    r = run("train", "--resume", str(out), "--nproc", "2")
    assert r.returncode == 0, r.stderr
    assert summary(out)["run_id"] == summary(straight)["run_id"] and summary(out)["resumed_from"] == [5]


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def test_a_killed_rank_ends_the_job_with_one_line_and_the_checkpoint_resumes(straight, tmp_path):
    out = tmp_path / "run"
    args = [a if a != "2400" else "9600" for a in ARGS]  # long enough to kill mid-run
    p = subprocess.Popen([sys.executable, "-m", "curvae", "train", *args, "--nproc", "2", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = time.monotonic()
    while not (out / "summary.json").exists():
        assert p.poll() is None and time.monotonic() - t < 120
        time.sleep(0.02)
    time.sleep(0.5)
    ranks = sorted(_children(p.pid))
    assert len(ranks) == 2
    os.kill(ranks[1], signal.SIGKILL)
    _, err = p.communicate(timeout=60)  # never a hang
    assert p.returncode == 1 and "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("Error: ")] == [err.strip().splitlines()[-1]]
    assert "rank 1 of 2 failed" in err and "killed by signal 9" in err
    assert summary(out)["status"].startswith("running: checkpoint after round ")
    r = run("train", "--resume", str(out), "--nproc", "2")
    assert r.returncode == 0, r.stderr
    assert summary(out)["status"] == "complete"


def test_rank_zero_alone_reports_a_lost_rank_within_the_timeout(tmp_path):
    """Without a launcher to stop it, rank 0 sees the lost rank in its next collective and stops with one line."""
    out = tmp_path / "run"
    args = [a if a != "2400" else "9600" for a in ARGS]
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_port())}
    procs = [subprocess.Popen([sys.executable, "-m", "curvae", "train", *args, "--out", str(out)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    t = time.monotonic()
    while not (out / "summary.json").exists():
        assert all(p.poll() is None for p in procs) and time.monotonic() - t < 120
        time.sleep(0.02)
    time.sleep(0.3)
    procs[1].kill()
    _, err = procs[0].communicate(timeout=150)
    assert procs[0].returncode == 1 and "Traceback" not in err, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: rank 0 of 2 lost the other ranks") and "the last checkpoint in" in line, line
    assert "resume with the same number of processes" in line
    procs[1].wait()


def test_a_non_finite_loss_stops_every_rank(tmp_path):
    out = tmp_path / "run"
    r = run("train", *ARGS, "--lr", "1e7", "--lr-final", "1e6", "--nproc", "2", "--out", str(out))
    assert r.returncode == 1 and "loss became non-finite at epoch 1" in r.stderr, r.stderr
    assert "no epoch completed, so nothing was written" in r.stderr and not out.exists()
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("Error: ")]) == 1


def _port() -> int:
    from curvae.training.parallel.launch import free_port

    return free_port()
