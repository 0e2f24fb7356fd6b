"""Turn torch modules into self-contained ONNX graphs and lint them."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

import onnx
import torch

from curvae.runtime.bundle import RANDOM_OPS
from curvae.runtime.errors import ExportError
from curvae.runtime.onnx_scan import scan_model

EXPORT_BATCH = 3  # >= 2 so the exporter keeps the batch dimension symbolic


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's warnings and log lines; errors still raise."""
    loggers = [logging.getLogger(n) for n in ("torch", "torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def export_graph(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    *,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    opset: int,
    metadata: dict[str, str],
) -> onnx.ModelProto:
    """Export ``module`` with a dynamic batch dimension named ``batch``.

    Returns
    -------
    onnx.ModelProto
        One self-contained graph (no external data), metadata set, checked
        by ``onnx.checker`` and free of random ops.
    """
    batch = torch.export.Dim("batch")
    dynamic = {name: {0: batch} for name in input_names}
    module = module.eval().cpu()
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(module, example, input_names=list(input_names),
                                        output_names=list(output_names), dynamic_shapes=dynamic,
                                        dynamo=True, external_data=False, opset_version=opset, verbose=False)
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    proto = program.model_proto
    for value in list(proto.graph.input) + list(proto.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "batch"
    del proto.metadata_props[:]
    for key, val in metadata.items():
        proto.metadata_props.add(key=key, value=str(val))
    proto.producer_name = "curvae"
    lint_graph(proto)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported graph fails onnx.checker ({str(exc).splitlines()[0]})") from None
    return proto


def lint_graph(proto: onnx.ModelProto) -> None:
    """Refuse graphs with random ops or external-data references.

    Uses the runtime's own protobuf scan, so export and load apply one rule.
    """
    facts = scan_model(proto.SerializeToString(), name=proto.graph.name or "graph")
    bad = sorted(facts.op_types & RANDOM_OPS)
    if bad:
        raise ExportError(f"graph {proto.graph.name!r} contains random ops {bad}; curvae graphs take noise as "
                          "the explicit 'eps' input: remove sampling from the module's forward")
    if facts.external_data:
        raise ExportError(f"graph {proto.graph.name!r} uses external data; bundles hold self-contained graphs")
