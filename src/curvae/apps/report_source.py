"""A report of whatever the user has: a bundle, a ``curvae demo`` folder, or a run (exported first)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from curvae.core.errors import InputError
from curvae.report import build_report


def report_source(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    **options: Any,
) -> dict[str, Any]:
    """Write the report of ``source`` into ``out`` (see :func:`curvae.report.build_report` for ``options``).

    A run folder is exported to a temporary bundle first, which needs the
    ``[train]`` extra; a demo folder is reported through its ``model/``.
    """
    path = Path(source)
    if (path / "manifest.json").is_file():
        return build_report(path, out, label=str(source), **options)
    if (path / "model" / "manifest.json").is_file():
        return build_report(path / "model", out, label=str(source), **options)
    if (path / "config.json").is_file() and (path / "summary.json").is_file():
        from curvae.training.export_run import (
            export_run,  # needs the [train] extra; it checks the run
        )

        with tempfile.TemporaryDirectory() as scratch:
            export_run(path, Path(scratch) / "model")
            return build_report(Path(scratch) / "model", out, label=str(source), **options)
    raise InputError(f"{str(source)!r} is neither a bundle, a run folder nor a demo folder; pass the folder "
                     "written by `curvae export`, `curvae train` or `curvae demo`")
