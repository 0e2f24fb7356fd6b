"""Small calls: one-row (and 8-, 64-row) encode and decode against the raw onnxruntime session and torch eager.

    python benchmarks/bench_small_calls.py [RUN BUNDLE]     # default: train and export the default recipe

Interactive use (the explorer, a control loop, a service answering one curve at a time) pays curvae's
checks on every call. Targets: a one-row call within 1.3x of ``session.run`` on the same session, and a
one-row decode at most 0.5x of torch eager on the same weights. Each figure is the median of 3,000 calls,
the calls taking turns in blocks of 100, side by side in one process.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

ROWS = (1, 8, 64)


def _interleaved_medians_us(calls: dict, rounds: int = 30, block: int = 100) -> dict[str, float]:
    """Median µs of each call over ``rounds`` blocks of ``block`` calls, the calls taking turns block by block:
    host noise hits them alike, and each block runs warm, as repeated calls of one kind do."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    return {name: float(np.median(v)) * 1e6 for name, v in times.items()}


def main(run: str | None = None, bundle: str | None = None) -> dict:
    import torch

    from curvae.runtime import CurveModel
    from curvae.training.model import DecoderGraph, EncoderGraph
    from curvae.training.run import load_run

    torch.set_num_threads(1)
    if run is None:
        from curvae.training.config import RunConfig
        from curvae.training.export_run import export_run
        from curvae.training.loop import train

        tmp = Path(tempfile.mkdtemp())
        run, bundle = str(tmp / "run"), str(tmp / "model")
        train(RunConfig(), run)
        export_run(run, bundle)
    model = CurveModel.load(bundle, providers="cpu", threads=1)
    vae = load_run(run).model.eval()
    tdec, tenc = DecoderGraph(vae), EncoderGraph(vae)
    dec, enc = model._dec, model._enc  # the same sessions curvae runs
    out: dict = {}
    g = np.random.default_rng(0)
    for rows in ROWS:
        z = g.standard_normal((rows, model.latent_dim)).astype(np.float32)
        x = model.decode(z)
        eps = np.zeros((rows, model.latent_dim), np.float32)
        zt, xt, et = torch.from_numpy(z), torch.from_numpy(x), torch.from_numpy(eps)
        calls = {
            "decode": lambda: model.decode(z), "decode_session": lambda: dec.run(None, {"z": z}),
            "encode": lambda: model.encode(x), "encode_session": lambda: enc.run(None, {"x": x, "eps": eps}),
        }
        with torch.no_grad():
            calls["decode_torch"] = lambda: tdec(zt)
            calls["encode_torch"] = lambda: tenc(xt, et)
            for fn in calls.values():  # warm-up
                fn()
            best = _interleaved_medians_us(calls)
        out[rows] = {**{f"{k}_us": v for k, v in best.items()},
                     "decode_vs_session": best["decode"] / best["decode_session"],
                     "encode_vs_session": best["encode"] / best["encode_session"],
                     "decode_vs_torch": best["decode"] / best["decode_torch"],
                     "encode_vs_torch": best["encode"] / best["encode_torch"]}
        r = out[rows]
        print(f"{rows:>3} rows: decode {r['decode_us']:.1f} µs (session {r['decode_session_us']:.1f}, torch "
              f"{r['decode_torch_us']:.1f}): {r['decode_vs_session']:.2f}x session, {r['decode_vs_torch']:.2f}x torch; "
              f"encode {r['encode_us']:.1f} µs (session {r['encode_session_us']:.1f}, torch {r['encode_torch_us']:.1f}):"
              f" {r['encode_vs_session']:.2f}x session, {r['encode_vs_torch']:.2f}x torch", flush=True)
    save("small_calls", {"rows": {str(k): v for k, v in out.items()}})
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:3]), indent=1, default=str)[:0])
