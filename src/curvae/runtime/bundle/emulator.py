"""The emulator's manifest record (format 1.4): the optional fourth graph, ``θ → (curve, z)``.

A bundle exported from curves whose parameters are known carries, beside
``params.onnx`` (z → θ), ``emulator.onnx``: a small network from the curve's
parameters to its latent code, followed by the bundle's own decoder in the same
graph. One ``session.run`` gives the curve of a parameter vector and the code
it decodes from. The record says what the inputs are (names, the training
range each parameter is checked against), how the parameters are scaled for
fits in parameter space, and how well the emulator did on the held-out curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curvae.runtime.bundle.param_head import check_named, to_u
from curvae.runtime.bundle.records import FitResidualRecord, GraphInfo, floats

EMULATOR_FILE = "emulator.onnx"
EMULATOR_INPUTS = ("theta",)
EMULATOR_OUTPUTS = ("x_hat", "z")


@dataclass(frozen=True)
class EmulatorRecord:
    """The emulator of a bundle.

    Attributes
    ----------
    graph : GraphInfo
        ``emulator.onnx``: input ``theta`` (batch, k), outputs ``x_hat`` (batch, n_points) and ``z`` (batch, latent_dim).
    names : tuple of k str
    low, high : tuple of k float
        The training range of each parameter; ``emulate`` refuses values outside it unless asked to extrapolate,
        and fits in parameter space stay inside it.
    transforms : tuple of k {"identity", "log"}
        The space ``u`` a parameter-space fit moves in (``log θ`` or ``θ``), where its intervals are Gaussian.
    hidden : int
        Width of the two hidden layers of the θ → z network.
    n_train, n_held_out : int
        Curves it was trained on, and held-out curves it was scored on.
    error_median, error_p90 : float
        ``‖emulate(θ) − curve‖₂`` over the held-out curves with their true θ: median and 90th percentile.
    spread : float
        Median ``‖curve − mean curve‖₂`` of the held-out curves: the scale the errors are read against.
    fit_residual_median : float
        Median residual of the default latent-space fit of the same curves: the model's own floor.
    parity : dict
        ``max_abs``, ``max_rel``, ``passed``: onnxruntime against torch at export.
    theta_fit : FitResidualRecord or None
        Residuals of the default parameter-space fit on the held-out curves (the out-of-family reference and
        the emulator's own error per point for those fits).
    """

    graph: GraphInfo
    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    transforms: tuple[str, ...]
    hidden: int
    n_train: int
    n_held_out: int
    error_median: float
    error_p90: float
    spread: float
    fit_residual_median: float
    parity: dict[str, Any]
    theta_fit: FitResidualRecord | None = None

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def share_median(self) -> float:
        """The median error as a share of the curves' spread."""
        return self.error_median / self.spread if self.spread > 0 else float("inf")

    @property
    def share_p90(self) -> float:
        return self.error_p90 / self.spread if self.spread > 0 else float("inf")

    def u_range(self) -> tuple[np.ndarray, np.ndarray]:
        """The training range in the fit space ``u``, each of shape (k,)."""
        return to_u(np.array(self.low), self.transforms), to_u(np.array(self.high), self.transforms)

    def to_dict(self) -> dict[str, Any]:
        d = {"graph": self.graph.to_dict(), "names": list(self.names), "low": list(self.low),
             "high": list(self.high), "transforms": list(self.transforms), "hidden": self.hidden,
             "n_train": self.n_train, "n_held_out": self.n_held_out, "error_median": self.error_median,
             "error_p90": self.error_p90, "spread": self.spread, "fit_residual_median": self.fit_residual_median,
             "parity": dict(self.parity)}
        if self.theta_fit is not None:
            d["theta_fit"] = self.theta_fit.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmulatorRecord:
        rec = cls(graph=GraphInfo.from_dict(d["graph"]), names=tuple(str(n) for n in d["names"]),
                  low=floats(d["low"]), high=floats(d["high"]), transforms=tuple(str(t) for t in d["transforms"]),
                  hidden=int(d["hidden"]), n_train=int(d["n_train"]), n_held_out=int(d["n_held_out"]),
                  error_median=float(d["error_median"]), error_p90=float(d["error_p90"]), spread=float(d["spread"]),
                  fit_residual_median=float(d["fit_residual_median"]), parity=dict(d["parity"]),
                  theta_fit=FitResidualRecord.from_dict(d["theta_fit"]) if d.get("theta_fit") else None)
        rec.check()
        return rec

    def check(self) -> None:
        """Values, not only types; raises ValueError (the manifest reader turns it into a BundleError)."""
        k = self.k
        check_named("emulator", self, ("low", "high", "transforms"))
        values = np.array([*self.low, *self.high, self.error_median, self.error_p90, self.spread,
                           self.fit_residual_median])
        if not np.isfinite(values).all() or min(values[2 * k:]) < 0:
            raise ValueError("emulator ranges and errors must be finite, the errors >= 0")
        if any(lo >= hi for lo, hi in zip(self.low, self.high)):
            raise ValueError(f"emulator ranges must have low < high, not {self.low} and {self.high}")
        if any(lo <= 0 for lo, t in zip(self.low, self.transforms) if t == "log"):
            raise ValueError("a log-space parameter must have a positive range")
        if self.graph.inputs != EMULATOR_INPUTS or self.graph.outputs != EMULATOR_OUTPUTS:
            raise ValueError(f"emulator graph I/O {self.graph.inputs}->{self.graph.outputs} differs from the format's "
                             f"{EMULATOR_INPUTS}->{EMULATOR_OUTPUTS}")
        if not 1 <= self.hidden <= 65536:
            raise ValueError(f"emulator.hidden={self.hidden} is out of bounds (1..65536)")
