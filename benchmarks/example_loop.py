"""The worked example's own training loop and fit, reproduced as the baseline.

One curve per optimiser step (batch 1), Adam at lr 1e-4, loss = SSE + β·KL,
noise drawn inside the forward pass; fit = scipy Nelder-Mead from z = 0 on
the torch decoder.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.optimize import minimize
from torch import nn


class ExampleVAE(nn.Module):
    """Encoder 100→256→(μ, log σ²) with a 2-D latent; decoder 2→256→100."""

    def __init__(self, n_points: int = 100, hidden: int = 256, latent: int = 2) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(n_points, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, n_points))

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.dec(z), mu, logvar


def train_example(curves: np.ndarray, *, epochs: int, lr: float = 1e-4, beta: float = 1.0, seed: int = 0):
    """Train one sample at a time; returns the model and seconds per epoch."""
    torch.manual_seed(seed)
    model = ExampleVAE(curves.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    data = torch.from_numpy(curves)
    per_epoch = []
    for _ in range(epochs):
        t = time.perf_counter()
        for i in torch.randperm(len(data)).tolist():
            x = data[i:i + 1]
            x_hat, mu, logvar = model(x)
            loss = (x_hat - x).pow(2).sum() + beta * (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
        per_epoch.append(time.perf_counter() - t)
    return model.eval(), per_epoch


def nelder_mead_fit(decoder: nn.Module, targets: np.ndarray):
    """The example's fit: per target, Nelder-Mead on the torch decoder from z = 0.

    Returns z (n, 2), residual (n,), decoder calls (n,), seconds per target.
    """
    zs, res, calls = [], [], []
    t = time.perf_counter()
    with torch.no_grad():
        for target in targets:
            tt = torch.from_numpy(target)

            def loss(z):
                out = decoder(torch.as_tensor(z, dtype=torch.float32)[None])[0]
                return float((out - tt).pow(2).sum())

            r = minimize(loss, np.zeros(2), method="Nelder-Mead")
            zs.append(r.x)
            res.append(np.sqrt(r.fun))
            calls.append(r.nfev)
    return np.array(zs), np.array(res), np.array(calls), (time.perf_counter() - t) / len(targets)
