"""The gradient of the VAE loss, written out by hand over one flat parameter buffer.

For a model this small, autograd's per-op bookkeeping costs more than the
arithmetic: on a 2-core CPU a batch-32 step spends most of its time recording
and replaying the graph. :class:`LossGradient` computes the same gradient
directly (the matrix products, the activation derivatives and the KL terms)
and writes it into views of one flat buffer, so that a single fused Adam
kernel updates every parameter. ``tests/unit/test_step.py`` checks it against
autograd for every activation, depth and latent size.

The loss is one of two, per batch of ``B`` raw curves ``x`` of ``P`` points,
with ``SSE = Σ_b Σ_p (x̂_bp − x_bp)²``:

    sse         L = SSE / B                    + (β/B) Σ_b KL(q(z|x_b) ‖ N(0, I))
    calibrated  L = (P/2)·log(SSE / (B·P))      + (β/B) Σ_b KL(q(z|x_b) ‖ N(0, I))

(:func:`curvae.training.model.vae_loss`, :func:`~curvae.training.model.calibrated_loss`),
computed in scaled units: with ``x = m + s·x_s`` and ``x̂ = m + s·y`` the
squared error is ``Σ s_p² (y_bp − x_s,bp)²``. The calibrated loss's gradient
on the residual is ``s_p² r_bp · P / SSE``. With a linear path, each side adds
an affine map beside its MLP, and its gradient is that of one more Gemm.
"""

from __future__ import annotations

import torch
from torch import nn

from curvae.training.model import LOGVAR_MAX, VAE, clamp_logvar

_aten = torch.ops.aten


def flatten_parameters(model: nn.Module) -> nn.Parameter:
    """Re-home every parameter of ``model`` as a view into one flat parameter.

    Returns
    -------
    nn.Parameter of shape (n_params,)
        Holds the current values; its ``.grad`` is a flat buffer of the same
        size. Each model parameter's ``.grad`` is the matching view of it, so
        writing a layer's gradient into that view is all an optimiser over the
        flat parameter needs.
    """
    params = list(model.parameters())
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        k = p.numel()
        p.data = flat.data[offset:offset + k].view_as(p)
        p.grad = flat.grad[offset:offset + k].view_as(p)
        offset += k
    return flat


def _activate(name: str, a: torch.Tensor) -> torch.Tensor:
    if name == "relu":
        return a.clamp_(min=0)  # in place: ReLU's derivative needs only the output
    return {"silu": torch.nn.functional.silu, "tanh": torch.tanh, "elu": torch.nn.functional.elu}[name](a)


def _activation_grad(name: str, g: torch.Tensor, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    """dL/d(pre-activation) from dL/d(post-activation) ``g``, all (B, H)."""
    if name == "relu":
        return _aten.threshold_backward(g, post, 0)
    if name == "tanh":
        return _aten.tanh_backward(g, post)
    if name == "silu":
        return _aten.silu_backward(g, pre)
    return _aten.elu_backward(g, 1.0, 1, 1, True, post)  # alpha, scale, input_scale, is_result


class _MLP:
    """An ``nn.Sequential`` of Linear/activation pairs, run forward and backward by hand."""

    def __init__(self, seq: nn.Sequential, activation: str) -> None:
        self.linears = [m for m in seq if isinstance(m, nn.Linear)]
        self.activation = activation

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None):
        """Returns the output (B, n_out) and the saved (input, pre, post) of each hidden layer."""
        saved, h = [], x
        for layer in self.linears[:-1]:
            a = torch.addmm(layer.bias, h, layer.weight.t())
            post = _activate(self.activation, a)
            saved.append((h, a, post))
            h = post
        last = self.linears[-1]
        if out is None:
            return torch.addmm(last.bias, h, last.weight.t()), saved, h
        return torch.addmm(last.bias, h, last.weight.t(), out=out), saved, h

    def backward(self, g: torch.Tensor, saved, h_last: torch.Tensor, *, input_grad: bool):
        """Write every layer's weight and bias gradient; return dL/dinput (or None)."""
        inputs = [s[0] for s in saved] + [h_last]
        for i in range(len(self.linears) - 1, -1, -1):
            layer = self.linears[i]
            torch.mm(g.t(), inputs[i], out=layer.weight.grad)
            torch.sum(g, 0, out=layer.bias.grad)
            if i == 0 and not input_grad:
                return None
            g = g.mm(layer.weight)
            if i > 0:
                _, pre, post = saved[i - 1]
                g = _activation_grad(self.activation, g, pre, post)
        return g


class LossGradient:
    """Computes the loss gradient of a :class:`VAE` whose parameters were flattened.

    Parameters
    ----------
    model : VAE
        After :func:`flatten_parameters`; its ``x_std`` sets the error weights.
    """

    def __init__(self, model: VAE) -> None:
        self.encoder = _MLP(model.encoder, model.cfg.activation)
        self.decoder = _MLP(model.decoder, model.cfg.activation)
        self.encoder_linear = model.encoder_linear if model.linear_path else None
        self.decoder_linear = model.decoder_linear if model.linear_path else None
        self.latent = model.cfg.latent_dim
        self.weight = model.x_std.detach() ** 2  # (P,): squared error in raw units
        self._scaled_weight: dict[int, torch.Tensor] = {}  # batch size → (2/B)·s², computed once per size
        self.calibrated = False  # set by the trainer from its TrainConfig.loss

    def __call__(self, xs: torch.Tensor, eps: torch.Tensor, beta: float, *, posterior_out: torch.Tensor,
                 sse_out: torch.Tensor) -> None:
        """Write the gradient of the batch loss into every parameter's ``.grad``.

        Parameters
        ----------
        xs : Tensor of shape (B, P)
            Standardised curves.
        eps : Tensor of shape (B, D)
            Reparameterisation noise.
        beta : float
            KL weight.
        posterior_out : Tensor of shape (B, 2·D)
            Receives the encoder output ``[μ, log σ²]`` (for the KL the epoch reports).
        sse_out : 0-d Tensor
            Receives ``(2/B)·Σ_b Σ_p s_p² r_bp²``: the batch's summed squared
            error in raw units, times ``2/B``.
        """
        n, d = xs.shape[0], self.latent
        o, enc_saved, enc_last = self.encoder.forward(xs, out=posterior_out)
        enc_lin, dec_lin = self.encoder_linear, self.decoder_linear
        if enc_lin is not None:
            o.addmm_(xs, enc_lin.weight.t()).add_(enc_lin.bias)
        mu, raw_logvar = o[:, :d], o[:, d:]
        inside = raw_logvar <= LOGVAR_MAX  # (B, D): the clamp's derivative is 1 below the bound, 0 above
        logvar = clamp_logvar(raw_logvar)
        o[:, d:] = logvar
        sd = torch.exp(logvar * 0.5)
        z = torch.addcmul(mu, sd, eps)
        y, dec_saved, dec_last = self.decoder.forward(z)
        if dec_lin is not None:
            y.addmm_(z, dec_lin.weight.t()).add_(dec_lin.bias)
        r = y.sub_(xs)
        w = self._scaled_weight.get(n)
        if w is None:
            w = self._scaled_weight[n] = self.weight * (2.0 / n)
        g_y = r * w
        torch.dot(g_y.view(-1), r.view(-1), out=sse_out)
        if self.calibrated:  # d/dr of (P/2)·log(SSE/(B·P)) is s²·r·P/SSE = g_y·P/sse_out, as sse_out = (2/B)·SSE
            g_y.mul_(r.shape[1] / sse_out.clamp_min(1e-30))
        g_z = self.decoder.backward(g_y, dec_saved, dec_last, input_grad=True)
        if dec_lin is not None:
            torch.mm(g_y.t(), z, out=dec_lin.weight.grad)
            torch.sum(g_y, 0, out=dec_lin.bias.grad)
            g_z.addmm_(g_y, dec_lin.weight)
        c = beta / n
        g_mu = torch.add(g_z, mu, alpha=c)
        g_logvar = (g_z * eps).mul_(sd).add_(sd * sd, alpha=c).sub_(c).mul_(0.5).mul_(inside)
        g_o = torch.cat((g_mu, g_logvar), 1)
        self.encoder.backward(g_o, enc_saved, enc_last, input_grad=False)
        if enc_lin is not None:
            torch.mm(g_o.t(), xs, out=enc_lin.weight.grad)
            torch.sum(g_o, 0, out=enc_lin.bias.grad)
