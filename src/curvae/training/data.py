"""Build the training set from a family or a user file, and split it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from curvae.families import get_family
from curvae.io.curves import load_curves, robust_distance
from curvae.training.config import DataConfig
from curvae.training.stream import BlockStream, open_stream, should_stream


@dataclass(frozen=True)
class Dataset:
    """Curves split into training and held-out parts.

    Attributes
    ----------
    train, val : ndarray of shape (n, n_points), float32
    grid : ndarray of shape (n_points,)
    family : dict
        Manifest description of where the curves came from.
    sha256 : str
        Hash of all curves (before the split), to check a resume uses the same data.
    """

    train: NDArray[np.float32]
    val: NDArray[np.float32]
    grid: NDArray[np.float64]
    family: dict[str, Any]
    sha256: str
    #: For a data file: the file row of each curve, train then val order (the split shuffles them).
    rows: NDArray[np.int64] | None = None
    #: Each curve's parameters, (n, k) float64, train and val like the curves; None when they are not known.
    params_train: NDArray[np.float64] | None = None
    params_val: NDArray[np.float64] | None = None
    param_names: tuple[str, ...] = ()
    #: A data file read by blocks (curvae.training.stream): ``train`` is then a bounded sample of its training
    #: curves, ``val`` its held-out blocks.
    stream: BlockStream | None = None

    @property
    def n_train(self) -> int:
        """Training curves in all (more than ``len(train)`` when streamed)."""
        return self.stream.n_train if self.stream is not None else len(self.train)

    def far_rows(self, limit: int = 3) -> list[tuple[int, float]]:
        """File rows of the curves farthest outside the others, in robust units, when they are far (> 25)."""
        if self.rows is None:
            return []
        curves = np.concatenate([self.train, self.val])
        score = robust_distance(curves)
        worst = np.argsort(-score)[:limit]
        return [(int(self.rows[i]), float(score[i])) for i in worst if score[i] > 25]


def build_dataset(cfg: DataConfig, *, seed: int) -> Dataset:
    """Generate or load the curves of ``cfg`` and split off a held-out set.

    Built-in families draw ``cfg.n_curves`` curves with ``seed``; a data file
    is used whole (``n_curves`` is ignored) and shuffled with ``seed``.
    """
    if should_stream(cfg.data, cfg.stream):
        stream, digest = open_stream(cfg.data, val_fraction=cfg.val_fraction, seed=seed)
        family = {"name": "custom", "source": str(cfg.data), "has_grid": False, "streamed": True}
        return Dataset(train=stream.sample(), val=stream.blocks(stream.val_blocks),
                       grid=np.arange(stream.n_points, dtype=np.float64), family=family, sha256=digest,
                       stream=stream)
    g = np.random.default_rng(seed)
    rows, theta, names = None, None, ()
    if cfg.data is not None:
        loaded = load_curves(cfg.data, min_rows=2, header=cfg.header)
        curves = loaded.curves
        grid = loaded.grid if loaded.grid is not None else np.arange(curves.shape[1], dtype=np.float64)
        family: dict[str, Any] = {"name": "custom", "source": str(cfg.data), "has_grid": loaded.grid is not None,
                                  **({"grid_from_first_row": True} if loaded.grid_from_first_row else {})}
        rows = g.permutation(curves.shape[0])
        curves = curves[rows]
        if loaded.params is not None:
            theta, names = loaded.params[rows], loaded.param_names or ()
    else:
        fam = get_family(cfg.family)
        curves, theta = fam.sample(cfg.n_curves, seed=g)
        names = fam.param_names
        grid = fam.grid()
        family = fam.to_dict()
    n_val = max(1, int(round(cfg.val_fraction * curves.shape[0])))
    digest = hashlib.sha256(np.ascontiguousarray(curves).tobytes()).hexdigest()
    if rows is not None:
        rows = np.concatenate([rows[n_val:], rows[:n_val]])
    return Dataset(train=curves[n_val:], val=curves[:n_val], grid=grid, family=family, sha256=digest, rows=rows,
                   params_train=None if theta is None else theta[n_val:],
                   params_val=None if theta is None else theta[:n_val], param_names=tuple(names))
