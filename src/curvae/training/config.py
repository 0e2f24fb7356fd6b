"""Frozen configs of a training run, saved together as ``config.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from curvae.core.errors import InputError

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(Device)
Activation = Literal["relu", "silu", "tanh", "elu"]
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
Scaling = Literal["global", "per-point"]
SCALINGS: tuple[str, ...] = get_args(Scaling)
Loss = Literal["calibrated", "sse"]
LOSSES: tuple[str, ...] = get_args(Loss)
#: Optimiser steps of the default budget: the same for 1,600 curves and for 1,000,000.
DEFAULT_STEPS = 12_000
#: A step-budget run is reported in at least this many rounds (an epoch, or a share of one on large data).
MIN_ROUNDS = 20
#: Largest model accepted: 2**28 float32 parameters (1 GiB of weights); run folders are read with this cap.
MAX_PARAMS = 2**28


class _Config:
    """``to_dict``/``from_dict`` shared by the config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"{cls.__name__} got unknown keys {unknown}; known keys are {sorted(names)}")
        return cls(**d)


def _positive(name: str, value: float, *, integer: bool = False, zero_ok: bool = False) -> None:
    ok_type = isinstance(value, int) and not isinstance(value, bool) if integer else isinstance(value, (int, float))
    if not ok_type or value != value or (value < 0 if zero_ok else value <= 0):
        kind = "an integer" if integer else "a number"
        rule = ">= 0" if zero_ok else "> 0"
        raise InputError(f"{name}={value!r} must be {kind} {rule}")


@dataclass(frozen=True)
class DataConfig(_Config):
    """Where the curves come from: a built-in family or a file."""

    family: str = "beta"
    n_curves: int = 5000
    data: str | None = None
    val_fraction: float = 0.1
    header: str = "auto"  # how a data file's first row is read: auto, grid, names, none
    #: Read a .npy/.zarr data file by blocks instead of whole (curvae.training.stream): auto (above 256 MiB), on, off.
    stream: str = "auto"

    def __post_init__(self) -> None:
        _positive("n_curves", self.n_curves, integer=True)
        if self.stream not in ("auto", "on", "off"):
            raise InputError(f"stream={self.stream!r} must be one of auto, on, off")
        if self.header not in ("auto", "grid", "names", "none"):
            raise InputError(f"header={self.header!r} must be one of auto, grid, names, none")
        if not 0.0 < self.val_fraction < 0.5:
            raise InputError(f"val_fraction={self.val_fraction!r} must be in (0, 0.5)")


@dataclass(frozen=True)
class ModelConfig(_Config):
    """VAE shape: ``n_points → hidden × depth → (μ, log σ²)``, mirrored in the decoder.

    ``linear_path`` adds an affine map beside each MLP, started at PCA (see
    :mod:`curvae.training.model`); ``scaling`` divides the centred curves by
    one global scale or by each point's own (the seed's). The worked example
    is ``linear_path=False, scaling="per-point", activation="relu"``.
    """

    n_points: int = 100
    latent_dim: int = 2
    hidden: int = 256
    depth: int = 1
    activation: Activation = "relu"
    linear_path: bool = True
    scaling: Scaling = "global"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise InputError(f"activation={self.activation!r} must be one of {', '.join(ACTIVATIONS)}")
        if self.scaling not in SCALINGS:
            raise InputError(f"scaling={self.scaling!r} must be one of {', '.join(SCALINGS)}")
        if not isinstance(self.linear_path, bool):
            raise InputError(f"linear_path={self.linear_path!r} must be true or false")
        _positive("n_points", self.n_points, integer=True)
        _positive("latent_dim", self.latent_dim, integer=True)
        _positive("hidden", self.hidden, integer=True)
        _positive("depth", self.depth, integer=True)
        if self.n_points < 2:
            raise InputError(f"n_points={self.n_points} must be at least 2")
        if self.n_params() > MAX_PARAMS:
            raise InputError(f"n_points={self.n_points}, hidden={self.hidden}, depth={self.depth}, latent_dim="
                             f"{self.latent_dim} make {self.n_params():,} parameters, over the {MAX_PARAMS:,} curvae "
                             "supports; use a smaller --hidden or --depth")

    def n_params(self) -> int:
        """Weights and biases of encoder and decoder together."""
        h, p, d = self.hidden, self.n_points, self.latent_dim
        inner = max(self.depth - 1, 0) * (h * h + h)
        linear = (p * 2 * d + 2 * d) + (d * p + p) if self.linear_path else 0
        return (p * h + h + inner + h * 2 * d + 2 * d) + (d * h + h + inner + h * p + p) + linear


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Optimisation: mini-batch Adam with warm-up then exponential LR decay.

    The budget is ``steps`` optimiser steps (``DEFAULT_STEPS`` when neither
    is given), whatever the size of the data, or ``epochs`` passes over it
    (the seed's recipe). Progress is reported per round: one epoch, or
    ``steps / MIN_ROUNDS`` steps when an epoch is longer than that.
    ``loss="calibrated"`` is ``(P/2)·log(MSE) + β·KL`` (the σ-VAE's optimal
    shared noise), which needs no ``beta`` tuning across units and lengths;
    ``"sse"`` is the seed's ``SSE + β·KL``.

    ``ema`` is the decay of the running weight average that is written as the
    model (Polyak averaging, debiased like Adam's moments); 0 writes the last
    weights instead. ``adam_beta2`` is 0.99 rather than torch's 0.999, because
    the faster second-moment estimate keeps early steps at lr 1e-2 stable.
    ``threads`` is torch's intra-op thread count while training (0: one per
    core); it is part of the run's config because the thread count can change
    the floating-point summation order, so a resume uses the same one.
    ``sync_every`` matters only with several processes (torchrun, ``--nproc``):
    each rank takes a 1/world share of the steps, and the ranks average their
    weights every ``sync_every`` steps and at each round's end
    (:mod:`curvae.training.parallel.distributed`). Why the defaults are what they are:
    ``docs/training-recipe.md``.
    """

    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 32
    lr: float = 5e-3
    lr_final: float = 2.5e-6
    warmup_epochs: int = 3
    loss: Loss = "calibrated"
    beta: float = 1.0
    kl_warmup_epochs: int = 0
    ema: float = 0.999
    adam_beta2: float = 0.99
    threads: int = 1
    device: Device = "auto"
    seed: int = 0
    #: With several processes (torchrun): optimiser steps between parameter averages (curvae.training.parallel.distributed).
    sync_every: int = 64

    def __post_init__(self) -> None:
        if self.epochs is not None and self.steps is not None:
            raise InputError(f"epochs={self.epochs} and steps={self.steps} were both given; the budget is one of them "
                             "(steps for any data size, epochs to repeat the seed's recipe)")
        if self.epochs is not None:
            _positive("epochs", self.epochs, integer=True)
        if self.steps is not None:
            _positive("steps", self.steps, integer=True)
        if self.loss not in LOSSES:
            raise InputError(f"loss={self.loss!r} must be one of {', '.join(LOSSES)}")
        _positive("batch_size", self.batch_size, integer=True)
        _positive("lr", self.lr)
        _positive("lr_final", self.lr_final)
        _positive("warmup_epochs", self.warmup_epochs, integer=True, zero_ok=True)
        _positive("beta", self.beta, zero_ok=True)
        _positive("kl_warmup_epochs", self.kl_warmup_epochs, integer=True, zero_ok=True)
        _positive("ema", self.ema, zero_ok=True)
        if not (isinstance(self.adam_beta2, (int, float)) and 0.0 < self.adam_beta2 < 1.0):
            raise InputError(f"adam_beta2={self.adam_beta2!r} must be in (0, 1): it is the decay of Adam's "
                             "second-moment estimate (0.99 by default)")
        if not self.ema < 1.0:
            raise InputError(f"ema={self.ema!r} must be in [0, 1): it is the decay of the weight average "
                             "(0 keeps no average)")
        _positive("threads", self.threads, integer=True, zero_ok=True)
        _positive("sync_every", self.sync_every, integer=True)
        if self.device not in DEVICES:
            raise InputError(f"device={self.device!r} must be one of {', '.join(DEVICES)}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise InputError(f"seed={self.seed!r} must be an integer")


    def plan(self, n_train: int) -> tuple[int, int]:
        """(rounds, steps per round) for ``n_train`` curves: the whole budget is their product.

        With ``epochs`` a round is one epoch. With a step budget a round is an
        epoch, or ``steps // MIN_ROUNDS`` steps when an epoch is longer.
        """
        per_epoch = -(-n_train // self.batch_size)
        if self.epochs is not None:
            return self.epochs, per_epoch
        steps = self.steps or DEFAULT_STEPS
        per_round = max(1, min(per_epoch, steps // MIN_ROUNDS))
        return -(-steps // per_round), per_round

    def budget_text(self) -> str:
        return f"{self.epochs} epochs" if self.epochs is not None else f"{self.steps or DEFAULT_STEPS:,} steps"


#: The worked example's recipe, to reproduce the seed: plain MLPs, per-point standardisation, SSE + β·KL.
SEED_MODEL = {"linear_path": False, "scaling": "per-point", "activation": "relu"}
SEED_TRAIN = {"epochs": 100, "lr": 1e-2, "lr_final": 5e-5, "loss": "sse"}


@dataclass(frozen=True)
class RunConfig(_Config):
    """Everything that defines a training run; written as ``config.json``."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Read a config; a run written before the step budget (no ``steps``/``loss``/``linear_path`` keys) is
        read as the seed recipe it was trained with."""
        model, train = dict(d.get("model", {})), dict(d.get("train", {}))
        if "linear_path" not in model and "activation" in model:  # a whole model config from before
            model = {**{k: v for k, v in SEED_MODEL.items() if k != "activation"}, "activation": "relu", **model}
        if "loss" not in train and "adam_beta2" in train:  # a whole train config from before
            train = {**{k: v for k, v in SEED_TRAIN.items() if k != "epochs"}, "epochs": 100, **train}
        return cls(data=DataConfig.from_dict(d.get("data", {})), model=ModelConfig.from_dict(model),
                   train=TrainConfig.from_dict(train))

    @classmethod
    def seed(cls, **data_kw) -> RunConfig:
        """The worked example's recipe, exactly as curvae trained it before the linear path."""
        return cls(data=DataConfig(**data_kw), model=ModelConfig(**SEED_MODEL), train=TrainConfig(**SEED_TRAIN))
