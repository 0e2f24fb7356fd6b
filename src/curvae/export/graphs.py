"""Turn torch modules into self-contained ONNX graphs and lint them."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

import onnx
import torch

from curvae.core.errors import ExportError, first_line
from curvae.runtime.bundle.format import RANDOM_OPS
from curvae.runtime.bundle.scan import scan_model
from curvae.runtime.bundle.versions import min_ir_version

EXPORT_BATCH = 3  # >= 2 so the exporter keeps the batch dimension symbolic

#: torch's exporter writes this opset natively; lower opsets are reached by restamping.
NATIVE_OPSET = 18

#: For each op curvae's graphs use, the lowest opset whose definition computes the same
#: float32 result as its opset-18 definition (later versions only added types or
#: made an input optional). A graph made only of these ops is valid, unchanged, at any
#: opset from the largest floor among its ops up to 18; ``onnx.checker`` confirms it.
OP_FLOORS = {"Gemm": 7, "Add": 7, "Sub": 7, "Mul": 7, "Div": 7, "Relu": 6, "Sigmoid": 6, "Tanh": 6,
             "Elu": 6, "Exp": 6, "Cast": 6, "Identity": 1, "Clip": 6}
#: Ops whose signature changed below the native opset: restamping rewrites them (``Clip`` took its bounds as
#: attributes before opset 11, as inputs since; the arithmetic is the same).
REWRITTEN_BELOW = {"Clip": 11}


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
                                        dynamo=True, external_data=False,
                                        opset_version=max(opset, NATIVE_OPSET), verbose=False)
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {first_line(exc)})") from None
    proto = program.model_proto
    if opset < NATIVE_OPSET:
        restamp_opset(proto, opset)
    proto.ir_version = min_ir_version(opset)
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
        raise ExportError(f"exported graph fails onnx.checker ({first_line(exc)})") from None
    return proto


def restamp_opset(proto: onnx.ModelProto, opset: int) -> None:
    """Declare a lower default-domain opset for a graph whose ops mean the same there.

    onnx's version converter has no down-adapters for several of these ops,
    and the exporter's own down-conversion writes invalid ``Split`` nodes, so
    curvae checks every op against :data:`OP_FLOORS` and restamps the opset;
    the caller then runs ``onnx.checker`` and the parity gate on the result.
    """
    ops = {n.op_type for n in proto.graph.node} | {n.op_type for f in proto.functions for n in f.node}
    unknown = sorted(op for op in ops if op not in OP_FLOORS)
    too_new = sorted(op for op in ops if op in OP_FLOORS and OP_FLOORS[op] > opset)
    if unknown or too_new:
        raise ExportError(f"--opset {opset}: the graph uses {unknown + too_new}, which curvae cannot write below "
                          f"opset {NATIVE_OPSET}; export with --opset {NATIVE_OPSET} or higher")
    if opset < REWRITTEN_BELOW["Clip"]:
        _clip_bounds_as_attributes(proto)
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = opset


def _clip_bounds_as_attributes(proto: onnx.ModelProto) -> None:
    """Rewrite opset-11+ ``Clip(x, min, max)`` nodes, whose bounds are constants, into opset-6 ``Clip(x)`` with
    ``min``/``max`` attributes; constants left unused are dropped."""
    from onnx import helper, numpy_helper

    g = proto.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    for node in g.node:
        if node.op_type != "Clip" or len(node.input) == 1:
            continue
        bounds = {}
        for name, value in zip(("min", "max"), list(node.input)[1:]):
            if value:
                if value not in consts or consts[value].size != 1:
                    raise ExportError(f"Clip node {node.name!r} has a bound that is not a constant; export with "
                                      f"--opset {REWRITTEN_BELOW['Clip']} or higher")
                bounds[name] = float(consts[value].reshape(()))
        new = helper.make_node("Clip", [node.input[0]], list(node.output), name=node.name, **bounds)
        node.CopyFrom(new)
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = [n for n in g.node if not (n.op_type == "Constant" and n.output[0] not in used)]
    del g.node[:]
    g.node.extend(nodes)


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
