"""Adam over one flat parameter buffer, without ``torch.optim``.

The first optimiser built by ``torch.optim`` imports ``torch._dynamo`` (about a
second on a 2-core machine, a fifth of a default training run), and its
``step`` adds Python bookkeeping that a one-tensor update does not need. This
class is the same algorithm as ``torch.optim.Adam`` with its defaults (no
weight decay, no AMSGrad), on one flat tensor: one fused kernel per step where
torch provides ``_fused_adam_``, otherwise five plain tensor ops.
``tests/unit/test_adam.py`` checks both paths against ``torch.optim.Adam``.
"""

from __future__ import annotations

import math

import torch

_FUSED = getattr(torch, "_fused_adam_", None)


class FlatAdam:
    """Adam for one flat parameter whose gradient lives in one flat buffer.

    Parameters
    ----------
    param, grad : Tensor of shape (n,)
        Updated in place / read at each :meth:`step`.
    betas : (float, float)
    eps : float
    fused : bool, optional
        Use torch's fused kernel (default: when torch has one).
    """

    def __init__(self, param: torch.Tensor, grad: torch.Tensor, *, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, fused: bool | None = None) -> None:
        self.param, self.grad = param, grad
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.fused = _FUSED is not None if fused is None else fused
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self.steps = torch.zeros((), dtype=torch.float32, device=param.device)  # as torch keeps it
        self._t = 0
        self._denom = torch.empty_like(param) if not self.fused else None

    def step(self, lr: float) -> None:
        """One Adam update with learning rate ``lr``."""
        self._t += 1
        self.steps.add_(1)
        if self.fused:
            _FUSED([self.param], [self.grad], [self.exp_avg], [self.exp_avg_sq], [], [self.steps], lr=lr,
                   beta1=self.beta1, beta2=self.beta2, weight_decay=0.0, eps=self.eps, amsgrad=False,
                   maximize=False)
            return
        t, g = self._t, self.grad
        self.exp_avg.lerp_(g, 1.0 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
        bc1, bc2 = 1.0 - self.beta1 ** t, 1.0 - self.beta2 ** t
        denom = torch.sqrt(self.exp_avg_sq, out=self._denom).div_(math.sqrt(bc2)).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-lr / bc1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Copies of the moments and the step count (tensors only: checkpoints load with weights_only)."""
        return {"exp_avg": self.exp_avg.detach().cpu().clone(), "exp_avg_sq": self.exp_avg_sq.detach().cpu().clone(),
                "step": self.steps.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned; shapes must match this parameter."""
        for key in ("exp_avg", "exp_avg_sq"):
            if tuple(state[key].shape) != tuple(self.param.shape):
                raise ValueError(f"optimiser state {key!r} has shape {tuple(state[key].shape)}, the parameter "
                                 f"{tuple(self.param.shape)}")
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.steps.copy_(state["step"])
        self._t = int(self.steps.item())
