"""Fresh virtual environments built from the registries, cached under build/compat for one spec.

Each environment is keyed by a hash of what it installs (and of
``pyproject.toml``), so one ``make test`` builds each once and a later run on
the same checkout reuses it; a clean clone builds them all.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "compat"
CONSTRAINTS = ROOT / "constraints.txt"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def declared_floors() -> dict[str, str]:
    """The lower bounds ``pyproject.toml`` declares for the runtime: base dependencies and the [cpu] extra."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for req in [*meta["dependencies"], *meta["optional-dependencies"]["cpu"]]:
        name, _, version = req.partition(">=")
        floors[name.strip()] = version.strip()
    return floors


def venv(name: str, installs: list[list[str]]) -> Path:
    """A venv named ``name`` after running ``pip install`` with each argument list; returns its python."""
    spec = repr(installs) + (ROOT / "pyproject.toml").read_text()
    path = CACHE / f"{name}-{hashlib.sha256(spec.encode()).hexdigest()[:10]}"
    py = path / "bin" / "python"
    stamp = path / ".complete"
    if stamp.exists():
        return py
    if path.exists():
        subprocess.run(["rm", "-rf", str(path)], check=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    for args in installs:
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
                       check=True, env=clean_env(), cwd=str(CACHE))
    stamp.write_text(spec)
    return py


def pip_list(py: Path) -> dict[str, str]:
    out = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                         check=True, capture_output=True, text=True, env=clean_env()).stdout
    return dict(line.split("==", 1) for line in out.splitlines() if "==" in line)


def run(py: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(py), *args], capture_output=True, text=True, env=clean_env(), timeout=timeout)
