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
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "compat"
CONSTRAINTS = ROOT / "constraints.txt"
#: Every onnxruntime release from 1.15 (the oldest with wheels for this Python) to the newest, for the opset table.
ORT_RELEASES = ("1.15.1", "1.16.3", "1.17.3", "1.18.1", "1.19.2", "1.20.1", "1.21.1", "1.22.1", "1.23.2")
ORT_VENV = ("ort-releases", [["numpy==1.26.4"]])  # every release from 1.15 runs on numpy 1.x


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


_LOCKS: dict[Path, threading.Lock] = {}
_GUARD = threading.Lock()


def _lock(path: Path) -> threading.Lock:
    """One lock per folder: a prefetching thread and a fixture never build the same one at once."""
    with _GUARD:
        return _LOCKS.setdefault(path, threading.Lock())


def venv(name: str, installs: list[list[str]]) -> Path:
    """A venv named ``name`` after running ``pip install`` with each argument list; returns its python."""
    spec = repr(installs) + (ROOT / "pyproject.toml").read_text()
    path = CACHE / f"{name}-{hashlib.sha256(spec.encode()).hexdigest()[:10]}"
    py = path / "bin" / "python"
    stamp = path / ".complete"
    with _lock(path):
        if stamp.exists():
            return py
        if path.exists():
            subprocess.run(["rm", "-rf", str(path)], check=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        for args in installs:
            subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
                           check=True, env=clean_env(), cwd=str(CACHE))
        stamp.write_text(spec)
    return py


def ort_release(py: Path, version: str) -> str:
    """onnxruntime ``version`` alone (no dependencies) in a folder of its own; returns that folder."""
    target = CACHE / f"onnxruntime-{version}"
    with _lock(target):
        if not (target / ".complete").exists():
            subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                            "--upgrade", "--target", str(target), f"onnxruntime=={version}"], check=True,
                           env=clean_env())
            (target / ".complete").write_text(version)
    return str(target)


_PREFETCH = ThreadPoolExecutor(4, thread_name_prefix="compat-venv")


def prefetch(*builds: Callable[[], object]) -> None:
    """Start building environments in the background (a clean checkout has none): pip's downloads and unpacking
    overlap instead of running one after another. A build that fails here is built again, and fails with its
    error, where a test asks for it."""
    for build in builds:
        _PREFETCH.submit(build)


def pip_list(py: Path) -> dict[str, str]:
    out = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                         check=True, capture_output=True, text=True, env=clean_env()).stdout
    return dict(line.split("==", 1) for line in out.splitlines() if "==" in line)


def run(py: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(py), *args], capture_output=True, text=True, env=clean_env(), timeout=timeout)
