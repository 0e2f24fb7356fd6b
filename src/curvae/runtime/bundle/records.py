"""Typed records of the manifest: the graphs, the parity report, the variants, the training and export facts.

Each record has one ``to_dict`` (the JSON layout in ``docs/bundle-format.md``)
and one ``from_dict``; nothing else reads the manifest by string keys.
Readers ignore keys they do not know, and keys a format-1.0 bundle lacks
take the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

#: The precision variants an export can add to a bundle.
Variant = Literal["fp16", "int8"]
VARIANTS: tuple[str, ...] = get_args(Variant)


def floats(values: Any) -> tuple[float, ...]:
    """A manifest list of numbers as a tuple of floats (None or empty: ())."""
    return tuple(float(v) for v in values or ())


@dataclass(frozen=True)
class GraphInfo:
    """One ONNX graph of a bundle: its file, hash and I/O names."""

    file: str
    sha256: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "inputs": list(self.inputs), "outputs": list(self.outputs)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GraphInfo:
        return cls(file=str(d["file"]), sha256=str(d["sha256"]), inputs=tuple(d["inputs"]), outputs=tuple(d["outputs"]))


@dataclass(frozen=True)
class ParityRecord:
    """The export-time torch-vs-onnxruntime report: tolerance, worst case, verdict and every row."""

    atol: float
    rtol: float
    batches: tuple[int, ...]
    providers: tuple[str, ...]
    max_abs: float
    max_rel: float
    passed: bool
    float32_noise: float = 0.0  # not recorded before format 1.1
    rows: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"atol": self.atol, "rtol": self.rtol, "batches": list(self.batches), "providers": list(self.providers),
                "max_abs": self.max_abs, "max_rel": self.max_rel, "float32_noise": self.float32_noise,
                "passed": self.passed, "rows": [dict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParityRecord:
        return cls(atol=float(d["atol"]), rtol=float(d.get("rtol", 0.0)), batches=tuple(int(b) for b in d["batches"]),
                   providers=tuple(str(p) for p in d["providers"]), max_abs=float(d["max_abs"]),
                   max_rel=float(d["max_rel"]), passed=bool(d["passed"]),
                   float32_noise=float(d.get("float32_noise", 0.0)), rows=tuple(dict(r) for r in d.get("rows", ())))


@dataclass(frozen=True)
class VariantRecord:
    """A precision variant's graphs and what export measured of it against the float32 graphs."""

    encoder: GraphInfo
    decoder: GraphInfo
    opset: int
    ir_version: int
    min_onnxruntime: str
    max_abs: dict[str, float]  # per output: x_hat, mu, logvar
    budget: float
    decode_rows_per_s: float
    fp32_decode_rows_per_s: float
    fit_residual_median: float
    fp32_fit_residual_median: float
    n_fit_targets: int
    #: How the int8 variant was quantised (``INT8_SCHEME``); "" for fp16 and for int8 bundles written before it
    #: was recorded, whose u8×s8 weights may saturate on x86 CPUs without VNNI.
    scheme: str = ""
    #: max |variant − float32| of each output under each integer kernel: "native" (this machine's onnxruntime),
    #: "exact" (int32 sums: VNNI, ARM64, u8×u8) and "pairsum16" (int16-saturated pairs: x86 without VNNI).
    #: ``max_abs`` is the worst of them. Empty before it was recorded.
    max_abs_by_kernel: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder.to_dict(), "decoder": self.decoder.to_dict(), "opset": self.opset,
                "ir_version": self.ir_version, "min_onnxruntime": self.min_onnxruntime,
                "max_abs": dict(self.max_abs), "budget": self.budget, "decode_rows_per_s": self.decode_rows_per_s,
                "fp32_decode_rows_per_s": self.fp32_decode_rows_per_s,
                "fit_residual_median": self.fit_residual_median,
                "fp32_fit_residual_median": self.fp32_fit_residual_median, "n_fit_targets": self.n_fit_targets,
                **({"scheme": self.scheme} if self.scheme else {}),
                **({"max_abs_by_kernel": {k: dict(v) for k, v in self.max_abs_by_kernel.items()}}
                   if self.max_abs_by_kernel else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, min_onnxruntime: str) -> VariantRecord:
        """``min_onnxruntime`` is used when the record does not carry its own (format 1.0)."""
        return cls(encoder=GraphInfo.from_dict(d["encoder"]), decoder=GraphInfo.from_dict(d["decoder"]),
                   opset=int(d["opset"]), ir_version=int(d["ir_version"]),
                   min_onnxruntime=str(d.get("min_onnxruntime") or min_onnxruntime),
                   max_abs={str(k): float(v) for k, v in d["max_abs"].items()}, budget=float(d["budget"]),
                   decode_rows_per_s=float(d["decode_rows_per_s"]),
                   fp32_decode_rows_per_s=float(d["fp32_decode_rows_per_s"]),
                   fit_residual_median=float(d["fit_residual_median"]),
                   fp32_fit_residual_median=float(d["fp32_fit_residual_median"]),
                   n_fit_targets=int(d.get("n_fit_targets", 0)), scheme=str(d.get("scheme", "")),
                   max_abs_by_kernel={str(k): {str(o): float(e) for o, e in v.items()}
                                      for k, v in (d.get("max_abs_by_kernel") or {}).items()})


def network_text(model: dict[str, Any]) -> str:
    """``depth 3 × 256 silu + affine path``: a model config's network in a few words (a config written before
    the affine path has no ``linear_path`` key: the seed's plain MLPs)."""
    return (f"depth {model.get('depth')} × {model.get('hidden')} {model.get('activation')}"
            + (" + affine path" if model.get("linear_path", False) else ""))


def capacity_scores(capacity: dict[str, Any], fmt: str = ".4g") -> str:
    """``fast 0.08479, deep2 0.01462, deep3 0.007017``: each trained candidate of a capacity search (``capacity``,
    as :class:`TrainingRecord` holds it) with its held-out fit residual median."""
    return ", ".join(f"{c['name']} {c['held_out_fit_median']:{fmt}}" for c in capacity.get("candidates", ())
                     if isinstance(c, dict) and "held_out_fit_median" in c)


@dataclass(frozen=True)
class TrainingRecord:
    """What the run said of itself: sizes, final losses, timing, latent statistics, its config and history."""

    epochs: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    final: dict[str, float] = field(default_factory=dict)  # recon, kl, val_recon, val_rmse
    seconds: float | None = None
    device: str | None = None
    latent_mean: tuple[float, ...] = ()
    latent_std: tuple[float, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)  # the run's RunConfig, as written in config.json
    history: tuple[dict[str, Any], ...] = ()  # one row per epoch: epoch, recon, kl, val_recon, lr
    #: The capacity search that chose the network (budget, seconds, chosen, per-candidate scores); {} when the
    #: network was given (``curvae.recipe.capacity``).
    capacity: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "n_train": self.n_train, "n_val": self.n_val, "final": dict(self.final),
                "seconds": self.seconds, "device": self.device, "latent_mean": list(self.latent_mean),
                "latent_std": list(self.latent_std), "config": dict(self.config),
                "history": [dict(r) for r in self.history], **({"capacity": dict(self.capacity)} if self.capacity
                                                                 else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingRecord:
        def opt(key: str, kind: type) -> Any:
            return None if d.get(key) is None else kind(d[key])

        return cls(epochs=opt("epochs", int), n_train=opt("n_train", int), n_val=opt("n_val", int),
                   final={str(k): v for k, v in (d.get("final") or {}).items()}, seconds=opt("seconds", float),
                   device=opt("device", str), latent_mean=floats(d.get("latent_mean")),
                   latent_std=floats(d.get("latent_std")), config=dict(d.get("config") or {}),
                   history=tuple(dict(r) for r in d.get("history") or ()),
                   capacity=dict(d["capacity"]) if isinstance(d.get("capacity"), dict) else {})


@dataclass(frozen=True)
class FitResidualRecord:
    """Residuals of the default fit on held-out curves of the training data, measured at export.

    The out-of-family flag compares a target's residual with a quantile of
    these. ``values`` are sorted; ``n_points`` is the grid they were measured on.

    The model's own error (format 1.2) describes where the true curve lies
    around a fit:

    - ``point_rms`` (P,): the RMS of the held-out residual at each grid point;
    - ``basis`` (k, P) and ``scores`` (m, k): the k leading directions of the
      held-out residual curves and each curve's weight on them. The residuals
      are smooth and strongly correlated from point to point, and these keep
      that shape;
    - ``rest_rms`` (P,): what those k directions leave, per point.

    They are empty in older bundles.
    """

    method: str
    n_points: int
    values: tuple[float, ...]
    point_rms: tuple[float, ...] = ()
    basis: tuple[tuple[float, ...], ...] = ()
    scores: tuple[tuple[float, ...], ...] = ()
    rest_rms: tuple[float, ...] = ()

    def quantile(self, q: float) -> float:
        return float(np.quantile(np.asarray(self.values, dtype=np.float64), q))

    @property
    def has_emulator_error(self) -> bool:
        return len(self.point_rms) == self.n_points

    def emulator_var(self) -> np.ndarray | None:
        """The model's own error variance per grid point (P,), or None when the bundle does not record it."""
        return np.asarray(self.point_rms, np.float64) ** 2 if self.has_emulator_error else None

    def residual_draws(self, rng: np.random.Generator) -> np.ndarray | None:
        """Held-out residual curves (m, P): their k leading directions, plus independent draws of the rest."""
        if not (self.has_emulator_error and self.scores):
            return None
        low = np.asarray(self.scores, np.float64) @ np.asarray(self.basis, np.float64)
        return low + rng.standard_normal(low.shape) * np.asarray(self.rest_rms, np.float64)

    def to_dict(self) -> dict[str, Any]:
        d = {"method": self.method, "n_points": self.n_points, "n": len(self.values), "values": list(self.values)}
        if self.has_emulator_error:
            d.update({"point_rms": list(self.point_rms), "basis": [list(r) for r in self.basis],
                      "scores": [list(r) for r in self.scores], "rest_rms": list(self.rest_rms)})
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitResidualRecord:
        values = tuple(sorted(float(v) for v in d["values"]))
        if not values or not all(np.isfinite(v) and v >= 0 for v in values):
            raise ValueError("fit_residuals.values must be a non-empty list of finite residuals >= 0")
        n_points = int(d["n_points"])
        point_rms = tuple(float(v) for v in d.get("point_rms") or ())
        basis = tuple(tuple(float(v) for v in row) for row in d.get("basis") or ())
        scores = tuple(tuple(float(v) for v in row) for row in d.get("scores") or ())
        rest = tuple(float(v) for v in d.get("rest_rms") or ())
        if point_rms:
            k = len(basis)
            ok = (len(point_rms) == n_points and len(rest) == n_points and all(len(r) == n_points for r in basis)
                  and all(len(r) == k for r in scores)
                  and all(np.isfinite(v) and v >= 0 for v in (*point_rms, *rest)))
            if not ok:
                raise ValueError("fit_residuals.point_rms/basis/scores/rest_rms must be finite, with point_rms and "
                                 f"rest_rms of {n_points} values >= 0, basis rows of {n_points} and scores rows of "
                                 "the basis size")
        return cls(method=str(d["method"]), n_points=n_points, values=values, point_rms=point_rms, basis=basis,
                   scores=scores, rest_rms=rest)


@dataclass(frozen=True)
class ExportRecord:
    """The export options the bundle was written with."""

    opset: int
    atol: float
    rtol: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"opset": self.opset, "atol": self.atol, "rtol": self.rtol, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExportRecord:
        return cls(opset=int(d["opset"]), atol=float(d["atol"]), rtol=float(d.get("rtol", 0.0)),
                   seed=int(d.get("seed", 0)))


@dataclass(frozen=True)
class BaselineRecord:
    """The model against PCA on the same held-out curves, measured at export (format 1.2).

    ``pca_residual_median`` maps a number of components to the median L2
    residual of PCA's best fit (the projection), with PCA fitted on the training
    curves; ``model_residual_median`` is the runtime's default fit.
    ``components_to_match`` is the fewest components that reach the model's
    median (None: more than were fitted).
    """

    method: str
    latent_dim: int
    n_train: int
    n_held_out: int
    pca_residual_median: dict[int, float]
    model_residual_median: float
    components_to_match: int | None

    @property
    def pca_same_size(self) -> float | None:
        return self.pca_residual_median.get(self.latent_dim)

    @property
    def linear_is_enough(self) -> bool:
        """PCA with as many components as the latent code is as good as the model."""
        same = self.pca_same_size
        return same is not None and same <= self.model_residual_median

    def summary(self) -> str:
        """One line: the model against PCA at its size, how many components it is worth, and the verdict."""
        d, same = self.latent_dim, self.pca_same_size
        head = (f"held-out fit residual median {self.model_residual_median:.4g}; PCA with {d} components "
                f"{same:.4g}" if same is not None else f"held-out fit residual median {self.model_residual_median:.4g}")
        if self.linear_is_enough:
            return head + f": PCA with {d} components is as good as this model here; a linear basis is enough"
        k = self.components_to_match
        worth = f"worth {k} PCA components" if k is not None else f"worth more than {max(self.pca_residual_median)}"
        return head + f"; the model is {worth}"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "latent_dim": self.latent_dim, "n_train": self.n_train,
                "n_held_out": self.n_held_out,
                "pca_residual_median": {str(k): v for k, v in sorted(self.pca_residual_median.items())},
                "model_residual_median": self.model_residual_median, "components_to_match": self.components_to_match}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaselineRecord:
        match = d.get("components_to_match")
        return cls(method=str(d["method"]), latent_dim=int(d["latent_dim"]), n_train=int(d["n_train"]),
                   n_held_out=int(d["n_held_out"]),
                   pca_residual_median={int(k): float(v) for k, v in d["pca_residual_median"].items()},
                   model_residual_median=float(d["model_residual_median"]),
                   components_to_match=None if match is None else int(match))


@dataclass(frozen=True)
class HeldOutRecord:
    """A bounded sample of the run's held-out curves, kept for bundles of user data (format 1.2).

    A custom family has no sampler, so without them a report could only fit
    samples of the model's own decoder, which prove nothing about the data.
    ``sha256`` is of the curves as float32 bytes in row order; a manifest whose
    curves do not match it is refused. ``curvae export --held-out 0`` keeps
    none (private data).
    """

    curves: tuple[tuple[float, ...], ...]
    sha256: str

    def array(self) -> np.ndarray:
        return np.asarray(self.curves, np.float32)

    @staticmethod
    def digest(curves: np.ndarray) -> str:
        import hashlib

        return hashlib.sha256(np.ascontiguousarray(curves, np.float32).tobytes()).hexdigest()

    @classmethod
    def of(cls, curves: np.ndarray) -> HeldOutRecord:
        c = np.asarray(curves, np.float32)
        return cls(curves=tuple(tuple(float(v) for v in row) for row in c), sha256=cls.digest(c))

    def to_dict(self) -> dict[str, Any]:
        return {"n": len(self.curves), "sha256": self.sha256, "curves": [list(r) for r in self.curves]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, n_points: int) -> HeldOutRecord:
        curves = tuple(tuple(float(v) for v in row) for row in d["curves"])
        if not curves or any(len(r) != n_points for r in curves) or len(curves) != int(d.get("n", len(curves))):
            raise ValueError(f"held_out.curves must be a non-empty list of rows of {n_points} values, n of them")
        arr = np.asarray(curves, np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("held_out.curves must be finite")
        rec = cls(curves=curves, sha256=str(d["sha256"]))
        if cls.digest(arr) != rec.sha256:
            raise ValueError("held_out.curves do not match their sha256; the manifest was altered")
        return rec
