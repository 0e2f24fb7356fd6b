"""Turn torch modules into self-contained ONNX graphs and lint them."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
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
             "Elu": 6, "Exp": 6, "Cast": 6, "Identity": 1, "Clip": 6,
             "Log": 6, "Concat": 4}
#: For each op, the highest opset whose definition computes the same float32 result as its opset-18 definition:
#: the versions after 18 only added types (bfloat16, float8, int4, float4; ``Cast``'s ``saturate`` attribute acts on
#: float8 alone). A graph of these ops is traced once at :data:`NATIVE_OPSET` and restamped for opsets up to here,
#: so one trace (and one template) serves every opset from 18 to 23; ``onnx.checker`` and the parity gate check
#: the result, and ``tests/compat/test_opset_table.py`` loads it in every onnxruntime release.
OP_CEILINGS = {op: 23 for op in OP_FLOORS}
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
    module = module.eval().cpu()
    key = structure_key(module, example, input_names, output_names, NATIVE_OPSET)
    shapes = shape_key(module, example)
    proto = _from_template(key, shapes, module, example, output_names) or \
        _second_sight(key, shapes, module, example, input_names, output_names, NATIVE_OPSET)
    if proto is None:
        proto = _trace(module, example, input_names, output_names, NATIVE_OPSET)
        if key not in _SEEN:  # no signature: the exporter merged equal state tensors (two 0/1 switches alike)
            _SEEN[key] = (_signature(proto, module) or _MERGED, shapes)
    if opset > NATIVE_OPSET and not _same_up_to(proto, opset):
        proto = _trace(module, example, input_names, output_names, opset)  # an op that changed: trace natively
    elif opset != NATIVE_OPSET:
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


def _trace(module: torch.nn.Module, example: tuple[torch.Tensor, ...], input_names: tuple[str, ...],
           output_names: tuple[str, ...], opset: int) -> onnx.ModelProto:
    """torch's exporter, with a dynamic batch dimension: the slow path (about a second per graph)."""
    batch = torch.export.Dim("batch")
    dynamic = {name: {0: batch} for name in input_names}
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(module, example, input_names=list(input_names),
                                        output_names=list(output_names), dynamic_shapes=dynamic,
                                        dynamo=True, external_data=False, opset_version=opset, verbose=False)
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {first_line(exc)})") from None
    return program.model_proto


#: Traced graphs by structure, as serialised templates whose weight initializers are swapped for each new module
#: of the same structure (a capacity search, a grid search, scikit-learn's checks and the test suite export many
#: such modules). Tracing costs ~95% of a small export. A structure gets a template only when two traces with
#: different weights (the first module's own, then distinct random ones) differ in nothing but the state's
#: initializers: then no constant was derived from the state (a folded ``1 − mask``), and the swap is exact.
#: A structure is its ops and names, not its sizes: when the two traces had different sizes (another number of
#: points, another width) and still agree, the template serves every size; a template seen at one size only
#: serves that size, and a module of a new size is traced with random weights first, as the second was. At a
#: size not traced, the swapped graph is run once against the module before it is used. The parity gate still
#: compares every graph with torch.
_TEMPLATES: dict[tuple, tuple[bytes, frozenset]] = {}  # structure → (template, sizes it was traced at; empty: any)
_SEEN: dict[tuple, tuple[bytes | None, tuple]] = {}  # structure → (first trace's signature or None, its sizes)
#: A first trace without a signature of its own (equal state tensors merged into one initializer): the next module
#: is traced twice with distinct random weights, and those two decide.
_MERGED = b""
TEMPLATE_CACHE_SIZE = 32


def structure_key(module: torch.nn.Module, example: tuple[torch.Tensor, ...], input_names: tuple[str, ...],
                  output_names: tuple[str, ...], opset: int) -> tuple:
    """What fixes a traced graph apart from the weights and the sizes: every submodule's class, forward code and
    plain attributes, the names, ranks and dtypes of the state, the inputs' ranks and dtypes, names and opset
    (the sizes are :func:`shape_key`)."""
    parts = []
    for name, m in module.named_modules():
        fwd = getattr(type(m).forward, "__code__", None)
        attrs = []
        for k, v in sorted(vars(m).items()):
            if k.startswith("_") or k == "training" or isinstance(v, torch.nn.Module):
                continue
            attrs.append((k, hashlib.sha256(v.detach().cpu().numpy().tobytes()).hexdigest()
                          if isinstance(v, torch.Tensor) else _sizeless(v)))
        parts.append((name, type(m).__module__, type(m).__qualname__,
                      None if fwd is None else (fwd.co_code, repr(fwd.co_consts), fwd.co_names), tuple(attrs)))
    state = tuple((k, v.dim(), str(v.dtype)) for k, v in module.state_dict().items())
    ranks = tuple((t.dim(), str(t.dtype)) for t in example)
    return (tuple(parts), state, ranks, tuple(input_names), tuple(output_names), opset)


def _sizeless(value: object) -> object:
    """A plain attribute with its integers (``in_features``, a config's ``n_points``) blanked: sizes are
    :func:`shape_key`'s, and the traces' signatures decide whether a size shaped the graph."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return "int"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__qualname__, tuple((f.name, _sizeless(getattr(value, f.name)))
                                               for f in dataclasses.fields(value)))
    if isinstance(value, (tuple, list)):
        return tuple(_sizeless(v) for v in value)
    return repr(value)


def shape_key(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> tuple:
    """The sizes of a structure: every state tensor's shape and the inputs' shapes past the batch."""
    return (tuple(tuple(v.shape) for v in module.state_dict().values()), tuple(tuple(t.shape[1:]) for t in example))


def _signature(proto: onnx.ModelProto, module: torch.nn.Module) -> bytes | None:
    """The graph with the state's initializer values and every size blanked, as bytes; None when a state tensor
    is not an initializer of its own name and shape (the exporter folded, merged or renamed it: no swap is
    possible). Constants that are not state (a clip bound) stay, so one derived from a size tells two sizes apart."""
    state = module.state_dict()
    sig = onnx.ModelProto()
    sig.CopyFrom(proto)
    seen = set()
    for init in sig.graph.initializer:
        if init.name in state:
            if tuple(init.dims) != tuple(state[init.name].shape):
                return None
            init.ClearField("raw_data")
            init.ClearField("float_data")
            init.ClearField("dims")
            seen.add(init.name)
    del sig.graph.value_info[:]
    for value in list(sig.graph.input) + list(sig.graph.output):
        value.type.tensor_type.ClearField("shape")
    return sig.SerializeToString() if seen == set(state) else None


def _second_sight(key: tuple, shapes: tuple, module: torch.nn.Module, example: tuple[torch.Tensor, ...],
                  input_names: tuple[str, ...], output_names: tuple[str, ...], opset: int) -> onnx.ModelProto | None:
    """A later module of a structure: trace it with distinct random weights; when that trace's signature equals
    the first module's, keep it as the structure's template (for every size when the two sizes differ) and return
    it with this module's weights."""
    first, first_shapes = _SEEN.get(key, (None, None))
    if first is None:
        return None  # never seen (the caller traces the module itself), or no template for this structure
    if first == _MERGED:
        first, first_shapes = _signature(_trace(_with_random_state(module, seed=1), example, input_names,
                                                output_names, opset), module), shapes
        _SEEN[key] = (first, first_shapes)  # None: even distinct weights leave no initializer of their own
        if first is None:
            return None
    template = _trace(_with_random_state(module), example, input_names, output_names, opset)
    if _signature(template, module) != first:
        if shapes == first_shapes:  # a constant depends on the weights: trace every module of this structure
            _SEEN[key] = (None, first_shapes)
        return None  # at other sizes the graph differs: the caller traces the module itself
    if len(_TEMPLATES) >= TEMPLATE_CACHE_SIZE:
        _TEMPLATES.pop(next(iter(_TEMPLATES)))
    _TEMPLATES[key] = (template.SerializeToString(), frozenset() if shapes != first_shapes else frozenset([shapes]))
    return _from_template(key, shapes, module, example, output_names)


def _with_random_state(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A copy of ``module`` whose floating-point state tensors hold distinct random values."""
    out = copy.deepcopy(module)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in out.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen, dtype=torch.float64).to(t.dtype) + 0.5)
    return out


def _from_template(key: tuple, shapes: tuple, module: torch.nn.Module, example: tuple[torch.Tensor, ...],
                   output_names: tuple[str, ...]) -> onnx.ModelProto | None:
    """The template of ``key`` with ``module``'s weights in its initializers and its sizes on the graph's inputs
    and outputs, or None (no template, one for other sizes only, or one that does not compute what the module
    does at these sizes)."""
    data, sizes = _TEMPLATES.get(key, (None, None))
    if data is None or (sizes and shapes not in sizes):
        return None
    from onnx import numpy_helper

    proto = onnx.load_from_string(data)
    state = module.state_dict()
    for init in proto.graph.initializer:
        if init.name in state:
            init.CopyFrom(numpy_helper.from_array(state[init.name].detach().cpu().numpy(), init.name))
    if sizes:
        return proto  # traced at these very sizes
    gen = torch.Generator().manual_seed(0)  # positive and varied: fine for a log of θ, unlike zeros
    probe = tuple((torch.rand(t.shape, generator=gen, dtype=torch.float64) + 0.5).to(t.dtype) for t in example)
    with torch.no_grad():
        ref = module(*probe)
    ref = (ref,) if isinstance(ref, torch.Tensor) else tuple(ref)
    try:
        _set_sizes(proto, probe, ref)
        same = _computes(proto, probe, ref)
    except Exception:  # shapes that do not infer, a graph onnxruntime refuses: not this template's size
        same = False
    if not same:
        _TEMPLATES.pop(key, None)
        _SEEN[key] = (None, shapes)
        return None
    return proto


def _set_sizes(proto: onnx.ModelProto, example: tuple[torch.Tensor, ...], outputs: tuple[torch.Tensor, ...]) -> None:
    """Write the inputs' and outputs' sizes past the batch onto the graph; intermediate shapes are inferred again."""
    for value, t in zip(list(proto.graph.input) + list(proto.graph.output), example + outputs):
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(list(dims)[1:], t.shape[1:]):
            dim.Clear()
            dim.dim_value = int(size)
    del proto.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    proto.graph.value_info.extend(inferred.graph.value_info)


def _computes(proto: onnx.ModelProto, probe: tuple[torch.Tensor, ...], ref: tuple[torch.Tensor, ...]) -> bool:
    """Whether ``proto`` on onnxruntime gives the module's outputs ``ref`` for the inputs ``probe`` (float32 rounding
    aside): a size-derived constant that two traces happened to share shows here, before the parity gate."""
    import numpy as np

    from curvae.runtime.engine.session import make_session

    sess = make_session(proto.SerializeToString(), ["CPUExecutionProvider"], threads=1, name="template")
    feeds = {i.name: t.detach().cpu().numpy() for i, t in zip(proto.graph.input, probe)}
    got = sess.run(None, feeds)
    return all(g.shape == tuple(r.shape) and np.allclose(g, r.numpy(), rtol=1e-4, atol=1e-4 * (
        1.0 + float(np.abs(r.numpy()).max(initial=0.0)))) for g, r in zip(got, ref))


def _ops(proto: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in proto.graph.node} | {n.op_type for f in proto.functions for n in f.node}


def _same_up_to(proto: onnx.ModelProto, opset: int) -> bool:
    """Whether every op of ``proto`` (traced at the native opset) computes the same at ``opset``."""
    return all(OP_CEILINGS.get(op, NATIVE_OPSET) >= opset for op in _ops(proto))


def restamp_opset(proto: onnx.ModelProto, opset: int) -> None:
    """Declare another default-domain opset for a graph whose ops mean the same there (a higher one: every op's
    :data:`OP_CEILINGS` reaches it, which the caller checks).

    onnx's version converter has no down-adapters for several of these ops,
    and the exporter's own down-conversion writes invalid ``Split`` nodes, so
    curvae checks every op against :data:`OP_FLOORS` and restamps the opset;
    the caller then runs ``onnx.checker`` and the parity gate on the result.
    """
    ops = _ops(proto)
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
