"""The capacity search: train a ladder of networks on the same split, keep the one whose held-out fits are best.

Why a search: depth and a smooth activation cut the fit error 5-12x on curves that bend (peak, damped), while
Beta log-PDFs, which three principal components reproduce, gain little and pay in fit time; a few hundred
measured curves can even be overfitted by more capacity. So the network is chosen from the data, on the
held-out split, and the ladder starts at the recipe curvae trained before (``fast``): the result is never
worse on the held-out curves than that network, nor than PCA of its size (each run already keeps its PCA start
when that fits better; :meth:`curvae.training.trainer.Trainer.linear_if_better`).

How: candidates are trained in order of capacity, each with the run's full step budget, by
:func:`curvae.training.loop.train` itself. Growth stops when a candidate does not lower the held-out fit residual
by ``min_gain`` (the smaller one is kept: its fits are cheaper), or when the next candidate is predicted to end
past the time budget. The prediction scales the last candidate's measured seconds by the square root of the ratio
of step costs (parameters × batch size), which stays above what was measured here (``COST_EXPONENT``). The chosen run folder is
then moved to ``out`` with ``search.json`` (the config and every candidate's record) beside it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curvae.core.atomic import atomic_dir, check_can_write, write_json
from curvae.core.errors import TrainingError
from curvae.recipe.config import BATCH_SIZES, NETWORKS, SearchConfig
from curvae.recipe.score import held_out_fit_residual
from curvae.runtime.bundle.records import network_text
from curvae.training.config import ModelConfig, RunConfig, TrainConfig
from curvae.training.data import build_dataset
from curvae.training.loop import EpochCallback, train
from curvae.training.run import SUMMARY_FILE, load_run

SEARCH_FILE = "search.json"
CandidateCallback = Callable[[dict[str, Any]], None]


def candidate_config(cfg: RunConfig, name: str, n_points: int, *, batch_size: int | None = None) -> RunConfig:
    """``cfg`` with the network of candidate ``name`` (depth, activation, width) and its batch size (``batch_size``
    when the user gave one); the rest is the user's."""
    model = ModelConfig(**{**cfg.model.to_dict(), **NETWORKS[name], "n_points": n_points})
    train_cfg = TrainConfig(**{**cfg.train.to_dict(), "batch_size": batch_size or BATCH_SIZES[name]})
    return RunConfig(data=cfg.data, model=model, train=train_cfg)


def step_cost(c: RunConfig) -> float:
    """A candidate's relative training cost: parameters times curves per step."""
    return float(c.model.n_params() * c.train.batch_size)


#: Predicted seconds scale as the cost ratio to this power. Measured here: depth 1 → 2 (cost 3.4×) took 1.4-1.5×
#: the time, depth 2 at batch 32 → depth 3 at 128 (6.9×) 2.0-2.4×: small networks pay fixed costs per step, and
#: larger matrices run nearer the machine's matmul rate. 0.5 stays above both.
COST_EXPONENT = 0.5


def train_searched(
    cfg: RunConfig,
    out: str | os.PathLike[str],
    *,
    search: SearchConfig = SearchConfig(),
    batch_size: int | None = None,
    force: bool = False,
    on_epoch: EpochCallback | None = None,
    on_candidate: CandidateCallback | None = None,
) -> dict[str, Any]:
    """Train the candidates of ``search.ladder`` on ``cfg``'s data and write the best as the run folder ``out``.

    Parameters
    ----------
    cfg : RunConfig
        The run; its model's depth, activation and width are each candidate's, the rest (latent size,
        scaling, affine path) and the data and training settings are kept.
    out : path-like
        The run folder written, as :func:`curvae.training.loop.train` writes it, plus ``search.json``.
    search : SearchConfig
        Time budget, ladder and stopping rule.
    batch_size : int, optional
        Curves per step for every candidate; by default each candidate's own (``BATCH_SIZES``).
    force : bool
        Replace an existing ``out``.
    on_epoch : callable, optional
        Each candidate's per-epoch history rows (as :func:`train` reports them).
    on_candidate : callable, optional
        Called before each candidate trains, with its record (name, network, index, budget, seconds spent).

    Returns
    -------
    dict
        The chosen run's summary, with a ``capacity`` record: the budget, the seconds spent, the chosen
        candidate and, per candidate, its network, seconds, held-out fit residual median and status.
    """
    check_can_write(out, force=force)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(out.parent) / f".{out.name}.search-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        return _search(cfg, out, work, search, batch_size, force, on_epoch, on_candidate)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _search(cfg: RunConfig, out: Path, work: Path, search: SearchConfig, batch_size: int | None, force: bool,
            on_epoch: EpochCallback | None, on_candidate: CandidateCallback | None) -> dict[str, Any]:
    data = build_dataset(cfg.data, seed=cfg.train.seed)  # the trainer's own split: same data, same seed
    held_out = data.val[:search.score_curves]
    n_points = int(data.train.shape[1])
    t0 = time.perf_counter()
    records: list[dict[str, Any]] = []
    best: tuple[str, float, dict[str, Any]] | None = None
    last: tuple[float, float] | None = None  # (seconds, step cost) of the last candidate trained
    for i, name in enumerate(search.ladder):
        c = candidate_config(cfg, name, n_points, batch_size=batch_size)
        rec: dict[str, Any] = {"name": name, "network": network_text(c.model.to_dict()), **NETWORKS[name],
                               "batch_size": c.train.batch_size, "parameters": c.model.n_params()}
        records.append(rec)
        spent = time.perf_counter() - t0
        if last is not None:
            predicted = last[0] * (step_cost(c) / last[1]) ** COST_EXPONENT
            if spent + predicted > search.budget_seconds:
                rec["status"] = (f"skipped: about {predicted:.0f} s more would pass the {search.budget_seconds:g} s "
                                 f"budget ({spent:.0f} s spent)")
                break
        if on_candidate is not None:
            on_candidate({**rec, "index": i + 1, "of": len(search.ladder), "spent": spent,
                          "budget_seconds": search.budget_seconds})
        try:
            summary = train(c, work / name, on_epoch=on_epoch)
        except TrainingError as exc:
            cause = str(exc).split("; the last good epoch")[0].split("; no epoch completed")[0]
            if best is None or cause.startswith("training interrupted"):
                raise TrainingError(f"{cause} (capacity search, candidate {name}: {rec['network']}); nothing was "
                                    f"written to {str(out)!r}: run it again, or train one network with --preset "
                                    "fast to keep a resumable run") from None
            rec["status"] = f"failed: {cause}"
            break
        score = held_out_fit_residual(load_run(work / name).model, held_out)
        rec.update(seconds=round(float(summary["seconds"]), 2), held_out_fit_median=score)
        last = (float(summary["seconds"]), step_cost(c))
        if best is None or score < best[1] * (1.0 - search.min_gain):
            rec["status"] = "trained"
            best = (name, score, summary)
            continue
        rec["status"] = (f"trained: not kept, held-out fit residual {score:.4g} against {best[1]:.4g} "
                         f"(needs {search.min_gain:.0%} lower)")
        break
    for name in search.ladder[len(records):]:
        records.append({"name": name, "network": network_text(candidate_config(cfg, name, n_points).model.to_dict()),
                        **NETWORKS[name], "status": "not tried: the last candidate did not gain"
                        if records[-1]["status"].startswith("trained") else "not tried"})
    assert best is not None  # the first candidate always trains (or raises)
    chosen, score, summary = best
    capacity = {"budget_seconds": search.budget_seconds, "seconds": round(time.perf_counter() - t0, 2),
                "chosen": chosen, "network": network_text({**NETWORKS[chosen], "linear_path": cfg.model.linear_path}),
                "score": "median fit residual of held-out curves", "held_out_fit_median": score,
                "held_out_curves": int(len(held_out)), "candidates": records}
    summary = {**summary, "capacity": capacity}
    with atomic_dir(out, force=force) as tmp:
        for f in (work / chosen).iterdir():
            if f.is_file() and not f.name.startswith("."):
                os.replace(f, tmp / f.name)
        write_json(tmp / SUMMARY_FILE, summary)
        write_json(tmp / SEARCH_FILE, {"config": search.to_dict(), **capacity})
    return summary

