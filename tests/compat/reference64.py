"""Float64 expectations for a float32 curvae graph: the same graph, in double, on onnx's reference evaluator.

The result carries no float32 rounding at all, so every engine, onnxruntime
included, is compared with the same exact-as-possible numbers.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx.reference import ReferenceEvaluator


def _retype(value_infos) -> None:
    for v in value_infos:
        t = v.type.tensor_type
        if t.elem_type == TensorProto.FLOAT:
            t.elem_type = TensorProto.DOUBLE


def to_float64(data: bytes) -> onnx.ModelProto:
    """A copy of the graph with every float32 tensor, input, output and constant in float64."""
    proto = onnx.load_from_string(data)
    g = proto.graph
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(arr.astype(np.float64), init.name))
    _retype(g.input)
    _retype(g.output)
    _retype(g.value_info)
    for node in g.node:
        if node.op_type == "Cast":
            raise ValueError("float64 expectations are for the float32 graphs, not the precision variants")
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float64), attr.t.name))
    return proto


class Reference64:
    """Runs a bundle's encoder and decoder in float64."""

    def __init__(self, bundle) -> None:
        self.enc = ReferenceEvaluator(to_float64((bundle / "encoder.onnx").read_bytes()))
        self.dec = ReferenceEvaluator(to_float64((bundle / "decoder.onnx").read_bytes()))

    def encode(self, x: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(self.enc.run(None, {"x": x.astype(np.float64), "eps": eps.astype(np.float64)}))

    def decode(self, z: np.ndarray) -> np.ndarray:
        return self.dec.run(None, {"z": z.astype(np.float64)})[0]
