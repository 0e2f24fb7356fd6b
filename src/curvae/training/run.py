"""Run folders: the one module that writes them and reads them back.

A run folder holds ``config.json``, ``weights.pt`` (a plain state dict),
``checkpoint.pt`` (the resume state: model, optimiser, noise generator),
``history.json`` and ``summary.json``. Both ``.pt`` files are read with
``torch.load(weights_only=True)``, so loading never runs code.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from curvae.core.atomic import atomic_dir, write_bytes, write_json
from curvae.core.errors import InputError, RunError, first_line
from curvae.core.safeio import read_bounded, read_json
from curvae.training.config import RunConfig
from curvae.training.model import VAE

CONFIG_FILE, WEIGHTS_FILE, CHECKPOINT_FILE = "config.json", "weights.pt", "checkpoint.pt"
HISTORY_FILE, SUMMARY_FILE = "history.json", "summary.json"
RUN_FILES = frozenset({CONFIG_FILE, WEIGHTS_FILE, CHECKPOINT_FILE, HISTORY_FILE, SUMMARY_FILE})
#: What ``checkpoint.pt`` must hold, and what it may hold besides (history, time spent, resumes).
CHECKPOINT_KEYS = frozenset({"model", "optimizer", "generator", "average", "epoch"})
CHECKPOINT_EXTRA = frozenset({"history", "seconds", "resumed_from", "ranks"})


def write_run(
    out: str | os.PathLike[str],
    *,
    config: RunConfig,
    weights: bytes,
    checkpoint: dict[str, Any],
    history: list[dict[str, Any]],
    summary: dict[str, Any],
    force: bool = False,
    in_place: bool = False,
) -> None:
    """Write a run folder. ``weights`` are the bytes of :func:`weights_bytes`; ``checkpoint`` is the resume state
    :func:`load_checkpoint` reads back.

    A new folder is built in a hidden sibling and renamed into place (``force`` replaces an existing one).
    ``in_place`` updates a folder this run has already written, file by file, each atomically (temporary
    file, fsync, rename): ``checkpoint.pt`` first, which holds everything a resume needs (history and time
    included), so a process killed at any instant leaves a folder that resumes; ``summary.json`` last, so a
    status of "complete" means the weights beside it are final.
    """
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    files = [(CHECKPOINT_FILE, buf.getvalue()), (WEIGHTS_FILE, weights), (HISTORY_FILE, history),
             (SUMMARY_FILE, summary)]

    def put(root: Path) -> None:
        for name, data in files:
            write_bytes(root / name, data) if isinstance(data, bytes) else write_json(root / name, data)
        if not (root / CONFIG_FILE).is_file():
            write_json(root / CONFIG_FILE, config.to_dict())

    if in_place:
        put(Path(out))
        return
    with atomic_dir(out, force=force) as tmp:
        put(tmp)


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


def pt_byte_cap(config: RunConfig, copies: int) -> int:
    """Largest ``.pt`` file read for this run: ``copies`` float32 copies of the model's parameters
    (1 for weights.pt; 4 for checkpoint.pt: weights, two Adam moments, the average) plus 1 MiB (16 MiB for a
    checkpoint, which carries the history too)."""
    return copies * 4 * config.model.n_params() + (2**24 if copies > 1 else 2**20)


def _safe_load(path: Path, max_bytes: int) -> Any:
    """``torch.load(weights_only=True)`` of a bounded read: tensors and plain containers only, never code."""
    data = read_bounded(path, max_bytes=max_bytes, root=path.parent, error=RunError, fix="retrain the run")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about foreign pickle protocols before refusing
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        # torch's own text suggests weights_only=False, the one thing never to do here: not repeated.
        raise RunError(f"{str(path)!r} cannot be loaded safely ({type(exc).__name__}: it is corrupt or holds "
                       "objects other than tensors); only plain tensor checkpoints are accepted and "
                       "nothing in it was run: retrain the run") from None


def load_state_dict(path: str | os.PathLike[str], max_bytes: int) -> dict[str, torch.Tensor]:
    """Read weights with ``weights_only=True``: a pickle that would run code is refused."""
    state = _safe_load(Path(path), max_bytes)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunError(f"weights {str(path)!r} are not a state dict of tensors; retrain the run")
    return state


def _read_json(path: Path, kind: type) -> Any:
    """A bounded JSON read of one run file, which must hold a ``kind`` (dict or list)."""
    data = read_json(path, root=path.parent, error=RunError, fix="retrain the run")
    if not isinstance(data, kind) or (kind is list and not all(isinstance(row, dict) for row in data)):
        raise RunError(f"{path} holds {type(data).__name__}, not the {kind.__name__} curvae writes; retrain the run")
    return data


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
    missing = sorted(name for name in RUN_FILES if not os.path.lexists(root / name))
    if missing:
        raise RunError(f"run {str(root)!r} is missing {missing}; it is incomplete: retrain it")


def _config(root: Path) -> RunConfig:
    try:
        return RunConfig.from_dict(_read_json(root / CONFIG_FILE, dict))
    except (InputError, TypeError, AttributeError, ValueError) as exc:
        raise RunError(f"{root / CONFIG_FILE} is invalid ({exc}); retrain the run") from None


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load a run's resume state (model, optimiser, generator, weight average, epoch) safely."""
    root = Path(path)
    _check_files(root)
    config = _config(root)
    state = _safe_load(root / CHECKPOINT_FILE, pt_byte_cap(config, copies=4))
    if not isinstance(state, dict) or not CHECKPOINT_KEYS <= set(state) <= CHECKPOINT_KEYS | CHECKPOINT_EXTRA:
        raise RunError(f"{root / CHECKPOINT_FILE} is not a checkpoint of this curvae version (it was written "
                       "by another version, or is damaged); resume cannot continue it: retrain the run")
    history = state.get("history")
    if history is None:  # written before checkpoints carried their own history
        history = _read_json(root / HISTORY_FILE, list)
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise RunError(f"{root / CHECKPOINT_FILE} holds a history that is not a list of rows; retrain the run")
    summary = _read_json(root / SUMMARY_FILE, dict)
    if "seconds" in state:
        summary = {**summary, "seconds": float(state["seconds"])}
    return Checkpoint(config=config, state=state, history=history, summary=summary)


def load_run(path: str | os.PathLike[str]) -> Run:
    """Load a run folder written by :func:`curvae.training.train`."""
    root = Path(path)
    _check_files(root)
    config = _config(root)
    model = VAE(config.model)
    try:
        model.load_state_dict(load_state_dict(root / WEIGHTS_FILE, pt_byte_cap(config, copies=1)))
    except RuntimeError as exc:
        raise RunError(f"weights in {str(root)!r} do not match config.json ({first_line(exc)}); "
                       "retrain the run") from None
    model.eval()
    return Run(path=root, config=config, model=model, history=_read_json(root / HISTORY_FILE, list),
               summary=_read_json(root / SUMMARY_FILE, dict))
