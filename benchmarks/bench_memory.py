"""Resident memory across 10,000 runtime calls with varying batch sizes (no torch in the process).

    python benchmarks/bench_memory.py [MODEL]

Prints RSS after warm-up and after every 2,000 calls; a leak shows as steady growth.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from curvae.runtime import CurveModel  # noqa: E402

WORK = Path(__file__).parent / "results" / "work"


def rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(model_path: Path) -> dict:
    model = CurveModel.load(model_path)
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 2048, size=10_000)
    targets = model.sample(64, seed=1)

    def call(i: int, n: int) -> None:
        kind = i % 4
        if kind == 0:
            model.decode(rng.standard_normal((n, model.latent_dim)).astype(np.float32))
        elif kind == 1:
            model.encode(np.resize(targets, (n, model.n_points)), sample=True, seed=i)
        elif kind == 2:
            model.sample(n, seed=i)
        else:
            model.fit(targets[: 1 + n % 64])

    for i in range(200):  # warm-up: arenas and caches reach their working size
        call(i, int(sizes[i]))
    trace = [(0, rss_mib())]
    for i, n in enumerate(sizes, start=1):
        call(i, int(n))
        if i % 2000 == 0:
            trace.append((i, rss_mib()))
    result = {"calls": len(sizes), "batch_sizes": [int(sizes.min()), int(sizes.max())],
              "rss_mib": trace, "growth_mib": trace[-1][1] - trace[0][1],
              "growth_last_half_mib": trace[-1][1] - trace[len(trace) // 2][1]}
    save("memory", result)
    return result


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else WORK / "model"
    print(json.dumps(main(path), indent=2))
