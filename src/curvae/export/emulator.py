"""The emulator: a small network θ → z, followed by the bundle's decoder, as a fourth graph ``θ → (curve, z)``.

How it is built (``docs/parameters.md`` has the measurements behind each choice):

1. The runtime's default fit (LM from the encoder's μ, on the exported graphs)
   finds the code ``z*`` of at most :data:`EMU_MAX_TRAIN` training curves, with
   the decoder's Jacobian ``J`` there (the fit's last probe, no extra call).
2. Inputs: each parameter standardised in the space a fit moves it in (``u``,
   as the parameter head's), and, for a positive parameter, its standardised
   ``log θ`` too (Beta's curves shift with ``log α`` near 0, which a tanh or
   SiLU network of θ alone bends to poorly: 0.97% against 0.49% of the
   curves' spread on Beta).
3. An MLP ``2k → 64 → 64 → latent_dim`` with SiLU, fitted in float64 by
   full-batch L-BFGS: first on ``|z − z*|²``, then on ``(z − z*)ᵀ JᵀJ (z − z*)``,
   the curve's own squared error to second order around ``z*``. That weighs
   each direction of z by how much the curve moves along it, which a plain
   regression does not, and costs no decoder call per step, unlike training
   through the decoder. In the second stage the last layer is not a variable
   of the optimiser: for the hidden features of each step it is the exact
   weighted least-squares solution (variable projection), which reached in
   1,000 steps what the plain network had not reached in 6,000 (on the
   depth-3 Beta model: 0.074% of the spread against 0.36%).
4. The graph runs the network and then the decoder module, so one session call
   gives both. Its parity gate compares ``z`` with torch (allowing the float32
   noise of the network, as the main gate) and ``x_hat`` with the bundle's own
   decoder graph on that ``z``.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch

from curvae.core.errors import ExportError
from curvae.export.graphs import EXPORT_BATCH, export_graph
from curvae.export.memo import Memo
from curvae.export.param_head import ParamData, choose_transforms
from curvae.export.parity import ROUNDING_DRAWS, _rounding_perturbed
from curvae.export.residuals import residual_record
from curvae.runtime.bundle.emulator import EMULATOR_FILE, EMULATOR_INPUTS, EMULATOR_OUTPUTS, EmulatorRecord
from curvae.runtime.bundle.format import FORMAT_VERSION, sha256_bytes
from curvae.runtime.bundle.param_head import to_u
from curvae.runtime.bundle.records import GraphInfo
from curvae.runtime.emulator import Emulator
from curvae.runtime.engine.session import make_session
from curvae.runtime.fitting.engine import FitOptions, fit_with_jacobian
from curvae.runtime.fitting.theta import start_in_box

#: Most training curves the network is fitted on (a seeded sample of them).
EMU_MAX_TRAIN = 2000
#: Width of its two hidden layers; L-BFGS iterations on the codes, then on the Jacobian-weighted codes.
EMU_HIDDEN, EMU_ITERS_CODES, EMU_ITERS_METRIC = 64, 100, 1000
#: Ridge on the exactly solved last layer, relative to its normal matrix's mean diagonal.
RIDGE = 1e-10
#: Fewest curves with known parameters an emulator is trained on.
EMU_MIN_CURVES = 20
#: Networks kept per process, by their exact inputs (another opset or variant of one run trains nothing again).
_TRAINED = Memo()


class EmulatorNet(torch.nn.Module):
    """``θ (n, k) → z (n, D)``: standardised ``u`` and (positive parameters) ``log θ`` into an MLP."""

    def __init__(self, k: int, latent_dim: int, hidden: int, transforms: tuple[str, ...], theta: np.ndarray) -> None:
        super().__init__()
        log = np.array([t == "log" for t in transforms], np.float64)
        positive = (theta.min(axis=0) > 0).astype(np.float64)
        floor = np.where(positive > 0, theta.min(axis=0) * 1e-3, 1.0)  # log stays finite when extrapolating below
        u = to_u(theta, transforms)
        logs = np.log(np.maximum(theta, floor))
        # ``linear`` (1 − log) is state of its own: a constant computed from the state in ``forward`` would be
        # folded into the traced graph, and a graph with such a constant cannot be reused for the next network.
        buffers = {"log": log, "linear": 1.0 - log, "positive": positive, "floor": floor, "u_mean": u.mean(axis=0),
                   "u_std": np.maximum(u.std(axis=0), 1e-12), "l_mean": logs.mean(axis=0) * positive,
                   "l_std": np.where(positive > 0, np.maximum(logs.std(axis=0), 1e-12), 1.0)}
        for name, value in buffers.items():
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32))
        self.net = torch.nn.Sequential(torch.nn.Linear(2 * k, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, hidden),
                                       torch.nn.SiLU(), torch.nn.Linear(hidden, latent_dim))

    def features(self, theta: torch.Tensor) -> torch.Tensor:
        # max(θ, floor) as floor + relu(θ − floor): Sub, Relu, Add broadcast at every opset a bundle may use.
        logs = torch.log(self.floor + torch.relu(theta - self.floor))
        u = self.log * logs + self.linear * theta
        return torch.cat([(u - self.u_mean) / self.u_std, self.positive * (logs - self.l_mean) / self.l_std], dim=1)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return self.net(self.features(theta))


class EmulatorGraph(torch.nn.Module):
    """What ``emulator.onnx`` computes: ``θ → (decoder(net(θ)), net(θ))``."""

    def __init__(self, net: EmulatorNet, decoder: torch.nn.Module) -> None:
        super().__init__()
        self.emulator, self.decoder = net, decoder

    def forward(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.emulator(theta)
        return self.decoder(z), z


def _lbfgs(params, loss_fn, iters: int) -> None:
    opt = torch.optim.LBFGS(params, lr=1, max_iter=iters, history_size=50, tolerance_grad=1e-12,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)


def train_emulator(theta: np.ndarray, z: np.ndarray, jac: np.ndarray, transforms: tuple[str, ...], *,
                   hidden: int = EMU_HIDDEN, iters: tuple[int, int] = (EMU_ITERS_CODES, EMU_ITERS_METRIC),
                   seed: int = 0) -> EmulatorNet:
    """Fit the network on parameters ``theta`` (n, k), fitted codes ``z`` (n, D) and the decoder's Jacobians
    ``jac`` (n, D, P) there; float64 L-BFGS, then float32. The same inputs give the same network, so a process
    keeps the last few it trained (a copy is returned)."""
    key = Memo.key((theta, z, jac), (transforms, hidden, iters, seed))
    return _TRAINED.get(key, lambda: _train(theta, z, jac, transforms, hidden=hidden, iters=iters, seed=seed))


def _train(theta: np.ndarray, z: np.ndarray, jac: np.ndarray, transforms: tuple[str, ...], *, hidden: int,
           iters: tuple[int, int], seed: int) -> EmulatorNet:
    torch.manual_seed(seed)
    net = EmulatorNet(theta.shape[1], z.shape[1], hidden, transforms, theta).double()
    x = net.features(torch.tensor(theta, dtype=torch.float64)).detach()
    y = torch.tensor(z, dtype=torch.float64)
    j = jac.astype(np.float64)
    metric = torch.tensor(np.einsum("ndp,nep->nde", j, j) / max(np.mean(np.einsum("ndp,ndp->n", j, j)), 1e-30))
    _lbfgs(net.net.parameters(), lambda: (net.net(x) - y).square().sum(1).mean(), iters[0])
    body, last = net.net[:-1], net.net[-1]
    d = z.shape[1]

    def solve_last() -> tuple[torch.Tensor, torch.Tensor]:
        """The hidden features (n, h + 1) and the last layer (d, h + 1) that minimises the weighted loss for them:
        a linear least-squares problem, solved exactly."""
        h = torch.cat([body(x), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
        g = h.shape[1]
        a = torch.einsum("nde,nh,ng->dheg", metric, h, h).reshape(d * g, d * g) / len(x)
        rhs = torch.einsum("nde,ne,nh->dh", metric, y, h).reshape(d * g) / len(x)
        a = a + RIDGE * torch.trace(a) / (d * g) * torch.eye(d * g, dtype=torch.float64)
        return h, torch.linalg.solve(a, rhs).reshape(d, g)

    def weighted_loss() -> torch.Tensor:
        h, w = solve_last()
        r = h @ w.T - y
        return torch.einsum("nd,nde,ne->n", r, metric, r).mean()

    _lbfgs(body.parameters(), weighted_loss, iters[1])
    with torch.no_grad():
        _, w = solve_last()
        last.weight.copy_(w[:, :-1])
        last.bias.copy_(w[:, -1])
    return net.float().eval()


def build_emulator(enc_bytes: bytes, dec_bytes: bytes, decoder: torch.nn.Module, head_bytes: bytes | None,
                   train_curves: np.ndarray, val_curves: np.ndarray, params: ParamData, *, z_fit_median: float,
                   meta: dict[str, str], opset: int, atol: float, rtol: float, seed: int = 0,
                   ranges: dict[str, list[float]] | None = None) -> tuple[bytes, EmulatorRecord] | None:
    """Fit, export, parity-check and score the emulator; None when too few curves have parameters.

    ``decoder`` is the exported decoder module (its graph is ``dec_bytes``); ``head_bytes`` the parameter head,
    whose θ of the encoder's μ starts the parameter-space fits scored here, as at run time. ``ranges``: the
    declared range of each parameter (a built-in family's), recorded as the training range when it holds every
    training value; otherwise the training values' own. Raises
    :class:`ExportError` when onnxruntime and torch disagree (nothing is written then).
    """
    if len(params.train) < EMU_MIN_CURVES or len(params.val) < 2:
        return None
    cpu = ["CPUExecutionProvider"]
    enc, dec = make_session(enc_bytes, cpu, name="encoder"), make_session(dec_bytes, cpu, name="decoder")
    pick = np.sort(np.random.default_rng(seed).permutation(len(train_curves))[:EMU_MAX_TRAIN])
    x = np.ascontiguousarray(train_curves[pick], dtype=np.float32)
    mu = enc.run(None, {"x": x, "eps": np.zeros((len(x), enc.get_inputs()[1].shape[1]), np.float32)})[1]
    fit, jac = fit_with_jacobian(lambda z: dec.run(None, {"z": z})[0], x, mu, FitOptions())
    ok = fit.success & np.isfinite(fit.z).all(axis=1)
    transforms = choose_transforms(params.train)
    net = train_emulator(params.train[pick][ok], fit.z[ok], jac[ok], transforms, seed=seed)
    graph = EmulatorGraph(net, copy.deepcopy(decoder).float().eval())
    k = params.train.shape[1]
    proto = export_graph(graph, (torch.ones(EXPORT_BATCH, k),), input_names=EMULATOR_INPUTS,
                         output_names=EMULATOR_OUTPUTS, opset=opset,
                         metadata={**meta, "curvae.format_version": FORMAT_VERSION, "curvae.graph": "emulator"})
    data = proto.SerializeToString()
    low, high = params.train.min(axis=0), params.train.max(axis=0)
    declared = np.array([(ranges or {}).get(name, [np.nan, np.nan]) for name in params.names], np.float64)
    if np.isfinite(declared).all() and (declared[:, 0] <= low).all() and (declared[:, 1] >= high).all() and \
            all(lo > 0 for lo, t in zip(declared[:, 0], transforms) if t == "log"):
        low, high = declared[:, 0], declared[:, 1]
    parity = emulator_parity(net, data, dec, low=low, high=high, atol=atol, rtol=rtol, seed=seed)
    record = EmulatorRecord(
        graph=GraphInfo(EMULATOR_FILE, sha256_bytes(data), EMULATOR_INPUTS, EMULATOR_OUTPUTS), names=params.names,
        low=tuple(float(v) for v in low), high=tuple(float(v) for v in high), transforms=transforms,
        hidden=EMU_HIDDEN, n_train=int(ok.sum()), n_held_out=0, error_median=0.0, error_p90=0.0, spread=0.0,
        fit_residual_median=float(z_fit_median), parity=parity)
    return data, score(record, data, head_bytes, enc, np.asarray(val_curves, np.float32), params.val)


def score(record: EmulatorRecord, data: bytes, head_bytes: bytes | None, enc, curves: np.ndarray,
          theta: np.ndarray) -> EmulatorRecord:
    """``record`` with the emulator's error on held-out ``curves`` (m, P) at their true ``theta`` (m, k), and the
    residuals of the default parameter-space fit of them (the runtime's, from the head's θ of the encoder's μ)."""
    emu = Emulator(make_session(data, ["CPUExecutionProvider"], name="emulator"), record)
    inside = ~emu.outside(theta)  # the held-out split may reach a little past the training range
    if inside.sum() >= 2:
        curves, theta = curves[inside], theta[inside]
    x_hat, _ = emu.run(theta.astype(np.float32))
    err = np.linalg.norm(x_hat.astype(np.float64) - curves, axis=1)
    spread = float(np.median(np.linalg.norm(curves - curves.mean(axis=0), axis=1)))
    v0 = np.zeros_like(theta, dtype=np.float32)
    if head_bytes is not None:
        head = make_session(head_bytes, ["CPUExecutionProvider"], name="params")
        mu = enc.run(None, {"x": curves, "eps": np.zeros((len(curves), enc.get_inputs()[1].shape[1]), np.float32)})[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            v0 = start_in_box(emu.to_v(head.run(None, {"z": mu})[0].astype(np.float64)))
    fit, _ = fit_with_jacobian(emu.run_v, curves, v0, FitOptions(bound=1.0))
    return replace(record, n_held_out=int(len(curves)), error_median=float(np.median(err)),
                   error_p90=float(np.quantile(err, 0.9)), spread=spread, theta_fit=residual_record(curves, fit))


def emulator_parity(net: EmulatorNet, data: bytes, dec, *, low: np.ndarray, high: np.ndarray, atol: float,
                    rtol: float, seed: int = 0) -> dict[str, float | bool]:
    """onnxruntime against torch on θ drawn across the training range (batches 1, 7, 1000).

    ``z`` passes when ``|z_onnx − z_torch| <= atol + rtol·|z| + 4·noise``, with ``noise`` the spread of float64
    copies of the network whose weights carry random float32 rounding errors (as the main gate); ``x_hat`` must
    match the bundle's decoder graph run on that ``z`` within ``atol + rtol·|x|``.
    """
    sess = make_session(data, ["CPUExecutionProvider"], name="emulator")
    gen = torch.Generator().manual_seed(seed)
    exact64 = copy.deepcopy(net).double()
    rounded = [_rounding_perturbed(net, gen) for _ in range(ROUNDING_DRAWS)]
    theta = np.random.default_rng(seed).uniform(low, high, size=(1008, len(low))).astype(np.float32)
    worst_abs = worst_rel = 0.0
    for lo, hi in ((0, 1), (1, 8), (8, 1008)):
        t = torch.from_numpy(theta[lo:hi])
        with torch.no_grad():
            ref = net(t).numpy().astype(np.float64)
            exact = exact64(t.double()).numpy()
            noise = np.max([np.abs(m(t.double()).numpy() - exact) for m in rounded] + [np.abs(ref - exact)],
                           axis=(0, 1))  # (D,)
        x_got, z_got = sess.run(None, {"theta": theta[lo:hi]})
        x_ref = dec.run(None, {"z": z_got})[0]
        checks = (("z", z_got.astype(np.float64), ref, atol + rtol * np.abs(ref) + 4 * noise),
                  ("x_hat", x_got.astype(np.float64), x_ref.astype(np.float64), atol + rtol * np.abs(x_ref)))
        for name, got, want, allowed in checks:
            diff = np.abs(got - want)
            bad = ~np.isfinite(got) | (diff > allowed)
            if bad.any():
                i = np.unravel_index(np.argmax(np.where(bad, diff - allowed, -np.inf)), diff.shape)
                raise ExportError(f"parity failed: emulator.{name} at batch {hi - lo} differs by {diff[i]:.3g} > "
                                  f"allowed {allowed[i]:.3g}; nothing was written (export with --no-params to "
                                  "leave the parameter head and the emulator out)")
            worst_abs = max(worst_abs, float(diff.max()))
            worst_rel = max(worst_rel, float((diff / np.maximum(np.abs(want), 1e-12)).max()))
    return {"max_abs": worst_abs, "max_rel": worst_rel, "passed": True}
