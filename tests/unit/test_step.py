"""The hand-written loss gradient equals autograd's on the same loss, for every model shape."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from curvae.training.config import ACTIVATIONS, ModelConfig  # noqa: E402
from curvae.training.model import VAE, calibrated_loss, vae_loss  # noqa: E402
from curvae.training.step import LossGradient, flatten_parameters  # noqa: E402


def _model(activation: str, depth: int, latent: int, seed: int = 0, **model_kw) -> tuple[VAE, torch.Tensor]:
    torch.manual_seed(seed)
    cfg = ModelConfig(n_points=30, latent_dim=latent, hidden=24, depth=depth, activation=activation, **model_kw)
    vae = VAE(cfg)
    curves = torch.randn(200, 30, dtype=torch.float32) * torch.linspace(0.5, 4.0, 30) + torch.linspace(-3, 3, 30)
    vae.set_normalisation(curves)
    if vae.linear_path:  # from PCA, then moved off it so that every weight has a gradient to compare
        vae.init_from_pca((curves - vae.x_mean) / vae.x_std)
        with torch.no_grad():
            for p in vae.parameters():
                p.add_(0.05 * torch.randn(p.shape))
    return vae, curves


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("latent", [2, 3])
@pytest.mark.parametrize("variant", ["seed", "linear-calibrated", "linear-sse", "plain-calibrated"])
def test_gradient_equals_autograd(activation, depth, latent, variant):
    linear, loss = variant != "seed" and not variant.startswith("plain"), variant.split("-")[-1]
    loss = "sse" if variant == "seed" else loss
    vae, curves = _model(activation, depth, latent, linear_path=linear,
                         scaling="per-point" if variant == "seed" else "global")
    x, eps, beta = curves[:17], torch.randn(17, latent), 0.7
    x_hat, _, mu, logvar = vae(x, eps)
    sse, kl = vae_loss(x, x_hat, mu, logvar)
    if loss == "calibrated":
        calibrated_loss(x, x_hat, mu, logvar, vae.x_std, beta).backward()
    else:
        (sse + beta * kl).backward()
    expected = {name: p.grad.clone() for name, p in vae.named_parameters()}

    flat = flatten_parameters(vae)
    flat.grad.fill_(float("nan"))  # every element must be overwritten
    posterior, sse_scaled = torch.empty(17, 2 * latent), torch.empty(())
    gradient = LossGradient(vae)
    gradient.calibrated = loss == "calibrated"
    with torch.no_grad():
        gradient((x - vae.x_mean) / vae.x_std, eps, beta, posterior_out=posterior, sse_out=sse_scaled)

    assert torch.isfinite(flat.grad).all()
    for name, p in vae.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-5 * expected[name].abs().max().item())
    torch.testing.assert_close(posterior, torch.cat((mu, logvar), 1).detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sse_scaled * 17 / 2, sse.detach() * 17, rtol=1e-4, atol=1e-4)


def test_flattening_keeps_values_and_shares_storage_with_the_model():
    vae, _ = _model("relu", 2, 2, linear_path=False)
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    flat = flatten_parameters(vae)
    assert flat.numel() == sum(p.numel() for p in vae.parameters())
    for k, v in vae.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    with torch.no_grad():
        flat.mul_(0.0)
    assert all(float(p.detach().abs().sum()) == 0.0 for p in vae.parameters())
    np.testing.assert_array_equal(vae.x_std.numpy(), before["x_std"].numpy())  # buffers are not parameters


@pytest.mark.parametrize("linear", [True, False])
def test_standardising_the_latent_keeps_the_curves_and_centres_the_codes(linear):
    vae, curves = _model("relu", 2, 3, linear_path=linear, scaling="global")
    with torch.no_grad():
        mu, logvar = vae.posterior(curves)
        before = vae.decode(mu)
        vae.standardise_latent(mu.mean(0), mu.std(0))
        mu2, logvar2 = vae.posterior(curves)
        torch.testing.assert_close(vae.decode(mu2), before, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(mu2.mean(0), torch.zeros(3), rtol=0, atol=1e-4)
        torch.testing.assert_close(mu2.std(0), torch.ones(3), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(logvar2, logvar - 2 * torch.log(mu.std(0)), rtol=1e-4, atol=1e-4)
