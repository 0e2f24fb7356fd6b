"""The runtime works in a fresh environment that has no torch (and no onnx).

This is the proof that a bundle needs neither torch nor the exporter: a new
venv gets ``pip install .`` (no extras: no onnxruntime either, which must
give one clear line at first use), then ``pip install '.[cpu]'``, then loads
the committed golden bundle and checks its numbers against what torch
computed when it was made.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"

SCRIPT = textwrap.dedent("""
    import sys, json
    import numpy as np
    try:
        import torch
    except ImportError:
        pass
    else:
        raise SystemExit("torch is importable in the torch-free environment")
    import curvae.runtime as rt
    assert "torch" not in sys.modules and "onnx" not in sys.modules, sorted(sys.modules)
    exp = np.load(sys.argv[2], allow_pickle=False)
    model = rt.CurveModel.load(sys.argv[1])
    mu = model.encode(exp["curves"])
    np.testing.assert_allclose(mu, exp["mu"], atol=1e-5)
    z, mu2, logvar = model.encode_with_noise(exp["curves"], exp["eps"])
    np.testing.assert_allclose(z, exp["z_sampled"], atol=1e-5)
    np.testing.assert_allclose(logvar, exp["logvar"], atol=1e-5)
    np.testing.assert_allclose(model.decode(exp["z"]), exp["x_hat"], atol=1e-5)
    s = model.sample(11, seed=3)
    assert s.shape == (11, 100) and np.isfinite(s).all()
    np.testing.assert_array_equal(s, model.sample(11, seed=3))
    fit = model.fit(exp["curves"])
    assert fit.success.all() and np.isfinite(fit.residual).all()
    assert fit.residual.mean() <= np.linalg.norm(model.decode(mu) - exp["curves"], axis=1).mean() + 1e-6
    nm = model.fit(exp["curves"][:3], method="nelder-mead", init="zero")
    assert np.isfinite(nm.residual).all()
    assert "torch" not in sys.modules
    print("TORCH-FREE OK", json.dumps({"residual_median": float(np.median(fit.residual))}))
""")


def test_runtime_import_does_not_import_torch_here_either():
    code = ("import sys, curvae.runtime, curvae.cli, curvae.families; "
            "bad = [m for m in ('torch', 'onnx', 'onnxscript', 'onnxruntime') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_imports_neither_torch_nor_onnxruntime():
    code = ("import sys; from click.testing import CliRunner; from curvae.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
            "bad = [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_fresh_venv_without_torch_runs_the_bundle(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [str(py), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, str(ROOT)], check=True, env=env, cwd=tmp_path)
    cli = venv / "bin" / "curvae"

    # The base install has no onnxruntime: --help works, the first runtime use names the extras.
    assert subprocess.run([str(py), "-c", "import onnxruntime"], env=env, capture_output=True).returncode != 0
    assert subprocess.run([str(cli), "--help"], env=env, capture_output=True).returncode == 0
    bare = subprocess.run([str(cli), "info", str(FIXTURES / "golden")], env=env, capture_output=True, text=True)
    assert bare.returncode == 1 and "Traceback" not in bare.stderr
    assert bare.stderr.strip() == ("Error: onnxruntime is not installed; install curvae with the onnxruntime build "
                                   "for your hardware, one of: pip install 'curvae[cpu]' | 'curvae[gpu]' | "
                                   "'curvae[openvino]' | 'curvae[directml]'")

    subprocess.run([*pip, f"{ROOT}[cpu]"], check=True, env=env, cwd=tmp_path)
    builds = subprocess.run([str(py), "-m", "pip", "list"], env=env, capture_output=True, text=True).stdout
    assert [line.split()[0] for line in builds.splitlines() if line.startswith("onnxruntime")] == ["onnxruntime"]
    (tmp_path / "check.py").write_text(SCRIPT)
    out = subprocess.run([str(py), str(tmp_path / "check.py"), str(FIXTURES / "golden"),
                          str(FIXTURES / "golden_expected.npz")], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "TORCH-FREE OK" in out.stdout

    info = subprocess.run([str(cli), "info", str(FIXTURES / "golden")], env=env, capture_output=True, text=True)
    assert info.returncode == 0 and "CPUExecutionProvider" in info.stdout, info.stderr
    fit = subprocess.run([str(cli), "sample", str(FIXTURES / "golden"), "-n", "4", "--out", str(tmp_path / "s.npy")],
                         env=env, capture_output=True, text=True)
    assert fit.returncode == 0, fit.stderr
    np.save(tmp_path / "t.npy", np.load(FIXTURES / "golden_expected.npz")["curves"][:2])
    mcmc = subprocess.run([str(cli), "fit", str(FIXTURES / "golden"), str(tmp_path / "t.npy"), "--method", "mcmc",
                           "--out", str(tmp_path / "f.npz")], env=env, capture_output=True, text=True)
    assert mcmc.returncode == 1
    assert mcmc.stderr.strip() == "Error: method='mcmc' needs emcee: pip install 'curvae[mcmc]'"
    report = subprocess.run([str(cli), "report", str(FIXTURES / "golden"), "--out", str(tmp_path / "rep")], env=env,
                            capture_output=True, text=True)
    assert report.returncode == 1
    assert report.stderr.strip() == "Error: matplotlib is not installed; reports need the plot extra: " \
                                    "pip install 'curvae[plot]'"
    _fitted_estimator_unpickles_without_torch(tmp_path, pip, py, env)
    train = subprocess.run([str(cli), "train", "--out", str(tmp_path / "run")], env=env, capture_output=True,
                           text=True)
    assert train.returncode == 1
    assert train.stderr.strip() == "Error: torch is not installed; this command needs the training extra: " \
                                   "pip install 'curvae[train]'"


SKLEARN_SCRIPT = """
import pickle, sys
import numpy as np
est = pickle.loads(open(sys.argv[1], "rb").read())
x, z = np.load(sys.argv[2]), np.load(sys.argv[3])
np.testing.assert_array_equal(est.transform(x), z)
assert est.inverse_transform(z).shape == x.shape
assert "torch" not in sys.modules, "unpickling a fitted CurveVAE imported torch"
print("SKLEARN TORCH-FREE OK")
"""


def _fitted_estimator_unpickles_without_torch(tmp_path, pip, py, env):
    """A CurveVAE fitted here (with torch) unpickles and transforms where only the runtime and scikit-learn are."""
    import pickle

    from curvae.families import get_family
    from curvae.sklearn import CurveVAE

    x, _ = get_family("beta").sample(60, seed=0)
    est = CurveVAE(preset="fast", steps=40, hidden=8, random_state=0).fit(x)
    (tmp_path / "vae.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "z.npy", est.transform(x))
    subprocess.run([*pip, "scikit-learn"], check=True, env=env, cwd=tmp_path)
    (tmp_path / "sk.py").write_text(SKLEARN_SCRIPT)
    out = subprocess.run([str(py), str(tmp_path / "sk.py"), str(tmp_path / "vae.pkl"), str(tmp_path / "x.npy"),
                          str(tmp_path / "z.npy")], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "SKLEARN TORCH-FREE OK" in out.stdout, out.stdout + out.stderr
