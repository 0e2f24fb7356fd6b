"""Export: torch modules → parity-checked ONNX bundle (needs torch, onnx, onnxscript).

The names below load on first use, so ``curvae.export.config`` (torch-free:
the export defaults the CLI shows) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "ExportResult": "bundle_writer", "export_bundle": "bundle_writer", "ExportConfig": "config",
    "DEFAULT_BUDGETS": "config", "RANDOM_OPS": "graphs", "lint_graph": "graphs", "PARITY_BATCHES": "parity",
    "ParityRow": "parity", "format_table": "parity", "run_parity": "parity",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'curvae.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"curvae.export.{_NAMES[name]}"), name)
