"""The VAE: an encoder to (μ, log σ²) and a decoder, each an affine path plus an MLP.

With ``linear_path`` (the default), each side is an affine map plus an MLP:

- the decoder's affine map ``z → A z`` starts as the principal components of
  the training curves times their standard deviations, and its MLP's last
  layer starts at zero. So training starts from PCA, and the MLP adds only
  the part a linear basis of this size cannot describe;
- the encoder's affine map starts as the whitened principal-component scores.

The seed's plain architecture (``linear_path=False``) is the worked example's
MLPs alone.

The curves are centred per point and scaled inside the model (buffers), so
the exported graphs take and return raw curves. ``scaling="global"``
divides by one number, the overall standard deviation. The model's error is
then measured in the data's own geometry: a noisy, low-variance point does
not weigh as much as a band that carries the signal. ``"per-point"``
standardises each point, as the seed does.
"""

from __future__ import annotations

import torch
from torch import nn

from curvae.training.config import ModelConfig

ACTIVATION_LAYERS = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU}

#: Largest log σ² an encoder returns. ``exp(½·logvar)`` overflows float32 near 177 (and ``inf·0`` is NaN even with
#: eps = 0), so an unbounded head gave NaN codes for curves far from the data. At 10, σ ≤ e⁵ ≈ 148 prior
#: standard deviations, and ``σ·eps`` stays finite even in float16. Trained posteriors sit far below it.
LOGVAR_MAX = 10.0


def clamp_logvar(logvar: torch.Tensor) -> torch.Tensor:
    """``min(logvar, LOGVAR_MAX)``: exact below the bound, the bound above it (a ``Clip`` in the graphs)."""
    return torch.clamp(logvar, max=LOGVAR_MAX)


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
        if cfg.linear_path:
            self.encoder_linear = nn.Linear(cfg.n_points, 2 * cfg.latent_dim)
            self.decoder_linear = nn.Linear(cfg.latent_dim, cfg.n_points)
        self.register_buffer("x_mean", torch.zeros(cfg.n_points))
        self.register_buffer("x_std", torch.ones(cfg.n_points))

    @property
    def linear_path(self) -> bool:
        return self.cfg.linear_path

    def set_normalisation(self, curves: torch.Tensor) -> None:
        """Store the per-point mean and the scale of the training curves (shape (n, n_points)).

        The scale is per point (``scaling="per-point"``) or one number for
        every point (``"global"``): the root-mean-square deviation from the mean.
        """
        mean = curves.mean(0)
        self.x_mean.copy_(mean)
        if self.cfg.scaling == "global":
            self.x_std.fill_(float((curves - mean).double().pow(2).mean().sqrt().clamp_min(1e-12)))
        else:
            self.x_std.copy_(curves.std(0).clamp_min(1e-6))

    def init_from_pca(self, scaled: torch.Tensor, lr_logvar: float = -4.0) -> dict[str, float]:
        """Start the affine paths at PCA of the scaled training curves ``scaled`` (n, P); zero the MLPs' outputs.

        The decoder then starts as the best linear basis of ``latent_dim``
        components, and the encoder's μ as their whitened scores; log σ² starts
        at ``lr_logvar``. Returns the explained-variance share of the basis.
        """
        d = self.cfg.latent_dim
        n, p = scaled.shape
        _, sv, vt = torch.linalg.svd(scaled.double(), full_matrices=False)
        k = min(d, vt.shape[0])
        std = (sv[:k] / max(n - 1, 1) ** 0.5).clamp_min(1e-12)  # (k,)
        components = torch.zeros(d, p, dtype=torch.float64)
        components[:k] = vt[:k]
        scale = torch.ones(d, dtype=torch.float64)
        scale[:k] = std
        with torch.no_grad():
            self.decoder_linear.weight.copy_((components.T * scale).float())
            self.decoder_linear.bias.zero_()
            self.encoder_linear.weight.zero_()
            self.encoder_linear.weight[:d].copy_((components / scale[:, None]).float())
            self.encoder_linear.bias.zero_()
            for mlp in (self.encoder, self.decoder):
                mlp[-1].weight.zero_()
                mlp[-1].bias.zero_()
            self.encoder[-1].bias[d:].fill_(lr_logvar)
        total = float(sv.pow(2).sum())
        return {"explained": float(sv[:k].pow(2).sum()) / total if total else 1.0}

    @torch.no_grad()
    def standardise_latent(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Re-express the same model in a latent whose codes have ``mean`` 0 and ``std`` 1 per dimension.

        ``z_new = (z − mean) / std``: the μ rows of the encoder's last layers are
        shifted and scaled, log σ² shifts by ``−2·log std``, and the decoder's
        first layers (MLP and affine path) take ``mean + std·z_new``. The curves
        the model encodes and decodes are unchanged (to float rounding); codes of
        the training curves then match the N(0, I) prior in their first two moments.
        """
        d = self.cfg.latent_dim
        m, s = mean.to(self.x_mean.dtype), std.to(self.x_mean.dtype).clamp_min(1e-12)
        last = self.encoder[-1]
        heads = [last] + ([self.encoder_linear] if self.linear_path else [])
        for layer in heads:
            layer.weight[:d] /= s[:, None]
            layer.bias[:d] /= s
        last.bias[:d] -= m / s
        last.bias[d:] -= 2.0 * torch.log(s)
        firsts = [self.decoder[0]] + ([self.decoder_linear] if self.linear_path else [])
        for layer in firsts:
            layer.bias += layer.weight @ m
            layer.weight *= s[None, :]

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, P) raw curves → μ, log σ², each (B, D)."""
        xs = (x - self.x_mean) / self.x_std
        h = self.encoder(xs)
        if self.linear_path:
            h = h + self.encoder_linear(xs)
        mu, logvar = h.chunk(2, dim=1)
        return mu, clamp_logvar(logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) codes → (B, P) raw curves."""
        y = self.decoder(z)
        if self.linear_path:
            y = y + self.decoder_linear(z)
        return y * self.x_std + self.x_mean

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
    """``EncoderGraph`` with the input scale folded into the first layer.

    ``W·((x − m)/s) + b = (W/s)·(x − m) + b``: a Sub and a Gemm instead of a
    Sub, a Div and a Gemm. Folded in float64, then cast to float32. The
    centring stays a Sub of its own: folding it too, into the bias
    ``b − W·(m/s)``, would make every output the difference of two large
    sums when curves vary little on a large level, and lose up to 100× the
    float32 precision of the unfolded model there (a Sub costs ``P`` flops
    a row beside the Gemm's ``2·P·H``).

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
        s = vae.x_std.double()
        layers[0] = _folded_linear(first, w / s, b)
        self.register_buffer("centre", vae.x_mean.detach().clone().float())  # (P,)
        last = layers.pop()
        d = last.out_features // 2
        self.net = nn.Sequential(*layers)
        self.mu_head = _head(last, slice(0, d))
        self.logvar_head = _head(last, slice(d, 2 * d))
        self.linear = vae.linear_path
        if self.linear:  # the affine path, folded the same way, as two heads of its own
            lin = vae.encoder_linear
            lw, lb = lin.weight.double(), lin.bias.double()
            folded = _folded_linear(lin, lw / s, lb)
            self.mu_linear = _head(folded, slice(0, d))
            self.logvar_linear = _head(folded, slice(d, 2 * d))

    def forward(self, x: torch.Tensor, eps: torch.Tensor):
        x = x - self.centre  # (B, P)
        h = self.net(x)
        mu, logvar = self.mu_head(h), self.logvar_head(h)
        if self.linear:
            mu, logvar = mu + self.mu_linear(x), logvar + self.logvar_linear(x)
        logvar = clamp_logvar(logvar)
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
        self.linear = None
        if vae.linear_path:  # (s·A)·z + s·c, its own Gemm beside the MLP's
            lin = vae.decoder_linear
            self.linear = _folded_linear(lin, s[:, None] * lin.weight.double(), s * lin.bias.double())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.linear is None:
            return self.net(z)
        return self.net(z) + self.linear(z)


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor):
    """Per-batch means of the sum of squared errors and of the KL to N(0, I)."""
    sse = (x_hat - x).pow(2).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
    return sse, kl


def calibrated_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                    scale: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """The calibrated-decoder loss per curve: ``(P/2)·log(MSE) + β·KL``, MSE in scaled units over the batch.

    This is the Gaussian decoder's negative log-likelihood at its optimal
    shared noise σ² = MSE (σ-VAE, Rybkin et al. 2021), up to a constant. It
    does not change with the units or the scale of the curves, so one KL
    weight fits every data set.
    """
    p = x.shape[1]
    mse = ((x_hat - x) / scale).pow(2).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
    return 0.5 * p * torch.log(mse) + beta * kl
