"""The parameter head: a small MLP from fitted latent codes to the curves' parameters, as a third graph.

How it is built (``docs/parameters.md`` has the measurements behind each choice):

1. The runtime's own default fit (LM from the encoder's μ, on the exported
   graphs) finds the code of at most :data:`HEAD_MAX_TRAIN` training curves
   and of the held-out curves, so the head learns the codes the runtime will
   hand it, not the encoder's approximation of them.
2. Each parameter is moved to the space it is trained in: ``log θ`` when it is
   positive over a range of at most :data:`LOG_MAX_RATIO` (a temperature, a
   width), else ``θ`` itself (Beta's α in (0, 5) comes close to 0, whose log would
   weigh the flat end of the range most). That space is then standardised.
3. An MLP ``latent_dim → 32 → 32 → k`` with tanh, fitted in float64 by
   full-batch L-BFGS: on Beta its held-out median relative error is 0.09%,
   against 13% for an affine map and 3.5% for a cubic polynomial; Adam needs
   ten times as long for a worse fit.
4. The standardisation and the inverse transform are folded into the graph, so
   ``params.onnx`` maps ``z`` to ``θ`` itself; its error on the held-out
   curves, in the training space (the :data:`ERROR_QUANTILE` quantile of
   |error|), is recorded for the runtime's intervals.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from curvae.core.errors import ExportError
from curvae.export.graphs import EXPORT_BATCH, export_graph
from curvae.export.memo import Memo
from curvae.export.parity import ROUNDING_DRAWS, _rounding_perturbed
from curvae.export.variants import default_fit
from curvae.runtime.bundle.format import FORMAT_VERSION, sha256_bytes
from curvae.runtime.bundle.param_head import (
    PARAMS_FILE,
    PARAMS_INPUTS,
    PARAMS_OUTPUTS,
    ParamHeadRecord,
    to_u,
)
from curvae.runtime.bundle.records import GraphInfo
from curvae.runtime.engine.session import make_session

#: Most training curves the head is fitted on (a seeded sample of them); more add little.
HEAD_MAX_TRAIN = 2000
#: Width of the head's two hidden layers, and its L-BFGS iterations.
HEAD_HIDDEN, HEAD_ITERS = 32, 600
#: A positive parameter whose max/min over the training curves is at most this is learnt as log θ.
LOG_MAX_RATIO = 100.0
#: The head's error is this quantile of its held-out |error| in u: σ for a Gaussian error. Not the RMS (a few large
#: errors would widen every interval), and not a wider quantile: with σ given, the fit's covariance of z already
#: carries the model's own error per point, and a 95% quantile counted it twice (coverage 0.98-0.99 at σ = 0.05).
ERROR_QUANTILE = 0.6827
#: Fewest curves with known parameters a head is trained on.
HEAD_MIN_CURVES = 20


@dataclass(frozen=True)
class ParamData:
    """The parameters of the training and held-out curves.

    Attributes
    ----------
    names : tuple of k str
    train : ndarray of shape (n_train, k)
    val : ndarray of shape (n_val, k)
    """

    names: tuple[str, ...]
    train: np.ndarray
    val: np.ndarray


def choose_transforms(theta: np.ndarray) -> tuple[str, ...]:
    """``"log"`` for each column of ``theta`` (n, k) that is positive within a ratio of :data:`LOG_MAX_RATIO`."""
    lo, hi = theta.min(axis=0), theta.max(axis=0)
    return tuple("log" if lo_ > 0 and hi_ / lo_ <= LOG_MAX_RATIO else "identity" for lo_, hi_ in zip(lo, hi))


class ParamHeadNet(torch.nn.Module):
    """``z (n, D) → θ (n, k)``: an MLP on standardised ``u``, then ``u = net·scale + shift``, then exp where log."""

    def __init__(self, latent_dim: int, k: int, hidden: int, log_mask: np.ndarray, shift: np.ndarray,
                 scale: np.ndarray) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        width = latent_dim
        for _ in range(2 if hidden else 0):
            layers += [torch.nn.Linear(width, hidden), torch.nn.Tanh()]
            width = hidden
        self.net = torch.nn.Sequential(*layers, torch.nn.Linear(width, k))
        # ``keep`` (1 − mask) is state of its own: a constant computed from the state in ``forward`` would be folded
        # into the traced graph, and a graph with such a constant cannot be reused for the next head.
        mask = log_mask.astype(np.float64)
        for name, value in (("mask", mask), ("keep", 1.0 - mask), ("shift", shift), ("scale", scale)):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32))

    def standardised(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = self.net(z) * self.scale + self.shift
        return u * self.keep + torch.exp(u * self.mask) * self.mask


#: Heads kept per process, by their exact inputs (another opset or variant of one run trains nothing again).
_TRAINED = Memo()


def train_head(z: np.ndarray, theta: np.ndarray, transforms: tuple[str, ...], *, hidden: int = HEAD_HIDDEN,
               iters: int = HEAD_ITERS, seed: int = 0) -> ParamHeadNet:
    """Fit the head on codes ``z`` (n, D) and parameters ``theta`` (n, k); float64 L-BFGS, then float32. The same
    inputs give the same head, so a process keeps the last few it trained (a copy is returned)."""
    key = Memo.key((z, theta), (transforms, hidden, iters, seed))
    return _TRAINED.get(key, lambda: _train_head(z, theta, transforms, hidden=hidden, iters=iters, seed=seed))


def _train_head(z: np.ndarray, theta: np.ndarray, transforms: tuple[str, ...], *, hidden: int, iters: int,
                seed: int) -> ParamHeadNet:
    u = to_u(theta, transforms)
    shift, scale = u.mean(axis=0), np.maximum(u.std(axis=0), 1e-12)
    torch.manual_seed(seed)
    head = ParamHeadNet(z.shape[1], theta.shape[1], hidden, np.array([t == "log" for t in transforms]), shift, scale)
    head.double()
    x = torch.tensor(z, dtype=torch.float64)
    y = torch.tensor((u - shift) / scale, dtype=torch.float64)
    opt = torch.optim.LBFGS(head.net.parameters(), lr=1, max_iter=iters, history_size=50, tolerance_grad=1e-12,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (head.standardised(x) - y).square().mean()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return head.float().eval()


def build_head(enc_bytes: bytes, dec_bytes: bytes, train_curves: np.ndarray, val_curves: np.ndarray,
               params: ParamData, *, meta: dict[str, str], opset: int, atol: float, rtol: float, seed: int = 0,
               held_out_rows: int = 0) -> tuple[bytes, ParamHeadRecord] | None:
    """Fit, export and parity-check the head; None when too few curves have parameters.

    ``held_out_rows``: how many leading held-out curves the manifest keeps, whose parameters are kept too.
    Raises :class:`ExportError` when onnxruntime and torch disagree (nothing is written then).
    """
    if len(params.train) < HEAD_MIN_CURVES or len(params.val) < 2:
        return None
    cpu = ["CPUExecutionProvider"]
    enc, dec = make_session(enc_bytes, cpu, name="encoder"), make_session(dec_bytes, cpu, name="decoder")
    g = np.random.default_rng(seed)
    pick = np.sort(g.permutation(len(train_curves))[:HEAD_MAX_TRAIN])
    fit_train = default_fit(enc, dec, np.asarray(train_curves, np.float32)[pick])
    fit_val = default_fit(enc, dec, np.asarray(val_curves, np.float32))
    ok = fit_train.success & np.isfinite(fit_train.z).all(axis=1)
    transforms = choose_transforms(params.train)  # from every training curve: not from the sample
    head = train_head(fit_train.z[ok].astype(np.float64), params.train[pick][ok], transforms, seed=seed)
    with torch.no_grad():
        theta_val = head(torch.from_numpy(fit_val.z)).double().numpy()
    truth = params.val
    with np.errstate(divide="ignore", invalid="ignore"):  # a log parameter predicted <= 0: not finite, left out
        u_err = to_u(theta_val, transforms) - to_u(truth, transforms)
    good = np.isfinite(u_err).all(axis=1)
    rel = np.abs(theta_val - truth)[good] / np.maximum(np.abs(truth[good]), 1e-12)
    latent_dim = fit_val.z.shape[1]
    proto = export_graph(head, (torch.zeros(EXPORT_BATCH, latent_dim),), input_names=PARAMS_INPUTS,
                         output_names=PARAMS_OUTPUTS, opset=opset,
                         metadata={**meta, "curvae.format_version": FORMAT_VERSION, "curvae.graph": "params"})
    data = proto.SerializeToString()
    parity = head_parity(head, data, latent_dim=latent_dim, atol=atol, rtol=rtol, seed=seed)
    record = ParamHeadRecord(
        graph=GraphInfo(PARAMS_FILE, sha256_bytes(data), PARAMS_INPUTS, PARAMS_OUTPUTS), names=params.names,
        transforms=transforms, low=tuple(float(v) for v in params.train.min(axis=0)),
        high=tuple(float(v) for v in params.train.max(axis=0)),
        error=tuple(float(v) for v in np.quantile(np.abs(u_err[good]), ERROR_QUANTILE, axis=0)),
        rel_error_median=tuple(float(v) for v in np.median(rel, axis=0)),
        rel_error_p90=tuple(float(v) for v in np.percentile(rel, 90, axis=0)), hidden=HEAD_HIDDEN,
        n_train=int(ok.sum()), n_held_out=int(good.sum()), parity=parity,
        held_out=tuple(tuple(float(v) for v in row) for row in truth[:held_out_rows]))
    return data, record


def head_parity(head: ParamHeadNet, data: bytes, *, latent_dim: int, atol: float, rtol: float,
                seed: int = 0) -> dict[str, float | bool]:
    """onnxruntime against torch on prior codes (batches 1, 7, 1000), compared where the head computes: in ``u``
    (log θ for a log parameter, where exp turns an absolute rounding error into a relative one).

    An element passes when ``|u_onnx − u_torch| <= atol + rtol·|u| + 4·noise``, with ``noise`` the spread of
    float64 copies of the head whose weights carry random float32 rounding errors (as the main parity gate).
    """
    sess = make_session(data, ["CPUExecutionProvider"], name="params")
    transforms = tuple("log" if m else "identity" for m in head.mask.numpy() > 0.5)
    gen = torch.Generator().manual_seed(seed)
    exact64 = copy.deepcopy(head).double()
    rounded = [_rounding_perturbed(head, gen) for _ in range(ROUNDING_DRAWS)]
    z = np.random.default_rng(seed).standard_normal((1008, latent_dim)).astype(np.float32)
    worst_abs = worst_rel = 0.0
    for lo, hi in ((0, 1), (1, 8), (8, 1008)):
        zt = torch.from_numpy(z[lo:hi])
        with torch.no_grad(), np.errstate(divide="ignore", invalid="ignore"):
            ref = to_u(head(zt).numpy().astype(np.float64), transforms)
            exact = to_u(exact64(zt.double()).numpy(), transforms)
            noise = np.nanmax([np.abs(to_u(m(zt.double()).numpy(), transforms) - exact) for m in rounded] +
                              [np.abs(ref - exact)], axis=(0, 1))  # (k,)
            got = to_u(sess.run(None, {"z": z[lo:hi]})[0].astype(np.float64), transforms)
        diff = np.abs(got - ref)
        allowed = atol + rtol * np.abs(ref) + 4 * noise
        bad = (np.isfinite(got) != np.isfinite(ref)) | (diff > allowed)
        if bad.any():
            i = np.unravel_index(np.argmax(np.where(bad, diff - allowed, -np.inf)), diff.shape)
            raise ExportError(f"parity failed: params.theta ({transforms[i[1]]} space) at batch {hi - lo} differs by "
                              f"{diff[i]:.3g} > allowed {allowed[i]:.3g} (atol + rtol·|torch| + 4·float32 noise); "
                              "nothing was written (export with --no-params to leave the parameter head out)")
        finite = np.isfinite(diff)
        worst_abs = max(worst_abs, float(diff[finite].max(initial=0.0)))
        worst_rel = max(worst_rel, float((diff[finite] / np.maximum(np.abs(ref[finite]), 1e-12)).max(initial=0.0)))
    return {"space": "u", "max_abs": worst_abs, "max_rel": worst_rel, "passed": True}
