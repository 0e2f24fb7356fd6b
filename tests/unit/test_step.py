"""The hand-written loss gradient equals autograd's on the same loss, for every model shape."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from curvae.training.config import ACTIVATIONS, ModelConfig  # noqa: E402
from curvae.training.model import VAE, vae_loss  # noqa: E402
from curvae.training.step import LossGradient, flatten_parameters  # noqa: E402


def _model(activation: str, depth: int, latent: int, seed: int = 0) -> tuple[VAE, torch.Tensor]:
    torch.manual_seed(seed)
    cfg = ModelConfig(n_points=30, latent_dim=latent, hidden=24, depth=depth, activation=activation)
    vae = VAE(cfg)
    curves = torch.randn(200, 30, dtype=torch.float32) * torch.linspace(0.5, 4.0, 30) + torch.linspace(-3, 3, 30)
    vae.set_normalisation(curves)
    return vae, curves


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("latent", [2, 3])
def test_gradient_equals_autograd(activation, depth, latent):
    vae, curves = _model(activation, depth, latent)
    x, eps, beta = curves[:17], torch.randn(17, latent), 0.7
    x_hat, _, mu, logvar = vae(x, eps)
    sse, kl = vae_loss(x, x_hat, mu, logvar)
    (sse + beta * kl).backward()
    expected = {name: p.grad.clone() for name, p in vae.named_parameters()}

    flat = flatten_parameters(vae)
    flat.grad.fill_(float("nan"))  # every element must be overwritten
    posterior, sse_scaled = torch.empty(17, 2 * latent), torch.empty(())
    with torch.no_grad():
        LossGradient(vae)((x - vae.x_mean) / vae.x_std, eps, beta, posterior_out=posterior, sse_out=sse_scaled)

    assert torch.isfinite(flat.grad).all()
    for name, p in vae.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-5 * expected[name].abs().max().item())
    torch.testing.assert_close(posterior, torch.cat((mu, logvar), 1).detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sse_scaled * 17 / 2, sse.detach() * 17, rtol=1e-4, atol=1e-4)


def test_flattening_keeps_values_and_shares_storage_with_the_model():
    vae, _ = _model("relu", 2, 2)
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    flat = flatten_parameters(vae)
    assert flat.numel() == sum(p.numel() for p in vae.parameters())
    for k, v in vae.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    with torch.no_grad():
        flat.mul_(0.0)
    assert all(float(p.detach().abs().sum()) == 0.0 for p in vae.parameters())
    np.testing.assert_array_equal(vae.x_std.numpy(), before["x_std"].numpy())  # buffers are not parameters
