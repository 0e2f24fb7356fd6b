"""The capacity search: the recipe chooses its network from the data, on the held-out split, within a budget."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from curvae.cli import main
from curvae.core.errors import InputError
from curvae.recipe.capacity import SEARCH_FILE, train_searched
from curvae.recipe.config import CANDIDATES, SearchConfig
from curvae.training.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from curvae.training.run import load_run


def quick(family: str, latent_dim: int = 2, steps: int = 1500) -> RunConfig:
    return RunConfig(data=DataConfig(family=family, n_curves=1000), model=ModelConfig(latent_dim=latent_dim),
                     train=TrainConfig(steps=steps, seed=0))


def scores(summary: dict) -> dict[str, float]:
    return {c["name"]: c["held_out_fit_median"] for c in summary["capacity"]["candidates"]
            if "held_out_fit_median" in c}


@pytest.mark.slow
def test_search_grows_capacity_where_curves_bend_and_stops_where_a_line_is_exact(tmp_path):
    peak = train_searched(quick("peak"), tmp_path / "peak", search=SearchConfig(score_curves=100))
    # Beta log-PDFs are exactly linear in three functions: at d = 3 every candidate ships its PCA start, so
    # capacity gains nothing and the search keeps the smallest network.
    beta = train_searched(quick("beta", latent_dim=3), tmp_path / "beta", search=SearchConfig(score_curves=100))
    order = {name: i for i, name in enumerate(CANDIDATES)}
    assert order[peak["capacity"]["chosen"]] > order[beta["capacity"]["chosen"]] == 0
    assert [c["status"].split(":")[0] for c in beta["capacity"]["candidates"]] == ["trained", "trained", "not tried"]
    # On the held-out split the chosen network is never worse than the fast one (nor than PCA: each run keeps
    # its PCA start when that is better).
    for s in (peak, beta):
        assert s["capacity"]["held_out_fit_median"] <= scores(s)["fast"]
    assert scores(peak)["fast"] > 2 * peak["capacity"]["held_out_fit_median"]
    # The folder is the chosen run, as `train` writes it, with the search's record beside it.
    run = load_run(tmp_path / "peak")
    assert run.config.model.depth == {"fast": 1, "deep2": 2, "deep3": 3}[peak["capacity"]["chosen"]]
    record = json.loads((tmp_path / "peak" / SEARCH_FILE).read_text())
    assert SearchConfig.from_dict(record["config"]) == SearchConfig(score_curves=100)
    assert record["chosen"] == run.summary["capacity"]["chosen"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # candidate folders are gone


@pytest.mark.slow
def test_budget_bounds_the_search(tmp_path):
    s = train_searched(quick("peak", steps=200), tmp_path / "r", search=SearchConfig(budget_seconds=0.01))
    status = [c["status"] for c in s["capacity"]["candidates"]]
    assert status[0] == "trained" and status[1].startswith("skipped: about") and "0.01 s budget" in status[1]
    assert status[2] == "not tried" and s["capacity"]["chosen"] == "fast"


@pytest.mark.slow
def test_cli_searches_by_default_and_info_shows_the_network(tmp_path):
    run, model = tmp_path / "run", tmp_path / "model"
    res = CliRunner().invoke(main, ["train", "--family", "peak", "--n-curves", "600", "--steps", "300",
                                    "--out", str(run)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "network: " in res.output and "of a 60s budget" in res.output
    assert "search budget 60 s" in res.output  # the progress bar's label
    assert (run / SEARCH_FILE).is_file()
    assert CliRunner().invoke(main, ["export", str(run), "--out", str(model), "--no-params"]).exit_code == 0
    info = json.loads(CliRunner().invoke(main, ["info", str(model), "--json"]).output)
    assert "chosen by the capacity search" in info["network"]
    fast = tmp_path / "fast"
    res = CliRunner().invoke(main, ["train", "--family", "peak", "--n-curves", "600", "--steps", "50",
                                    "--preset", "fast", "--out", str(fast)], catch_exceptions=False)
    assert res.exit_code == 0 and "network: " not in res.output and not (fast / SEARCH_FILE).exists()


@pytest.mark.parametrize("kw, match", [({"budget_seconds": 0}, "budget_seconds=0 must be a positive number"),
                                       ({"ladder": ("fast", "huge")}, "must name distinct candidates among"),
                                       ({"min_gain": 1.5}, r"min_gain=1.5 must be in \[0, 1\)")])
def test_bad_search_settings(kw, match):
    with pytest.raises(InputError, match=match):
        SearchConfig(**kw)


def test_bad_budget_is_one_line():
    res = CliRunner().invoke(main, ["train", "--budget", "-3", "--out", "x"])
    assert res.exit_code == 2 and "--budget" in res.output and "Traceback" not in res.output


def test_held_out_score_is_the_runtime_fit(run_dir):
    """The score is the runtime engine's fit over the torch decoder: on the bundle it matches the ONNX fit."""
    from curvae.families import get_family
    from curvae.recipe.score import held_out_fit_residual
    from curvae.runtime import CurveModel
    from curvae.training.export_run import export_run

    curves, _ = get_family("beta").sample(50, seed=5)
    vae = load_run(run_dir).model
    score = held_out_fit_residual(vae, curves)
    bundle = run_dir.parent / "score-bundle"
    if not bundle.exists():
        export_run(run_dir, bundle)
    onnx_fit = CurveModel.load(bundle).fit(curves, uncertainty=False, params=False)
    np.testing.assert_allclose(score, np.median(onnx_fit.residual), rtol=1e-3)


@pytest.mark.slow
def test_interrupted_search_says_what_was_kept(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "curvae.cli", "train", "--n-curves", "2000", "--epochs", "5000",
                             "--out", str(out)], stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: training interrupted") and "capacity search, candidate fast" in last
    assert "nothing was written" in last and "--preset fast" in last
    assert list(tmp_path.iterdir()) == []  # no run folder, no candidate folders
