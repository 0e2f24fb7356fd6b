"""FlatAdam is torch.optim.Adam: same trajectory, fused kernel or plain ops, and exact round trips."""

import pytest

torch = pytest.importorskip("torch")

from curvae.training.adam import _FUSED, FlatAdam  # noqa: E402


def _trajectory(opt_step, param, grads, lrs):
    for g, lr in zip(grads, lrs):
        opt_step(g, lr)
    return param.clone()


@pytest.mark.parametrize("fused", [False, pytest.param(True, marks=pytest.mark.skipif(
    _FUSED is None, reason="this torch has no fused Adam kernel"))])
def test_flat_adam_follows_torch_optim_adam(fused):
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(1000, generator=gen)
    grads = [torch.randn(1000, generator=gen) * (1 + k % 5) for k in range(60)]
    lrs = [1e-2 * 0.95 ** k for k in range(60)]

    ref = torch.nn.Parameter(start.clone())
    torch_opt = torch.optim.Adam([ref], lr=1.0)

    def torch_step(g, lr):
        ref.grad = g.clone()
        torch_opt.param_groups[0]["lr"] = lr
        torch_opt.step()

    expected = _trajectory(torch_step, ref.data, grads, lrs)

    param, grad = start.clone(), torch.empty(1000)
    ours = FlatAdam(param, grad, fused=fused)

    def our_step(g, lr):
        grad.copy_(g)
        ours.step(lr)

    got = _trajectory(our_step, param, grads, lrs)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert not torch.equal(got, start)


def test_state_round_trip_continues_identically():
    gen = torch.Generator().manual_seed(1)
    grads = [torch.randn(50, generator=gen) for _ in range(20)]
    p1, g1 = torch.zeros(50), torch.empty(50)
    a = FlatAdam(p1, g1)
    for g in grads[:10]:
        g1.copy_(g)
        a.step(1e-2)
    saved, p_saved = a.state_dict(), p1.clone()
    for g in grads[10:]:
        g1.copy_(g)
        a.step(1e-2)

    p2, g2 = p_saved.clone(), torch.empty(50)
    b = FlatAdam(p2, g2)
    b.load_state_dict(saved)
    for g in grads[10:]:
        g2.copy_(g)
        b.step(1e-2)
    assert torch.equal(p1, p2)


def test_state_of_another_shape_is_refused():
    a = FlatAdam(torch.zeros(10), torch.zeros(10))
    with pytest.raises(ValueError, match="shape"):
        a.load_state_dict(FlatAdam(torch.zeros(11), torch.zeros(11)).state_dict())
