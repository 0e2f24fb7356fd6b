"""Training that survives a kill and scales: checkpoint cost, two processes against one, memory on a 4 GB file.

    python benchmarks/bench_train_scale.py            # writes results/train_scale.json
    python benchmarks/bench_train_scale.py --gb 4     # the size of the streamed .npy (default 4)

Every figure is measured side by side in this run, on the default recipe (Beta, 5,000 curves, 12,000 steps):

- **checkpoints**: the default policy (every 5 s) against one checkpoint only, best of 3 interleaved rounds of
  the training time (``summary.json`` ``seconds``), and the checkpoints' own time;
- **processes**: an all-reduce of the flat parameters with gloo between two processes, against one batch-32
  step; then one process against two (``--nproc 2``) at several step budgets and sync intervals, each run
  exported and scored by its held-out fit residual (median and p90, the runtime's default fit), wall time
  of the whole command and training time;
- **memory**: peak RSS of ``curvae train --stream on`` from a ``.npy`` of ``--gb`` GB against the same from a
  12,000-curve file (the same code path), each in its own process (``wait4``'s ``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from curvae.families import get_family  # noqa: E402


def curvae(*args: str) -> tuple[float, float]:
    """Run ``curvae <args>``; returns (wall seconds, peak RSS MiB)."""
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "curvae", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"curvae {' '.join(args)} failed: {p.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def quality(run: Path, work: Path) -> dict:
    from curvae.runtime import CurveModel

    curvae("export", str(run), "--out", str(work / "model"), "--no-params", "--force")
    rec = CurveModel.load(work / "model").manifest.fit_residuals
    return {"fit_residual_median": rec.quantile(0.5), "fit_residual_p90": rec.quantile(0.9)}


def allreduce_ms(n: int, rounds: int = 300) -> float:
    """Median time of one gloo all-reduce of ``n`` float32 between two local processes (spawned)."""
    code = f"""
import os, time, torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.randn({n})
for _ in range(20): dist.all_reduce(t)
times = []
for _ in range({rounds}):
    s = time.perf_counter(); dist.all_reduce(t); times.append(time.perf_counter() - s)
if dist.get_rank() == 0: print(sorted(times)[len(times) // 2] * 1e3)
dist.destroy_process_group()
"""
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "--no-python", sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def step_ms() -> float:
    """One batch-32 step of the default network (forward, hand-written gradient, Adam), median of 2,000."""
    import torch

    from curvae.training.config import RunConfig, TrainConfig
    from curvae.training.trainer import Trainer

    torch.set_num_threads(1)
    tr = Trainer(RunConfig(train=TrainConfig(steps=2000)))
    x = tr.x_scaled[:32]
    eps = torch.randn(32, 2)
    post, sse = torch.empty(32, 4), torch.empty(())
    times = []
    with torch.no_grad():
        for _ in range(2000):
            t = time.perf_counter()
            tr.gradient(x, eps, 1.0, posterior_out=post, sse_out=sse)
            tr.opt.step(1e-3)
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2] * 1e3


def checkpoints(work: Path, rounds: int = 5) -> dict:
    rows = {"default (every 5 s)": [], "first only": []}
    record = {}
    pair = [("default (every 5 s)", []), ("first only", ["--checkpoint-seconds", "0"])]
    for i in range(rounds):  # interleaved, and in alternating order (the second run of a pair finds warmer caches)
        for label, extra in (pair if i % 2 == 0 else pair[::-1]):
            out = work / "ck"
            curvae("train", "--family", "beta", "--out", str(out), "--force", *extra)
            s = summary(out)
            rows[label].append(s["seconds"])
            record[label] = s["checkpoints"]
    best = {k: min(v) for k, v in rows.items()}
    return {"train_seconds": best, "checkpoints": record,
            "added": best["default (every 5 s)"] / best["first only"] - 1.0,
            "own_share": record["default (every 5 s)"]["seconds"] / best["default (every 5 s)"]}


CONFIGS = [  # (label, nproc, total steps, sync_every)
    ("1 process, 12,000 steps", 1, 12_000, 64),
    ("2 processes, 12,000 steps (6,000 each), sync 64", 2, 12_000, 64),
    ("2 processes, 12,000 steps, sync 8", 2, 12_000, 8),
    ("2 processes, 12,000 steps, sync every step", 2, 12_000, 1),
    ("2 processes, 18,000 steps (9,000 each), sync 64", 2, 18_000, 64),
    ("2 processes, 24,000 steps (12,000 each), sync 64", 2, 24_000, 64),
]


def processes(work: Path, repeat: int = 2) -> list[dict]:
    rows = []
    for label, nproc, steps, sync in CONFIGS:
        walls, trains = [], []
        for _ in range(repeat):
            out = work / "p"
            wall, _ = curvae("train", "--family", "beta", "--steps", str(steps), "--nproc", str(nproc),
                             "--sync-every", str(sync), "--out", str(out), "--force")
            walls.append(wall)
            trains.append(summary(out)["seconds"])
        rows.append({"config": label, "nproc": nproc, "steps": steps, "sync_every": sync, "wall_s": min(walls),
                     "train_s": min(trains), **quality(work / "p", work)})
        print(f"  {label}: wall {min(walls):.1f}s, training {min(trains):.1f}s, fit residual median "
              f"{rows[-1]['fit_residual_median']:.4f}, p90 {rows[-1]['fit_residual_p90']:.4f}", flush=True)
    base = rows[0]
    for r in rows:
        r["wall_ratio"], r["train_ratio"] = r["wall_s"] / base["wall_s"], r["train_s"] / base["train_s"]
        r["median_ratio"] = r["fit_residual_median"] / base["fit_residual_median"]
        r["p90_ratio"] = r["fit_residual_p90"] / base["fit_residual_p90"]
    return rows


def write_big(path: Path, block_path: Path, rows: int) -> None:
    """Write a ``rows``-curve .npy by repeating the curves of ``block_path``, in a process of its own (a parent
    that had mapped the file would hand its resident pages to every child it starts, and to their ru_maxrss)."""
    code = (f"import numpy as np; b = np.load({str(block_path)!r}); n = {rows}; "
            f"mm = np.lib.format.open_memmap({str(path)!r}, mode='w+', dtype=np.float32, shape=(n, b.shape[1]))\n"
            "for i in range(0, n, len(b)): mm[i:i + len(b)] = b[: n - i]\nmm.flush()")
    subprocess.run([sys.executable, "-c", code], check=True)


def memory(work: Path, gb: float) -> dict:
    block, _ = get_family("beta").sample(12_000, seed=3)
    small, big = work / "small.npy", work / "big.npy"
    np.save(small, block)
    n = int(gb * 1e9 / (100 * 4)) // len(block) * len(block)
    write_big(big, small, n)
    size = big.stat().st_size
    args = ["--stream", "on", "--force"]
    wall_small, rss_small = curvae("train", "--data", str(small), *args, "--out", str(work / "ms"))
    wall_big, rss_big = curvae("train", "--data", str(big), *args, "--out", str(work / "mb"))
    big.unlink()
    return {"file_bytes": size, "rows": n, "peak_rss_small_mib": rss_small, "peak_rss_big_mib": rss_big,
            "growth_mib": rss_big - rss_small, "wall_small_s": wall_small, "wall_big_s": wall_big}


def main(gb: float = 4.0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from curvae.training.config import ModelConfig

        n_params = ModelConfig().n_params()
        out: dict = {"allreduce_ms": allreduce_ms(2 * n_params), "step_ms": step_ms(), "n_params": n_params}
        print(f"all-reduce of 2 x {n_params:,} floats (weights and their average): {out['allreduce_ms']:.2f} ms; "
              f"one batch-32 step: {out['step_ms']:.3f} ms", flush=True)
        out["checkpoints"] = checkpoints(work)
        c = out["checkpoints"]
        print(f"checkpoints: default adds {c['added']:+.1%} to training time; their own time is "
              f"{c['own_share']:.2%} of it ({c['checkpoints']['default (every 5 s)']})", flush=True)
        out["processes"] = processes(work)
        out["memory"] = memory(work, gb)
        m = out["memory"]
        print(f"memory: {m['file_bytes'] / 1e9:.1f} GB .npy ({m['rows']:,} curves): peak RSS {m['peak_rss_big_mib']:.0f} "
              f"MiB against {m['peak_rss_small_mib']:.0f} MiB for 12,000 curves (+{m['growth_mib']:.0f} MiB); "
              f"{m['wall_big_s']:.0f}s against {m['wall_small_s']:.0f}s", flush=True)
    save("train_scale", out)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gb", type=float, default=4.0)
    main(ap.parse_args().gb)
