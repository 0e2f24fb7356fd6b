"""Precision variants of a bundle's graphs: fp16 weights and compute, and int8 dynamic quantisation.

Each variant keeps float32 inputs and outputs, so callers do not change; its
error against the float32 graphs and its speed are measured at export and
recorded in the manifest, and a variant over its error budget is refused.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from curvae.core.errors import ExportError
from curvae.runtime.fit import FitOptions, FitResult, fit_latent
from curvae.runtime.model import CHUNK_ROWS
from curvae.runtime.session import make_session
from curvae.runtime.versions import min_ir_version


def to_fp16(data: bytes) -> bytes:
    """Weights and compute in float16, with Cast nodes keeping float32 inputs and outputs."""
    proto = onnx.load_from_string(data)
    g = proto.graph
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), init.name))
    renames = {v.name: f"{v.name}__fp16" for v in list(g.input) + list(g.output)}
    for node in g.node:
        node.input[:] = [renames.get(x, x) for x in node.input]
        node.output[:] = [renames.get(x, x) for x in node.output]
    casts_in = [helper.make_node("Cast", [v.name], [renames[v.name]], to=TensorProto.FLOAT16) for v in g.input]
    casts_out = [helper.make_node("Cast", [renames[v.name]], [v.name], to=TensorProto.FLOAT) for v in g.output]
    nodes = casts_in + list(g.node) + casts_out
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    return proto.SerializeToString()


def to_int8(data: bytes) -> bytes:
    """onnxruntime's dynamic quantisation of MatMul/Gemm weights to int8."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # it suggests pre-processing on the root logger
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.onnx"), os.path.join(tmp, "out.onnx")
        with open(src, "wb") as fh:
            fh.write(data)
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8)
        with open(dst, "rb") as fh:
            return fh.read()


CONVERTERS = {"fp16": to_fp16, "int8": to_int8}


def default_fit(enc, dec, targets: NDArray[np.float32]) -> FitResult:
    """The runtime's default fit (LM from the encoder's μ) of ``targets`` (n, P) on two raw sessions."""
    t = np.ascontiguousarray(targets, dtype=np.float32)
    z0 = enc.run(None, {"x": t, "eps": np.zeros((len(t), enc.get_inputs()[1].shape[1]), np.float32)})[1]
    return fit_latent(lambda z: dec.run(None, {"z": z})[0], t, z0, FitOptions())


def _tag(data: bytes, variant: str) -> bytes:
    """Mark the graph as a variant and write the lowest IR version its opset needs."""
    proto = onnx.load_from_string(data)
    proto.metadata_props.add(key="curvae.variant", value=variant)
    opset = next(i.version for i in proto.opset_import if i.domain in ("", "ai.onnx"))
    proto.ir_version = min_ir_version(opset)
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def _rows_per_s(sess, z: NDArray[np.float32]) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for i in range(0, len(z), CHUNK_ROWS):  # chunked as CurveModel runs it
            sess.run(None, {"z": z[i:i + CHUNK_ROWS]})
        best = min(best, time.perf_counter() - t)
    return len(z) / best


def build_variant(
    name: str,
    enc: bytes,
    dec: bytes,
    *,
    latent_dim: int,
    targets: NDArray[np.float32],
    budget: float,
    seed: int = 0,
) -> tuple[bytes, bytes, dict[str, Any]]:
    """Convert both graphs, measure them against float32 and enforce the budget.

    Returns
    -------
    encoder_bytes, decoder_bytes : bytes
    record : dict
        Measured ``max_abs`` (per output), ``decode_rows_per_s`` (variant and
        float32), ``fit_residual_median`` (variant and float32) and ``budget``.
    """
    v_enc, v_dec = (_tag(CONVERTERS[name](b), name) for b in (enc, dec))
    cpu = ["CPUExecutionProvider"]
    s_enc, s_dec = make_session(enc, cpu, name="encoder"), make_session(dec, cpu, name="decoder")
    v_s_enc, v_s_dec = make_session(v_enc, cpu, name=f"{name} encoder"), make_session(v_dec, cpu, name=f"{name} decoder")
    g = np.random.default_rng(seed)
    z = g.standard_normal((2000, latent_dim)).astype(np.float32)
    eps = np.zeros((len(targets), latent_dim), np.float32)
    ref_x, got_x = s_dec.run(None, {"z": z})[0], v_s_dec.run(None, {"z": z})[0]
    ref_e, got_e = s_enc.run(None, {"x": targets, "eps": eps}), v_s_enc.run(None, {"x": targets, "eps": eps})
    err = {"x_hat": float(np.abs(got_x - ref_x).max()), "mu": float(np.abs(got_e[1] - ref_e[1]).max()),
           "logvar": float(np.abs(got_e[2] - ref_e[2]).max())}
    if not all(np.isfinite(v) for v in err.values()) or err["x_hat"] > budget:
        raise ExportError(f"variant {name}: decoded curves differ from float32 by {err['x_hat']:.3g} > budget "
                          f"{budget:g}; nothing was written (raise the budget only if that error is acceptable)")
    fits = {label: default_fit(se, sd, targets).summary()["residual_median"]
            for label, se, sd in (("fp32", s_enc, s_dec), (name, v_s_enc, v_s_dec))}
    big = g.standard_normal((100_000, latent_dim)).astype(np.float32)
    record = {
        "max_abs": err, "budget": budget,
        "decode_rows_per_s": _rows_per_s(v_s_dec, big), "fp32_decode_rows_per_s": _rows_per_s(s_dec, big),
        "fit_residual_median": fits[name], "fp32_fit_residual_median": fits["fp32"], "n_fit_targets": len(targets),
    }
    return v_enc, v_dec, record
