"""The parameter head's manifest record (format 1.3): the optional third graph, ``z → θ``.

A bundle exported from curves whose parameters are known (a built-in family,
or a data file with ``params``) carries ``params.onnx``: a small map from a
fitted latent code to the parameters of the curve it decodes to. The record
says what the graph's outputs are (names, the space it was trained in, the
range it saw) and how well it did on the held-out curves, the error that the
runtime adds to the delta-method intervals (:mod:`curvae.runtime.fitting.params`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curvae.runtime.bundle.records import GraphInfo, floats

PARAMS_FILE = "params.onnx"
PARAMS_INPUTS = ("z",)
PARAMS_OUTPUTS = ("theta",)
#: How a parameter is represented where the head is trained and its error measured.
TRANSFORMS = ("identity", "log")


def to_u(theta: np.ndarray, transforms: tuple[str, ...]) -> np.ndarray:
    """θ (..., k) in the head's space ``u``: ``log θ`` where the transform is ``"log"`` (NaN or -inf for θ <= 0),
    ``θ`` elsewhere. The exporter trains and checks the head in it; the runtime's intervals are Gaussian in it."""
    mask = np.array([t == "log" for t in transforms])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mask, np.log(np.where(mask, theta, 1.0)), theta)


def check_named(prefix: str, record: Any, keys: tuple[str, ...]) -> None:
    """A record's ``names`` (1..64 distinct, of 1..64 characters), one value per name in each of its ``keys``, and
    its ``transforms`` among :data:`TRANSFORMS`; ValueError naming ``prefix.key`` otherwise."""
    names, k = record.names, len(record.names)
    if not 1 <= k <= 64 or len(set(names)) != k or not all(0 < len(n) <= 64 for n in names):
        raise ValueError(f"{prefix}.names must be 1..64 distinct names of 1..64 characters, not {names[:8]}")
    for key in keys:
        if len(getattr(record, key)) != k:
            raise ValueError(f"{prefix}.{key} has {len(getattr(record, key))} values for {k} parameters")
    if any(t not in TRANSFORMS for t in record.transforms):
        raise ValueError(f"{prefix}.transforms {record.transforms} must each be one of {TRANSFORMS}")


@dataclass(frozen=True)
class ParamHeadRecord:
    """The parameter head of a bundle.

    Attributes
    ----------
    graph : GraphInfo
        ``params.onnx``: input ``z`` (batch, latent_dim), output ``theta`` (batch, k).
    names : tuple of k str
    transforms : tuple of k {"identity", "log"}
        The space ``u`` the head was trained in per parameter (``u = log θ`` or ``θ``);
        its error and the intervals are Gaussian there.
    low, high : tuple of k float
        The range of the training parameters (the head extrapolates outside it).
    error : tuple of k float
        The error of the head on the held-out curves in ``u``, from their fitted
        codes (the model's and the head's own error together): the 68.27%
        quantile of its absolute value, σ for a Gaussian error.
    rel_error_median, rel_error_p90 : tuple of k float
        ``|θ̂ − θ| / |θ|`` on the held-out curves.
    hidden : int
        Width of its two hidden layers (0: an affine map).
    n_train, n_held_out : int
    parity : dict
        ``max_abs``, ``max_rel``, ``passed``: onnxruntime against torch at export.
    held_out : tuple of tuples
        The parameters of the manifest's ``held_out`` curves (user data), row by row; () otherwise.
    """

    graph: GraphInfo
    names: tuple[str, ...]
    transforms: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    error: tuple[float, ...]
    rel_error_median: tuple[float, ...]
    rel_error_p90: tuple[float, ...]
    hidden: int
    n_train: int
    n_held_out: int
    parity: dict[str, Any]
    held_out: tuple[tuple[float, ...], ...] = ()

    @property
    def k(self) -> int:
        return len(self.names)

    def log_mask(self) -> np.ndarray:
        """(k,) bool: which parameters live in log space."""
        return np.array([t == "log" for t in self.transforms])

    def to_dict(self) -> dict[str, Any]:
        d = {"graph": self.graph.to_dict(), "names": list(self.names), "transforms": list(self.transforms),
             "low": list(self.low), "high": list(self.high), "error": list(self.error),
             "rel_error_median": list(self.rel_error_median), "rel_error_p90": list(self.rel_error_p90),
             "hidden": self.hidden, "n_train": self.n_train, "n_held_out": self.n_held_out,
             "parity": dict(self.parity)}
        if self.held_out:
            d["held_out"] = [list(r) for r in self.held_out]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParamHeadRecord:
        rec = cls(graph=GraphInfo.from_dict(d["graph"]), names=tuple(str(n) for n in d["names"]),
                  transforms=tuple(str(t) for t in d["transforms"]), low=floats(d["low"]), high=floats(d["high"]),
                  error=floats(d["error"]), rel_error_median=floats(d["rel_error_median"]),
                  rel_error_p90=floats(d["rel_error_p90"]), hidden=int(d["hidden"]), n_train=int(d["n_train"]),
                  n_held_out=int(d["n_held_out"]), parity=dict(d["parity"]),
                  held_out=tuple(floats(r) for r in d.get("held_out") or ()))
        rec.check()
        return rec

    def check(self) -> None:
        """Values, not only types; raises ValueError (the manifest reader turns it into a BundleError)."""
        k = self.k
        check_named("params", self, ("transforms", "low", "high", "error", "rel_error_median", "rel_error_p90"))
        values = np.array([*self.low, *self.high, *self.error, *self.rel_error_median, *self.rel_error_p90])
        if not np.isfinite(values).all() or min(self.error) < 0:
            raise ValueError("params ranges and errors must be finite, the errors >= 0")
        if any(lo <= 0 for lo, t in zip(self.low, self.transforms) if t == "log"):
            raise ValueError("a log-space parameter must have a positive range")
        if self.graph.inputs != PARAMS_INPUTS or self.graph.outputs != PARAMS_OUTPUTS:
            raise ValueError(f"params graph I/O {self.graph.inputs}->{self.graph.outputs} differs from the format's "
                             f"{PARAMS_INPUTS}->{PARAMS_OUTPUTS}")
        if self.held_out and any(len(r) != k or not np.isfinite(r).all() for r in self.held_out):
            raise ValueError(f"params.held_out rows must hold {k} finite values each")
