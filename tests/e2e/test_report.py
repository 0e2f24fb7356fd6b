"""The report: every promised file is a real PNG of sensible size, and its numbers are the runtime's."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from click.testing import CliRunner  # noqa: E402

from curvae.cli import main  # noqa: E402
from curvae.report import REPORT_FILES, build_report  # noqa: E402
from curvae.runtime import CurveModel  # noqa: E402

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_files_are_real_pngs_and_numbers_match_the_runtime(bundle_dir, beta_targets, tmp_path):
    np.save(tmp_path / "targets.npy", beta_targets)
    numbers = build_report(bundle_dir, tmp_path / "report", targets=tmp_path / "targets.npy", n_codes=500)
    out = tmp_path / "report"
    assert {p.name for p in out.iterdir()} == REPORT_FILES - {"params.png"}  # targets from a file: no known θ
    for png in out.glob("*.png"):
        w, h = png_size(png)
        assert 400 <= w <= 2500 and 250 <= h <= 2500, (png.name, w, h)
        assert png.stat().st_size > 10_000, png.name
    saved = json.loads((out / "report.json").read_text())
    assert saved["fit"] == numbers["fit"]
    fit = CurveModel.load(bundle_dir).fit(beta_targets)
    assert saved["fit"]["residual_median"] == pytest.approx(float(np.median(fit.residual)), rel=1e-9)
    assert saved["fit"]["residual_p90"] == pytest.approx(float(np.percentile(fit.residual, 90)), rel=1e-9)
    assert saved["fit"]["n_targets"] == 64
    page = (out / "index.html").read_text()
    for name in REPORT_FILES - {"index.html", "report.json", "params.png"}:
        assert f'src="{name}"' in page
    assert f"{saved['fit']['residual_median']:.4f}" in page


def test_report_of_fresh_family_curves_shows_the_recovered_parameters(bundle_dir, tmp_path):
    """Fresh Beta curves with noise, fitted with σ given: true against recovered parameters, and their coverage."""
    numbers = build_report(bundle_dir, tmp_path / "report", n_codes=300, n_targets=300)
    out = tmp_path / "report"
    assert {p.name for p in out.iterdir()} == REPORT_FILES
    w, _ = png_size(out / "params.png")
    assert w >= 600
    p = numbers["params"]
    assert set(p) == {"sigma", "alpha", "beta"} and p["sigma"] > 0
    for name in ("alpha", "beta"):  # a tiny test model: the default recipe's calibration is tests/parity's
        assert p[name]["n"] == 300 and 0.5 <= p[name]["coverage95"] <= 1.0, p
        assert p[name]["rel_error_median"] < 0.1, p
    page = (out / "index.html").read_text()
    assert "parameter alpha: relative error median / p90; 95% interval coverage" in page


def test_report_from_a_run_folder_through_the_cli(run_dir, tmp_path):
    res = CliRunner().invoke(main, ["report", str(run_dir), "--out", str(tmp_path / "r")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and (tmp_path / "r" / "training.png").is_file()
    bad = CliRunner().invoke(main, ["report", str(tmp_path), "--out", str(tmp_path / "r2")])
    assert bad.exit_code == 1 and bad.output.startswith("Error: ") and "is neither a bundle" in bad.output


@pytest.mark.parametrize("layout", ["masked", "long format"])
def test_report_marks_missing_and_own_grid_points(bundle_dir, beta_targets, tmp_path, layout):
    if layout == "masked":
        t = beta_targets.copy()
        t[:, 10:20] = np.nan
        np.save(tmp_path / "t.npy", t)
        path = tmp_path / "t.npy"
    else:
        x = np.linspace(0.05, 0.95, 30)
        lines = [f"{i},{xv},{np.interp(xv, np.linspace(0.01, 0.99, 100), row)}"
                 for i, row in enumerate(beta_targets[:12]) for xv in x]
        (tmp_path / "t.csv").write_text("id,x,y\n" + "\n".join(lines) + "\n")
        path = tmp_path / "t.csv"
    numbers = build_report(bundle_dir, tmp_path / "r", targets=path, n_codes=300)
    assert "measured_fits.png" in numbers["figures"]
    assert png_size(tmp_path / "r" / "measured_fits.png")[0] > 400
    assert numbers["fit"]["n_targets"] == (64 if layout == "masked" else 12)


def test_report_of_targets_from_a_file_with_known_parameters(bundle_dir, tmp_path):
    """The demo's case: targets read from a file whose parameters are known show them recovered, and the
    emulator's curves are plotted against true ones at fresh θ."""
    from curvae.core.errors import InputError
    from curvae.families import get_family

    curves, theta = get_family("beta").sample(80, seed=9)
    np.save(tmp_path / "targets.npy", curves)
    numbers = build_report(bundle_dir, tmp_path / "report", targets=tmp_path / "targets.npy", n_codes=300,
                           n_targets=200, truth=theta)
    out = tmp_path / "report"
    assert {"params.png", "emulator.png"} <= {p.name for p in out.iterdir()}
    assert numbers["params"]["alpha"]["n"] == 80
    e = numbers["emulator"]
    assert e["n"] == 200 and 0 < e["share_median"] <= e["share_p90"] and e["vs_fit_residual"] > 0
    assert 'src="emulator.png"' in (out / "index.html").read_text()
    with pytest.raises(InputError, match="truth has shape"):
        build_report(bundle_dir, tmp_path / "r2", targets=tmp_path / "targets.npy", truth=theta[:5])
