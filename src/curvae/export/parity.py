"""Torch-vs-onnxruntime parity on the same inputs and the same noise.

An element passes when onnxruntime's value is within ``atol + rtol·|torch|
+ 4·noise`` of torch's. ``noise`` is, per output, how far float32 rounding
alone can move that output, given the actual magnitudes and sizes:

- the largest difference between torch's own float32 result and the same
  model run in float64 over all the parity inputs; and
- the spread of the float64 model when every weight is perturbed by the
  relative error that a float32 dot product of its length commits
  (backward error analysis: a float32 sum of ``n`` products equals the exact
  sum of products whose factors are each off by about ``√n·2⁻²⁴``; a few
  random draws of that perturbation).

Both terms are taken for the reference modules and, when the graphs are
rewritten forms of them (standardisation folded into the weights), for the
rewritten modules too, each against its own float64 result: a fold that
makes outputs the small difference of large sums, or a standardised latent
that divides small score spreads, amplifies float32 rounding in the graph
itself, and the allowance must follow what the graph computes.

The second term follows the data: a first layer summing 1,047 inputs of
magnitude 10³ rounds at ~1e-4, which torch's own float32 result can
happen to miss while another summation order (onnxruntime's) does not.
Far from the training data an output can be ill-conditioned (a log-variance
of −60 summed from terms in the hundreds), and there two float32 summation
orders cannot agree to 1e-5 either (onnxruntime's error there was up to
twice torch's, so the allowance is four times). A real mismatch, such as a
changed weight, is many times larger than that and is still refused.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from curvae.runtime.bundle.records import ParityRecord
from curvae.runtime.engine.session import make_session

PARITY_BATCHES = (1, 2, 7, 1000)
NOISE_FACTOR = 4.0  # onnxruntime's kernels may sum in a less favourable order than torch's: up to ~2× seen
FLOAT32_EPS = 2.0 ** -24  # unit roundoff of float32
ROUNDING_DRAWS = 3  # random float32-rounding perturbations of the float64 model


def _rounding_perturbed(module: torch.nn.Module, gen: torch.Generator) -> torch.nn.Module:
    """A float64 copy of ``module`` whose weights each carry a random float32 dot-product rounding error.

    A weight matrix of shape (out, n) is multiplied elementwise by
    ``1 + √n·u·U(−1, 1)``; vectors (biases) by ``1 + u·U(−1, 1)``.
    """
    out = copy.deepcopy(module).double()
    with torch.no_grad():
        for p in out.parameters():
            n = p.shape[-1] if p.dim() >= 2 else 1
            p.mul_(1.0 + (n ** 0.5) * FLOAT32_EPS * (2.0 * torch.rand(p.shape, generator=gen, dtype=p.dtype) - 1.0))
    return out


@dataclass(frozen=True)
class ParityRow:
    """Max differences for one graph output at one batch size on one provider."""

    provider: str
    graph: str
    output: str
    batch: int
    max_abs: float
    max_rel: float
    float32_noise: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "graph": self.graph, "output": self.output, "batch": self.batch,
                "max_abs": self.max_abs, "max_rel": self.max_rel, "float32_noise": self.float32_noise,
                "passed": self.passed}


def diff(got: np.ndarray, ref: np.ndarray, *, atol: float, rtol: float,
         noise: float = 0.0) -> tuple[float, float, float, bool]:
    """Compare ``got`` with the float32 reference ``ref`` (same shape).

    Returns the max abs difference, that divided by the reference's max
    magnitude, ``noise`` itself, and whether every element is within
    ``atol + rtol·|ref| + 4·noise``.
    """
    ref64 = ref.astype(np.float64)
    d = np.abs(got.astype(np.float64) - ref64)
    max_abs = float(d.max()) if d.size else 0.0
    ok = bool(got.shape == ref.shape and np.all(d <= atol + rtol * np.abs(ref64) + NOISE_FACTOR * noise))
    return max_abs, max_abs / max(float(np.abs(ref64).max()), 1e-12), noise, ok


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
    exported: tuple[torch.nn.Module, torch.nn.Module] | None = None,
) -> list[ParityRow]:
    """Compare torch and onnxruntime outputs of both graphs.

    Each provider gets its own session with only that provider (and no
    fallback is possible for CPU), so each row measures one provider.
    ``exported`` are the modules the graphs were written from, when they are
    rewritten forms of ``encoder`` and ``decoder``: their own float32 rounding
    joins the noise estimate (the module docstring says why).
    """
    encoder, decoder = encoder.eval().cpu(), decoder.eval().cpu()
    encoder64, decoder64 = copy.deepcopy(encoder).double(), copy.deepcopy(decoder).double()
    gen = torch.Generator().manual_seed(seed)
    pairs = [(encoder, decoder)] + ([tuple(m.eval().cpu() for m in exported)] if exported is not None else [])
    pairs64 = [(encoder64, decoder64)] + [tuple(copy.deepcopy(m).double() for m in pair) for pair in pairs[1:]]
    rounded = [[(_rounding_perturbed(enc, gen), _rounding_perturbed(dec, gen)) for _ in range(ROUNDING_DRAWS)]
               for enc, dec in pairs]
    outputs = [("encoder", "z"), ("encoder", "mu"), ("encoder", "logvar"), ("decoder", "x_hat")]
    inputs, refs = {}, {}
    noise = dict.fromkeys(outputs, 0.0)
    for batch in batches:
        x, eps, z = inputs[batch] = parity_inputs(decoder, latent_dim, batch, seed)
        x_t, eps_t, z_t = torch.from_numpy(x), torch.from_numpy(eps), torch.from_numpy(z)
        x64, eps64, z64 = x_t.double(), eps_t.double(), z_t.double()
        with torch.no_grad():
            for k, ((enc, dec), (enc64, dec64)) in enumerate(zip(pairs, pairs64)):
                f32 = [t.numpy() for t in enc(x_t, eps_t)] + [dec(z_t).numpy()]
                exact = [t.numpy() for t in enc64(x64, eps64)] + [dec64(z64).numpy()]
                spread = [[t.numpy() for t in e(x64, eps64)] + [d(z64).numpy()] for e, d in rounded[k]]
                if k == 0:
                    refs[batch] = f32
                for i, key in enumerate(outputs):  # each module's rounding, against its own float64 result
                    noise[key] = max(noise[key], float(np.abs(f32[i].astype(np.float64) - exact[i]).max()),
                                     *(float(np.abs(s[i] - exact[i]).max()) for s in spread))
    rows: list[ParityRow] = []
    for provider in providers:
        enc = make_session(encoder_bytes, [provider], name="encoder")
        dec = make_session(decoder_bytes, [provider], name="decoder")
        for batch in batches:
            x, eps, z = inputs[batch]
            got = enc.run(None, {"x": x, "eps": eps}) + dec.run(None, {"z": z})
            for (graph, name), r, g in zip(outputs, refs[batch], got):
                rows.append(ParityRow(provider, graph, name, batch,
                                      *diff(g, r, atol=atol, rtol=rtol, noise=noise[(graph, name)])))
    return rows


def summarise(rows: Sequence[ParityRow], *, atol: float, rtol: float) -> ParityRecord:
    """Manifest form of a parity run: per-row figures, worst case and verdict."""
    return ParityRecord(
        atol=atol, rtol=rtol, batches=tuple(sorted({r.batch for r in rows})),
        providers=tuple(sorted({r.provider for r in rows})), max_abs=max(r.max_abs for r in rows),
        max_rel=max(r.max_rel for r in rows), passed=all(r.passed for r in rows),
        float32_noise=max(r.float32_noise for r in rows), rows=tuple(r.to_dict() for r in rows))


def format_table(rows: Sequence[ParityRow]) -> str:
    """Plain-text table: provider × graph × output × batch → max abs, max rel."""
    lines = [f"{'provider':<28} {'graph':<8} {'output':<7} {'batch':>6} {'max_abs':>10} {'max_rel':>10} "
             f"{'f32 noise':>10}  ok"]
    for r in rows:
        lines.append(f"{r.provider:<28} {r.graph:<8} {r.output:<7} {r.batch:>6} {r.max_abs:>10.2e} "
                     f"{r.max_rel:>10.2e} {r.float32_noise:>10.2e}  {'yes' if r.passed else 'NO'}")
    return "\n".join(lines)
