"""Run folders: what training writes and what export and checks read back.

A run folder holds ``config.json``, ``weights.pt`` (a plain state dict),
``checkpoint.pt`` (the resume state: model, optimiser, noise generator),
``history.json`` and ``summary.json``. Both ``.pt`` files are read with
``torch.load(weights_only=True)``, so loading never runs code.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from curvae.core.errors import InputError, RunError
from curvae.training.config import RunConfig
from curvae.training.model import VAE

RUN_FILES = frozenset({"config.json", "weights.pt", "checkpoint.pt", "history.json", "summary.json"})


@dataclass(frozen=True)
class Run:
    """A loaded training run."""

    path: Path
    config: RunConfig
    model: VAE
    history: list[dict[str, Any]]
    summary: dict[str, Any]


def weights_bytes(model: VAE) -> bytes:
    """Serialise the state dict (tensors only, so loading never runs code)."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, buf)  # own storage each
    return buf.getvalue()


def _safe_load(path: Path) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about foreign pickle protocols before refusing
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        # torch's own text suggests weights_only=False, the one thing never to do here: not repeated.
        raise RunError(f"{str(path)!r} cannot be loaded safely ({type(exc).__name__}: it is corrupt or holds "
                       "objects other than tensors); only plain tensor checkpoints are accepted and "
                       "nothing in it was run: retrain the run") from None


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read weights with ``weights_only=True``: a pickle that would run code is refused."""
    state = _safe_load(Path(path))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunError(f"weights {str(path)!r} are not a state dict of tensors; retrain the run")
    return state


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} is not readable JSON ({exc}); retrain the run") from None


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`curvae.training.loop.resume` needs from a run folder."""

    config: RunConfig
    state: dict[str, Any]
    history: list[dict[str, Any]]
    summary: dict[str, Any]


def _check_files(root: Path) -> None:
    if not root.is_dir():
        raise RunError(f"run {str(root)!r} is not a folder; pass the --out folder of `curvae train`")
    missing = sorted(name for name in RUN_FILES if not (root / name).is_file())
    if missing:
        raise RunError(f"run {str(root)!r} is missing {missing}; it is incomplete: retrain it")


def _config(root: Path) -> RunConfig:
    try:
        return RunConfig.from_dict(_read_json(root / "config.json"))
    except (InputError, TypeError, AttributeError) as exc:
        raise RunError(f"{root / 'config.json'} is invalid ({exc}); retrain the run") from None


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load a run's resume state (model, optimiser, generator, weight average, epoch) safely."""
    root = Path(path)
    _check_files(root)
    state = _safe_load(root / "checkpoint.pt")
    if not isinstance(state, dict) or set(state) != {"model", "optimizer", "generator", "average", "epoch"}:
        raise RunError(f"{root / 'checkpoint.pt'} is not a checkpoint of this curvae version (it was written "
                       "by another version, or is damaged); resume cannot continue it: retrain the run")
    return Checkpoint(config=_config(root), state=state, history=_read_json(root / "history.json"),
                      summary=_read_json(root / "summary.json"))


def load_run(path: str | os.PathLike[str]) -> Run:
    """Load a run folder written by :func:`curvae.training.train`."""
    root = Path(path)
    _check_files(root)
    config = _config(root)
    model = VAE(config.model)
    try:
        model.load_state_dict(load_state_dict(root / "weights.pt"))
    except RuntimeError as exc:
        raise RunError(f"weights in {str(root)!r} do not match config.json ({str(exc).splitlines()[0]}); "
                       "retrain the run") from None
    model.eval()
    return Run(path=root, config=config, model=model, history=_read_json(root / "history.json"),
               summary=_read_json(root / "summary.json"))
