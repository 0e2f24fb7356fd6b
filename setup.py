"""Build hook: the explorer's page and the onnxruntime-web files it loads go into the wheel as ``curvae/web``.

They are read from ``examples/web`` (the page), ``examples/shared`` (the bundle
rules) and ``examples/web/node_modules/onnxruntime-web/dist`` (``npm ci`` there;
``make wheel`` does it). An sdist carries the same files (MANIFEST.in), so a
wheel built from it has them too. Without onnxruntime-web the wheel is built
without the explorer, with a warning; ``curvae explore`` then says so.
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
WEB = HERE / "examples" / "web"
# Keep in step with curvae.apps.explore.ORT_FILES and PAGE_SUFFIXES.
ORT_FILES = ("ort.min.mjs", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
PAGE_SUFFIXES = (".html", ".js")


class BuildPyWithExplorer(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install serves the checkout's examples/web
            return
        ort = WEB / "node_modules" / "onnxruntime-web" / "dist"
        missing = [f for f in ORT_FILES if not (ort / f).is_file()]
        if missing or not (WEB / "index.html").is_file():
            print(f"warning: building curvae without the explorer page: {missing or 'index.html'} not found under "
                  f"{WEB} (run `npm ci` in examples/web, or `make wheel`)", file=sys.stderr)
            return
        dst = Path(self.build_lib) / "curvae" / "web"
        (dst / "ort").mkdir(parents=True, exist_ok=True)
        (dst / "shared").mkdir(exist_ok=True)
        for p in sorted(WEB.iterdir()):
            if p.suffix in PAGE_SUFFIXES and p.is_file():
                shutil.copyfile(p, dst / p.name)
        shutil.copyfile(WEB.parent / "shared" / "curvae-bundle.mjs", dst / "shared" / "curvae-bundle.mjs")
        for name in ORT_FILES:
            shutil.copyfile(ort / name, dst / "ort" / name)


setup(cmdclass={"build_py": BuildPyWithExplorer})
