"""Runtime speed: onnxruntime decode against torch eager on the same weights, the machine's
matmul rate, single-row latency, cold start and resident memory.

    python benchmarks/bench_runtime.py

Needs benchmarks/results/work/{run,model} from bench_train.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import PEAK_RSS, best_of, median_of, run_python, save  # noqa: E402

WORK = Path(__file__).parent / "results" / "work"
BATCH = 100_000

MATMUL = """
import time, numpy as np
a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
a @ a
best = min((lambda t: (a @ a, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(7))
print(2 * 2048**3 / best / 1e9)
"""

COLD_RUNTIME = """
import time
t = time.perf_counter()
import numpy as np
from curvae.runtime import CurveModel
m = CurveModel.load({path!r})
m.decode(np.zeros((1, m.latent_dim), np.float32))
elapsed = time.perf_counter() - t
""" + PEAK_RSS + """
print(elapsed, peak_rss_mib())
"""

COLD_TORCH = """
import time
t = time.perf_counter()
import torch
elapsed = time.perf_counter() - t
""" + PEAK_RSS + """
print(elapsed, peak_rss_mib())
"""


def decoder_flops_per_row(model) -> float:
    """FLOPs of every layer of the decoder per row: each Gemm's multiply-adds (2 FLOPs each, the affine path's
    included) and the Add that joins the two paths; activations are not counted."""
    cfg = model.manifest.training.config["model"]
    widths = [model.latent_dim] + [cfg["hidden"]] * cfg["depth"] + [model.n_points]
    flops = sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))
    if cfg.get("linear_path", False):  # configs from before the affine path have no key: the seed network
        flops += 2 * model.latent_dim * model.n_points + model.n_points
    return float(flops)


def deep_network(work: Path) -> tuple[Path, Path]:
    """The largest network the capacity search may choose (its last candidate), trained briefly: speed does not
    depend on how well the weights are trained."""
    from curvae.recipe.capacity import candidate_config
    from curvae.recipe.config import CANDIDATES
    from curvae.training.config import RunConfig, TrainConfig
    from curvae.training.export_run import export_run
    from curvae.training.loop import train

    run, model = work / "run-deep", work / "model-deep"
    if not (model / "manifest.json").is_file():
        cfg = candidate_config(RunConfig(train=TrainConfig(steps=300)), CANDIDATES[-1], 100)
        train(cfg, run, force=True)
        export_run(run, model, force=True)
    return run, model


def matmul_gflops() -> dict:
    """numpy fp32 2048² matmul rate, as configured here and with OpenBLAS's own kernel choice."""
    here = float(run_python(MATMUL))
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    native = float(run_python(MATMUL, env=env))
    return {"as_configured": here, "openblas_default_kernel": native, "reference": max(here, native)}


def decode_speed(run: Path, bundle: Path, mm: dict) -> dict:
    """100k-row decode on onnxruntime against torch eager running the bundle's own folded network (affine path
    included), interleaved rounds, best of each; one-row latency; GFLOP/s against numpy's sgemm rate."""
    import torch

    from curvae.runtime import CurveModel
    from curvae.training.model import FoldedDecoder
    from curvae.training.run import load_run

    torch.set_num_threads(os.cpu_count() or 1)
    model = CurveModel.load(bundle)
    torch_dec = FoldedDecoder(load_run(run).model).eval()
    z = np.random.default_rng(0).standard_normal((BATCH, model.latent_dim)).astype(np.float32)
    zt = torch.from_numpy(z)
    one, one_t = z[:1], zt[:1]

    def torch_decode(t):
        with torch.no_grad():
            return torch_dec(t)

    np.testing.assert_allclose(model.decode(z[:1000]), torch_decode(zt[:1000]).numpy(), atol=1e-3, rtol=1e-4)
    # Interleaved rounds, best of each: a burst of load from neighbours on the shared host hits both sides alike.
    # ``out=``: decoding into one reused buffer skips the OS zeroing a fresh 40 MB result.
    buf = np.empty((BATCH, model.n_points), np.float32)
    ort_batch = ort_out = torch_batch = float("inf")
    for _ in range(5):
        ort_batch = min(ort_batch, best_of(lambda: model.decode(z), repeat=4))
        ort_out = min(ort_out, best_of(lambda: model.decode(z, out=buf), repeat=4))
        torch_batch = min(torch_batch, best_of(lambda: torch_decode(zt), repeat=4))
    ort_one = median_of(lambda: model.decode(one), repeat=3000)
    torch_one = median_of(lambda: torch_decode(one_t), repeat=3000)
    flops = decoder_flops_per_row(model)
    gflops, gflops_out = flops * BATCH / ort_batch / 1e9, flops * BATCH / ort_out / 1e9
    cfg = model.manifest.training.config["model"]
    return {"network": f"depth {cfg['depth']} x {cfg['hidden']} {cfg['activation']}", "flops_per_row": flops,
            "decode_batch": {"rows": BATCH, "ort_s": ort_batch, "torch_s": torch_batch,
                             "speedup": torch_batch / ort_batch, "ort_gflops": gflops, "matmul_gflops": mm,
                             "fraction_of_matmul": gflops / mm["reference"], "ort_out_s": ort_out,
                             "ort_out_gflops": gflops_out, "fraction_of_matmul_out": gflops_out / mm["reference"]},
            "decode_one_row": {"ort_us": 1e6 * ort_one, "torch_us": 1e6 * torch_one, "ratio": ort_one / torch_one},
            "providers": model.providers["decoder"]}


def main() -> dict:
    mm = matmul_gflops()
    default = decode_speed(WORK / "run", WORK / "model", mm)
    deep = decode_speed(*deep_network(WORK), mm)
    for name, r in (("default", default), ("deep", deep)):
        db = r["decode_batch"]
        print(f"{name} ({r['network']}): 100k decode {db['ort_s'] * 1e3:.1f} ms vs torch {db['torch_s'] * 1e3:.1f} ms "
              f"({db['speedup']:.2f}x); {db['ort_gflops']:.1f} GFLOP/s = {db['fraction_of_matmul']:.0%} of numpy "
              f"({db['ort_out_gflops']:.1f}, {db['fraction_of_matmul_out']:.0%} into out=); one row "
              f"{r['decode_one_row']['ort_us']:.1f} µs vs torch {r['decode_one_row']['torch_us']:.1f}", flush=True)
    cold_rt = sorted(tuple(map(float, run_python(COLD_RUNTIME.format(path=str(WORK / "model"))).split()))
                     for _ in range(5))[2]
    cold_torch = sorted(tuple(map(float, run_python(COLD_TORCH).split())) for _ in range(5))[2]
    result = {
        **{k: default[k] for k in ("decode_batch", "decode_one_row", "providers", "network", "flops_per_row")},
        "deep": deep,
        "cold_start": {"runtime_s": cold_rt[0], "import_torch_s": cold_torch[0], "ratio": cold_rt[0] / cold_torch[0]},
        "peak_rss_mib": {"runtime_load_and_decode": cold_rt[1], "import_torch": cold_torch[1]},
    }
    save("runtime", result)
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
