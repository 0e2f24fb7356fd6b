"""Training from files larger than memory: a .npy or .zarr read by blocks, with bounded memory, exactly resumable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curvae.families import get_family

pytestmark = pytest.mark.slow
ARGS = ["--stream", "on", "--hidden", "32", "--steps", "1200", "--seed", "2"]


def train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curvae", "train", *args], capture_output=True, text=True,
                          timeout=600)


def summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


@pytest.fixture(scope="module")
def curves_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("stream")
    curves, _ = get_family("beta").sample(20_000, seed=9)
    np.save(base / "c.npy", curves)
    import zarr

    z = zarr.open_array(str(base / "c.zarr"), mode="w", shape=curves.shape, chunks=(4096, 100), dtype="float32",
                        zarr_format=2)
    z[:] = curves
    return base / "c.npy", base / "c.zarr"


def test_npy_and_zarr_stream_to_the_same_run_and_resume_exactly(curves_files, tmp_path):
    npy, zarr_path = curves_files
    runs = {}
    for name, path in (("npy", npy), ("zarr", zarr_path)):
        r = train("--data", str(path), *ARGS, "--out", str(tmp_path / name))
        assert r.returncode == 0, r.stderr
        runs[name] = summary(tmp_path / name)
    assert runs["npy"]["run_id"] == runs["zarr"]["run_id"] and runs["npy"]["family"]["streamed"] is True
    assert runs["npy"]["n_train"] + runs["npy"]["n_val"] == 20_000 and runs["npy"]["n_val"] == 2048
    out = tmp_path / "stopped"
    assert train("--data", str(npy), *ARGS, "--stop-after", "7", "--out", str(out)).returncode == 0
    assert train("--resume", str(out)).returncode == 0
    assert summary(out)["run_id"] == runs["npy"]["run_id"]


def test_a_bad_value_deep_in_a_streamed_file_is_named_before_training(tmp_path):
    curves, _ = get_family("beta").sample(5_000, seed=1)
    curves[4321, 17] = np.nan
    np.save(tmp_path / "bad.npy", curves)
    r = train("--data", str(tmp_path / "bad.npy"), *ARGS, "--out", str(tmp_path / "run"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "curves in bad.npy[4321, 17] = nan is not finite" in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


#: Runs `curvae train` in a fresh interpreter and prints that process's own peak RSS (VmHWM, which exec resets):
#: a child's ru_maxrss would also count the pages of the test process it was forked from, which grow with the
#: tests that ran before it.
PEAK = """
import runpy, sys
sys.argv = ["curvae", "train", *sys.argv[1:]]
try:
    runpy.run_module("curvae", run_name="__main__")
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
print("VmHWM", next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1])
"""


def _peak_rss_mib(args: list[str]) -> float:
    p = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return int(p.stdout.split("VmHWM")[-1].split()[0]) / 1024


def test_peak_memory_does_not_grow_with_the_file(tmp_path):
    """1.2 million curves (480 MB) against 24,000 (9.6 MB): the same peak RSS within 64 MiB.

    Both files are past what a run keeps in memory whatever the file (the 20,000-curve sample for the scaling,
    the PCA start and the summaries; at most 5,000 held-out curves), so they differ only in what streams.
    """
    small, big = tmp_path / "small.npy", tmp_path / "big.npy"
    block, _ = get_family("beta").sample(12_000, seed=3)
    np.save(small, np.concatenate([block, block[::-1]]))
    # Written by a process of its own: this one never maps the big file, so no child inherits its pages.
    subprocess.run([sys.executable, "-c", f"import numpy as np; b = np.load({str(small)!r}); "
                    f"mm = np.lib.format.open_memmap({str(big)!r}, mode='w+', dtype=np.float32, shape=(1_200_000, 100))"
                    "\nfor i in range(50): mm[i * 24000:(i + 1) * 24000] = b\nmm.flush()"], check=True)
    args = [*ARGS, "--steps", "600"]
    rss_small = _peak_rss_mib(["--data", str(small), *args, "--out", str(tmp_path / "s")])
    rss_big = _peak_rss_mib(["--data", str(big), *args, "--out", str(tmp_path / "b")])
    assert rss_small < 1024, rss_small  # a plain training process, not one that inherited a mapped file
    assert rss_big - rss_small <= 64, (f"peak RSS grew by {rss_big - rss_small:.0f} MiB ({rss_small:.0f} -> "
                                       f"{rss_big:.0f}) for a 50x larger file")
    assert summary(tmp_path / "b")["n_train"] + summary(tmp_path / "b")["n_val"] == 1_200_000
