"""Export: torch modules → parity-checked ONNX bundle (needs torch, onnx, onnxscript)."""

from curvae.export.bundle_writer import ExportResult, export_bundle
from curvae.export.config import ExportConfig
from curvae.export.graphs import RANDOM_OPS, lint_graph
from curvae.export.parity import PARITY_BATCHES, ParityRow, format_table, run_parity

__all__ = ["PARITY_BATCHES", "RANDOM_OPS", "ExportConfig", "ExportResult", "ParityRow", "export_bundle",
           "format_table", "lint_graph", "run_parity"]
