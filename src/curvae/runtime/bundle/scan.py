"""A minimal reader of ONNX protobuf bytes, so the runtime can vet graphs without the onnx package.

It reads only what bundle checks need: the IR version, the opsets, every op
type (subgraphs and local functions included) and whether any tensor points
at external data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from curvae.core.errors import BundleError

# Field numbers from onnx.proto.
_MODEL_IR, _MODEL_OPSET, _MODEL_GRAPH, _MODEL_FUNCTIONS = 1, 8, 7, 25
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2
_GRAPH_NODE, _GRAPH_INIT = 1, 5
_NODE_OP, _NODE_ATTR = 4, 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS = 5, 6, 10, 11
_TENSOR_EXTERNAL, _TENSOR_LOCATION = 13, 14
_FUNC_NODE = 7


@dataclass
class GraphFacts:
    """What :func:`scan_model` found in a serialised ModelProto."""

    ir_version: int = 0
    opsets: dict[str, int] = field(default_factory=dict)
    op_types: set[str] = field(default_factory=set)
    external_data: bool = False


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value) of one message; nested values are zero-copy views."""
    buf = memoryview(buf)
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
            yield num, wire, val
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated field")
            yield num, wire, buf[pos:pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")


#: Deepest nesting of subgraphs (If/Loop/Scan bodies) accepted; curvae's own graphs have none, and
#: real models rarely nest more than a few levels.
MAX_SUBGRAPH_DEPTH = 64


def _tensor(buf: memoryview, facts: GraphFacts) -> None:
    for num, wire, val in _fields(buf):
        if (num == _TENSOR_LOCATION and wire == 0 and val == 1) or (num == _TENSOR_EXTERNAL and wire == 2):
            facts.external_data = True


def _walk(root: memoryview, facts: GraphFacts, *, kind: str) -> None:
    """Visit a graph (``kind="graph"``) or a function's node list (``kind="node"``) and every subgraph in it.

    An explicit stack instead of recursion: a hostile file nesting subgraphs
    thousands deep meets :data:`MAX_SUBGRAPH_DEPTH`, not Python's stack.
    """
    stack: list[tuple[str, memoryview, int]] = [(kind, root, 0)]
    while stack:
        kind, buf, depth = stack.pop()
        if depth > MAX_SUBGRAPH_DEPTH:
            raise ValueError(f"subgraphs nested deeper than {MAX_SUBGRAPH_DEPTH} levels")
        if kind == "tensor":
            _tensor(buf, facts)
            continue
        if kind == "graph":
            for num, wire, val in _fields(buf):
                if wire == 2 and num == _GRAPH_NODE:
                    stack.append(("node", val, depth))
                elif wire == 2 and num == _GRAPH_INIT:
                    stack.append(("tensor", val, depth))
            continue
        for num, wire, val in _fields(buf):  # a node
            if num == _NODE_OP and wire == 2:
                facts.op_types.add(bytes(val).decode("utf-8", "replace"))
            elif num == _NODE_ATTR and wire == 2:
                for anum, awire, aval in _fields(val):
                    if awire != 2:
                        continue
                    if anum in (_ATTR_G, _ATTR_GRAPHS):
                        stack.append(("graph", aval, depth + 1))
                    elif anum in (_ATTR_T, _ATTR_TENSORS):
                        stack.append(("tensor", aval, depth))


def scan_model(data: bytes, *, name: str = "graph") -> GraphFacts:
    """Read IR version, opsets, op types and external-data use from ONNX bytes."""
    facts = GraphFacts()
    try:
        for num, wire, val in _fields(data):
            if num == _MODEL_IR and wire == 0:
                facts.ir_version = int(val)
            elif num == _MODEL_OPSET and wire == 2:
                domain, version = "", 0
                for onum, owire, oval in _fields(val):
                    if onum == _OPSET_DOMAIN and owire == 2:
                        domain = bytes(oval).decode("utf-8", "replace")
                    elif onum == _OPSET_VERSION and owire == 0:
                        version = int(oval)
                facts.opsets[domain] = version
            elif num == _MODEL_GRAPH and wire == 2:
                _walk(val, facts, kind="graph")
            elif num == _MODEL_FUNCTIONS and wire == 2:
                for fnum, fwire, fval in _fields(val):
                    if fnum == _FUNC_NODE and fwire == 2:
                        _walk(fval, facts, kind="node")
    except ValueError as exc:
        raise BundleError(f"{name} is not a readable ONNX model ({exc}); re-export the bundle") from None
    if facts.ir_version == 0 or "" not in facts.opsets:
        raise BundleError(f"{name} has no IR version or default-domain opset; it is not an ONNX model: "
                          "re-export the bundle")
    return facts
