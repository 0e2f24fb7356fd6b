"""Torch-vs-onnxruntime parity on the same inputs and the same noise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from curvae.runtime.session import make_session

PARITY_BATCHES = (1, 2, 7, 1000)


@dataclass(frozen=True)
class ParityRow:
    """Max differences for one graph output at one batch size on one provider."""

    provider: str
    graph: str
    output: str
    batch: int
    max_abs: float
    max_rel: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "graph": self.graph, "output": self.output, "batch": self.batch,
                "max_abs": self.max_abs, "max_rel": self.max_rel, "passed": self.passed}


def diff(got: np.ndarray, ref: np.ndarray, *, atol: float, rtol: float) -> tuple[float, float, bool]:
    """Max abs difference, that divided by the reference's max magnitude, and whether every
    element is within ``atol + rtol·|ref|`` (numpy's ``allclose`` rule)."""
    ref64 = ref.astype(np.float64)
    d = np.abs(got.astype(np.float64) - ref64)
    max_abs = float(d.max()) if d.size else 0.0
    ok = bool(got.shape == ref.shape and np.all(d <= atol + rtol * np.abs(ref64)))
    return max_abs, max_abs / max(float(np.abs(ref64).max()), 1e-12), ok


def parity_inputs(decoder: torch.nn.Module, latent_dim: int, batch: int, seed: int):
    """Realistic inputs without the training data: curves decoded from prior draws, plus noise."""
    g = np.random.default_rng(seed + batch)
    z = g.standard_normal((batch, latent_dim)).astype(np.float32)
    with torch.no_grad():
        x = decoder(torch.from_numpy(z)).numpy()
    eps = g.standard_normal((batch, latent_dim)).astype(np.float32)
    return x, eps, g.standard_normal((batch, latent_dim)).astype(np.float32)


def run_parity(
    encoder: torch.nn.Module,
    decoder: torch.nn.Module,
    encoder_bytes: bytes,
    decoder_bytes: bytes,
    *,
    latent_dim: int,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    batches: Sequence[int] = PARITY_BATCHES,
    seed: int = 0,
    atol: float = 1e-5,
    rtol: float = 1e-6,
) -> list[ParityRow]:
    """Compare torch and onnxruntime outputs of both graphs.

    Each provider gets its own session with only that provider (and no
    fallback is possible for CPU), so each row measures one provider.
    """
    encoder, decoder = encoder.eval().cpu(), decoder.eval().cpu()
    rows: list[ParityRow] = []
    for provider in providers:
        enc = make_session(encoder_bytes, [provider], name="encoder")
        dec = make_session(decoder_bytes, [provider], name="decoder")
        for batch in batches:
            x, eps, z = parity_inputs(decoder, latent_dim, batch, seed)
            with torch.no_grad():
                ref_enc = [t.numpy() for t in encoder(torch.from_numpy(x), torch.from_numpy(eps))]
                ref_dec = decoder(torch.from_numpy(z)).numpy()
            got_enc = enc.run(None, {"x": x, "eps": eps})
            got_dec = dec.run(None, {"z": z})[0]
            for name, ref, got in zip(("z", "mu", "logvar"), ref_enc, got_enc):
                rows.append(ParityRow(provider, "encoder", name, batch, *diff(got, ref, atol=atol, rtol=rtol)))
            rows.append(ParityRow(provider, "decoder", "x_hat", batch, *diff(got_dec, ref_dec, atol=atol, rtol=rtol)))
    return rows


def summarise(rows: Sequence[ParityRow], *, atol: float, rtol: float) -> dict[str, Any]:
    """Manifest form of a parity run: per-row figures, worst case and verdict."""
    return {
        "atol": atol,
        "rtol": rtol,
        "batches": sorted({r.batch for r in rows}),
        "providers": sorted({r.provider for r in rows}),
        "max_abs": max(r.max_abs for r in rows),
        "max_rel": max(r.max_rel for r in rows),
        "passed": all(r.passed for r in rows),
        "rows": [r.to_dict() for r in rows],
    }


def format_table(rows: Sequence[ParityRow]) -> str:
    """Plain-text table: provider × graph × output × batch → max abs, max rel."""
    lines = [f"{'provider':<28} {'graph':<8} {'output':<7} {'batch':>6} {'max_abs':>10} {'max_rel':>10}  ok"]
    for r in rows:
        lines.append(f"{r.provider:<28} {r.graph:<8} {r.output:<7} {r.batch:>6} {r.max_abs:>10.2e} "
                     f"{r.max_rel:>10.2e}  {'yes' if r.passed else 'NO'}")
    return "\n".join(lines)
