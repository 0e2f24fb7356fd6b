"""The documented import order holds: every arrow between curvae's packages points down the pipeline.

    core  <-  families  <-  runtime  <-  io  <-  export  <-  training  <-  recipe  <-  apps  <-  cli  <-  __main__
                         \\-  report (runtime, io, families only)  <-/
                         \\-  scale (runtime and io only: Dask)  <----/

Inside the runtime, its rooms (bundle, engine, fitting, model) import one another freely; what matters is
that nothing in the runtime reaches up to ``io`` (files and stores) or above.

The rule is read from the source with ``ast``, so a lazy import inside a
function counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "curvae"

#: What each layer may import from curvae (itself included). The README's layout section states the same.
ALLOWED = {
    "core": {"core"},
    "families": {"core", "families"},
    "runtime": {"core", "runtime"},
    "io": {"core", "runtime", "io"},
    "export": {"core", "runtime", "export"},
    "training": {"core", "families", "runtime", "io", "export", "training"},
    "report": {"core", "families", "runtime", "io", "report"},
    "scale": {"core", "runtime", "io", "scale"},
    "recipe": {"core", "families", "runtime", "io", "export", "training", "recipe"},
    "sklearn": {"core", "families", "runtime", "io", "export", "training", "recipe", "sklearn"},
    "apps": {"core", "families", "runtime", "io", "export", "training", "recipe", "report", "scale", "apps"},
    "cli": {"core", "families", "runtime", "io", "export", "training", "recipe", "report", "scale", "apps", "cli"},
    "__main__": {"cli"},
}


#: The size rules of the house: no module over this many lines, no folder with more modules directly in it.
MAX_MODULE_LINES = 400
MAX_FOLDER_MODULES = 12


def layer_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "package"


def curvae_imports(path: Path) -> list[tuple[int, str]]:
    """(line, layer) of every import of a curvae module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names] if node.module == "curvae" \
                else [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "curvae" and len(parts) > 1 and parts[1] != "__version__":
                found.append((node.lineno, parts[1]))
    return found


FILES = sorted(p for p in SRC.rglob("*.py"))


def test_every_package_has_a_rule():
    layers = {layer_of(p) for p in FILES} - {"package", "__init__"}
    assert layers == set(ALLOWED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_the_pipeline(path):
    layer = layer_of(path)
    allowed = ALLOWED.get(layer, set())
    bad = [f"line {line}: {layer} imports curvae.{target}" for line, target in curvae_imports(path)
           if target not in allowed]
    assert not bad, bad


def test_nothing_imports_the_cli():
    users = [str(p.relative_to(SRC)) for p in FILES if layer_of(p) not in ("cli", "__main__")
             and any(t == "cli" for _, t in curvae_imports(p))]
    assert not users


def test_modules_stay_small_and_folders_stay_findable():
    long = [f"{p.relative_to(SRC)}: {n} lines" for p in FILES if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, long
    crowded = [f"{d.relative_to(SRC.parent)}: {n} modules" for d in [SRC, *[p for p in SRC.rglob("*") if p.is_dir()]]
               if (n := len([m for m in d.glob("*.py") if m.name != "__init__.py"])) > MAX_FOLDER_MODULES]
    assert not crowded, crowded
