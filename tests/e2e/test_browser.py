"""The curvae explorer in a real headless Chromium, on onnxruntime-web served locally.

Needs Debian's ``chromium`` and node/npm (``.ci/run`` installs them); skipped,
with the reason, where either is missing. The screenshot of every run is
kept in ``build/browser/explorer.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from curvae.runtime import CurveModel

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples" / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "build" / "browser"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM}: apt-get install chromium"),
    pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                       reason="node and npm are not installed; the explorer test needs both"),
]


@pytest.fixture(scope="module")
def web_root(tmp_path_factory) -> Path:
    """examples/web and examples/shared in a scratch folder, with onnxruntime-web and playwright-core from npm."""
    base = tmp_path_factory.mktemp("web")
    shutil.copytree(WEB, base / "web", ignore=shutil.ignore_patterns("node_modules"))
    shutil.copytree(WEB.parent / "shared", base / "shared")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=base / "web", check=True,
                   capture_output=True, timeout=600)
    return base / "web"


def serve(bundle: Path, web: Path):
    from curvae.apps.explore import make_server, url_of

    server = make_server(bundle, web=web, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url_of(server)


def test_explorer_matches_the_python_runtime(web_root, bundle_copy, tmp_path):
    golden = ROOT / "tests" / "fixtures" / "golden"
    data = bytearray((bundle_copy / "decoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle_copy / "decoder.onnx").write_bytes(bytes(data))
    model = CurveModel.load(golden)
    g = np.random.default_rng(11)
    z = g.standard_normal((7, 2)).astype(np.float32)
    curves = model.sample(5, seed=3)
    eps = g.standard_normal((5, 2)).astype(np.float32)
    target = model.decode(np.array([[0.8, -0.6]], np.float32))[0] + g.normal(0, 0.02, 100).astype(np.float32)

    server, url = serve(golden, web_root)
    bad_server, bad_url = serve(bundle_copy, web_root)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "explorer.png"
    spec = {"url": url + "?backend=wasm", "tamperedUrl": bad_url, "screenshot": str(shot), "z": z.tolist(),
            "curves": curves.tolist(), "eps": eps.tolist(), "target": [float(v) for v in target]}
    (tmp_path / "in.json").write_text(json.dumps(spec))
    try:
        res = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "browser_driver.mjs"), str(web_root),
                              str(tmp_path / "in.json"), str(tmp_path / "out.json")],
                             capture_output=True, text=True, timeout=240, env={**os.environ, "CHROMIUM": CHROMIUM})
    finally:
        server.shutdown()
        bad_server.shutdown()
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["ready"] is True and out["status"].startswith("ready") and not out["pageErrors"], out
    assert "wasm" in out["backend"]

    # Numbers: the browser's decode and encode are the Python runtime's, within 1e-5.
    np.testing.assert_allclose(np.asarray(out["decoded"]), model.decode(z), atol=1e-5)
    ez, emu, elogvar = model.encode_with_noise(curves, eps)
    for key, ref in (("z", ez), ("mu", emu), ("logvar", elogvar)):
        np.testing.assert_allclose(np.asarray(out["encoded"][key]), ref, atol=1e-5)

    # Dragging moves z and redraws the curve.
    assert out["zBefore"] == [0, 0] and out["zAfter"][0] > 1 and out["zAfter"][1] > 0.5
    assert np.abs(np.asarray(out["curveAfter"]) - np.asarray(out["curveBefore"])).max() > 0.1
    np.testing.assert_allclose(np.asarray(out["curveAfter"]), model.decode(np.array([out["zAfter"]], np.float32))[0],
                               atol=1e-5)
    assert out["zShown"] == ", ".join(f"{v:.3f}" for v in out["zAfter"])

    # The page's fit of a pasted target is as good as the Python runtime's (residual within 5%).
    py = model.fit(target[None, :])
    assert abs(out["fit"]["residual"] - float(py.residual[0])) <= 0.05 * float(py.residual[0])
    assert "residual" in out["fitText"] and "±2σ band of the true curve (z only)" in out["fitText"]
    # The page's band is the Python runtime's (σ estimated; this bundle records no model error: z only).
    lo, hi = np.asarray(out["fitBand"][0]), np.asarray(out["fitBand"][1])
    half_py = (py.band_hi[0] - py.band_lo[0]) / 2
    np.testing.assert_allclose((hi - lo) / 2, half_py, rtol=0.1, atol=1e-3 * float(half_py.max()))
    # Readable numbers: round ticks, decode time in µs as a mean over calls.
    assert out["ticks"] == ["-10", "-8", "-6", "-4", "-2"], out["ticks"]
    import re
    assert re.fullmatch(r"\d+ µs \(mean of the last \d+ calls\)", out["timingText"]), out["timingText"]
    assert "the curve has 3 values but this bundle's curves have 100 points" in out["shortCsvError"]
    assert "value 100 ('abc') is not a finite number" in out["badCsvError"]

    # A flipped byte: the integrity error is on the page and nothing runs.
    assert out["tamperedReady"] is False and out["tamperedStatus"] == "not running"
    assert "decoder.onnx has sha256" in out["tamperedError"] and "re-export the bundle" in out["tamperedError"]
    assert shot.is_file() and shot.stat().st_size > 20_000
    print(f"explorer decode: {out['decodeMsPerCall'] * 1e3:.0f} µs per 1-row call in the page")


def test_explorer_from_an_installed_wheel(web_root, tmp_path):
    """pip install the wheel with [cpu] into a fresh venv, away from the checkout: `curvae explore` serves the page
    and onnxruntime-web from the package, and the page decodes like the Python runtime, under the server's CSP."""
    import re
    import sys
    import time

    from curvae.apps.explore import ORT_FILES

    tree = tmp_path / "src-tree"  # the checkout's sources, with onnxruntime-web from the npm'd fixture
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copyfile(ROOT / name, tree / name if tree.exists() else (tree.mkdir() or tree / name))
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(web_root, tree / "examples" / "web", ignore=shutil.ignore_patterns("node_modules"))
    shutil.copytree(ROOT / "examples" / "shared", tree / "examples" / "shared")
    dist = tree / "examples" / "web" / "node_modules" / "onnxruntime-web" / "dist"
    dist.mkdir(parents=True)
    for name in ORT_FILES:
        shutil.copyfile(web_root / "node_modules" / "onnxruntime-web" / "dist" / name, dist / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheels"), str(tree)], check=True, env=env, capture_output=True, timeout=300)
    wheel = next((tmp_path / "wheels").glob("curvae-*.whl"))
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB")
    assert wheel.stat().st_size < 12 * 2**20  # one wasm build, not the whole dist folder

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
                    f"{wheel}[cpu]"], check=True, env=env, cwd=tmp_path, capture_output=True, timeout=600)
    golden = ROOT / "tests" / "fixtures" / "golden"
    proc = subprocess.Popen([str(venv / "bin" / "curvae"), "explore", str(golden), "--port", "0"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"open (http://\S+)", line)
        assert url, line + proc.stderr.read()
        z = np.random.default_rng(4).standard_normal((3, 2)).astype(np.float32)
        (tmp_path / "in.json").write_text(json.dumps({"url": url.group(1) + "?backend=wasm", "z": z.tolist()}))
        t = time.time()
        res = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "page_decode.mjs"), str(web_root),
                              str(tmp_path / "in.json"), str(tmp_path / "out.json")],
                             capture_output=True, text=True, timeout=180, env={**os.environ, "CHROMIUM": CHROMIUM})
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["ready"] is True and not out["pageErrors"] and not out["consoleErrors"], out
    assert "wasm" in out["backend"]
    np.testing.assert_allclose(np.asarray(out["decoded"]), CurveModel.load(golden).decode(z), atol=1e-5)
    served = {p for p, s in out["requests"] if s == 200}
    assert {f"/ort/{f}" for f in ORT_FILES} <= served, out["requests"]  # exactly what the wheel ships was needed
    assert all(s == 200 for _, s in out["requests"]), out["requests"]
    print(f"page loaded and decoded in {time.time() - t:.1f}s")


def test_explorer_shows_the_parameters_beside_z(web_root, trained_bundle, tmp_path):
    """A bundle with a parameter head and an emulator: the page reads params.onnx and emulator.onnx under the
    bundle rules, shows θ beside z and θ sliders that drive the emulator, the Python runtime's numbers. Its
    screenshot is the README's picture (``make docs`` copies it to docs/img/explorer.png)."""
    bundle = trained_bundle
    model = CurveModel.load(bundle)
    z = np.random.default_rng(5).standard_normal((4, 2)).astype(np.float32)
    theta = np.array([[2.0, 3.0], [0.7, 4.1], [4.5, 1.2]])
    server, url = serve(bundle, web_root)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "explorer-parameters.png"
    (tmp_path / "in.json").write_text(json.dumps({"url": url + "?backend=wasm", "z": z.tolist(),
                                                  "theta": theta.tolist(), "screenshot": str(shot)}))
    try:
        res = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "page_decode.mjs"), str(web_root),
                              str(tmp_path / "in.json"), str(tmp_path / "out.json")],
                             capture_output=True, text=True, timeout=180, env={**os.environ, "CHROMIUM": CHROMIUM})
    finally:
        server.shutdown()
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["ready"] is True and not out["pageErrors"] and not out["consoleErrors"], out
    np.testing.assert_allclose(np.asarray(out["params"]), model.params(z), rtol=1e-5)
    theta0 = model.params(np.zeros((1, 2), np.float32))[0]  # the page starts at z = 0
    assert out["thetaShown"].startswith("alpha ") and ", beta " in out["thetaShown"], out["thetaShown"]
    shown = [float(part.split()[1]) for part in out["thetaShown"].split(", ")]
    np.testing.assert_allclose(shown, theta0, rtol=1e-3)
    assert "alpha, beta" in out["facts"]
    assert ("/bundle/params.onnx", 200) in [tuple(r) for r in out["requests"]]
    # θ sliders: the page's emulator gives the Python runtime's curves and codes, and moving one redraws.
    curves, codes = model.emulate(theta, codes=True)
    scale = float(np.abs(curves).max())
    np.testing.assert_allclose([r["curve"] for r in out["emulated"]], curves, atol=1e-5 * scale)
    np.testing.assert_allclose([r["z"] for r in out["emulated"]], codes, atol=1e-5)
    slid = np.asarray(out["slid"]["theta"])
    # The sliders follow the shown curve's θ (at z = 0: the head's); moving the first keeps the other where it was.
    assert abs(slid[0] - theta[0, 0]) < 0.02 and abs(slid[1] - theta0[1]) < 0.02
    np.testing.assert_allclose(out["slid"]["curve"], model.emulate(slid[None])[0], atol=1e-5 * scale)
    assert "alpha = 99 is outside the training range [0, 5]" in out["outOfRange"]
    assert "emulator" in out["facts"] and shot.is_file()
