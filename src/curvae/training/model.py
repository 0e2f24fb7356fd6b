"""The VAE: an MLP encoder to (μ, log σ²) and an MLP decoder.

Per-point standardisation of the curves lives inside the model as buffers, so
the exported graphs take and return raw curves.
"""

from __future__ import annotations

import torch
from torch import nn

from curvae.training.config import ModelConfig

ACTIVATION_LAYERS = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU}


def _mlp(n_in: int, hidden: int, depth: int, n_out: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), ACTIVATION_LAYERS[activation]()]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Encoder ``n_points → hidden → 2·latent`` and decoder ``latent → hidden → n_points``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = _mlp(cfg.n_points, cfg.hidden, cfg.depth, 2 * cfg.latent_dim, cfg.activation)
        self.decoder = _mlp(cfg.latent_dim, cfg.hidden, cfg.depth, cfg.n_points, cfg.activation)
        self.register_buffer("x_mean", torch.zeros(cfg.n_points))
        self.register_buffer("x_std", torch.ones(cfg.n_points))

    def set_normalisation(self, curves: torch.Tensor) -> None:
        """Store per-point mean and std of the training curves (shape (n, n_points))."""
        self.x_mean.copy_(curves.mean(0))
        self.x_std.copy_(curves.std(0).clamp_min(1e-6))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, P) raw curves → μ, log σ², each (B, D)."""
        h = self.encoder((x - self.x_mean) / self.x_std)
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) codes → (B, P) raw curves."""
        return self.decoder(z) * self.x_std + self.x_mean

    def forward(self, x: torch.Tensor, eps: torch.Tensor):
        """Reparameterised pass with explicit noise: returns x̂, z, μ, log σ²."""
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z), z, mu, logvar


class EncoderGraph(nn.Module):
    """Export view: ``(x, eps) → (z, mu, logvar)`` with ``z = mu + exp(logvar/2)·eps``."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, eps: torch.Tensor):
        mu, logvar = self.vae.posterior(x)
        return mu + torch.exp(0.5 * logvar) * eps, mu, logvar


class DecoderGraph(nn.Module):
    """Export view: ``z → x_hat``."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z)


def _folded_linear(layer: nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    out = nn.Linear(layer.in_features, layer.out_features)
    with torch.no_grad():
        out.weight.copy_(weight.float())
        out.bias.copy_(bias.float())
    return out


class FoldedEncoder(nn.Module):
    """``EncoderGraph`` with the input standardisation folded into the first layer.

    ``W·((x − m)/s) + b = (W/s)·x + (b − W·(m/s))``: one Gemm instead of a
    Sub, a Div and a Gemm. Folded in float64, then cast to float32.

    The last layer is written as two heads, one for μ and one for log σ²,
    instead of one layer whose output is split: the graph then needs no
    ``Split``, whose definition changed at opset 13 and 18, so the same
    graph is valid down to opset 7 (see :mod:`curvae.export.graphs`).
    """

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        layers = list(vae.encoder)
        first = layers[0]
        w, b = first.weight.double(), first.bias.double()
        m, s = vae.x_mean.double(), vae.x_std.double()
        layers[0] = _folded_linear(first, w / s, b - w @ (m / s))
        last = layers.pop()
        d = last.out_features // 2
        self.net = nn.Sequential(*layers)
        self.mu_head = _head(last, slice(0, d))
        self.logvar_head = _head(last, slice(d, 2 * d))

    def forward(self, x: torch.Tensor, eps: torch.Tensor):
        h = self.net(x)
        mu, logvar = self.mu_head(h), self.logvar_head(h)
        return mu + torch.exp(0.5 * logvar) * eps, mu, logvar


def _head(layer: nn.Linear, rows: slice) -> nn.Linear:
    """The output rows ``rows`` of ``layer`` as a layer of their own (exact copies of its weights)."""
    head = nn.Linear(layer.in_features, rows.stop - rows.start)
    with torch.no_grad():
        head.weight.copy_(layer.weight[rows])
        head.bias.copy_(layer.bias[rows])
    return head


class FoldedDecoder(nn.Module):
    """``DecoderGraph`` with the output de-standardisation folded into the last layer.

    ``(W·h + b)·s + m = (s·W)·h + (s·b + m)``: one Gemm instead of a Gemm, a
    Mul and an Add over the whole output.
    """

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        last = vae.decoder[-1]
        w, b = last.weight.double(), last.bias.double()
        m, s = vae.x_mean.double(), vae.x_std.double()
        self.net = nn.Sequential(*list(vae.decoder)[:-1], _folded_linear(last, s[:, None] * w, s * b + m))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor):
    """Per-batch means of the sum of squared errors and of the KL to N(0, I)."""
    sse = (x_hat - x).pow(2).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
    return sse, kl
