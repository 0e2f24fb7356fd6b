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
from curvae.export.config import INT8_SCHEMES
from curvae.runtime.bundle.versions import min_ir_version
from curvae.runtime.engine.runner import CHUNK_ROWS
from curvae.runtime.engine.session import make_session
from curvae.runtime.fitting.engine import FitOptions, FitResult, fit_latent


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


#: Prior codes on which a variant's decoder is compared with float32 (on every integer kernel for int8).
N_CHECK_CODES = 10_000


def to_int8(data: bytes, scheme: str = "u8u8-per-channel") -> bytes:
    """onnxruntime's dynamic quantisation of the MatMul/Gemm weights with one of ``INT8_SCHEMES``.

    Both schemes avoid the int16-saturating ``vpmaddubsw`` pair sums that u8×s8
    weights meet on x86 CPUs without VNNI: u8×u8 is summed exactly everywhere,
    and 7-bit weights keep every pair sum within int16.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # it suggests pre-processing on the root logger
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.onnx"), os.path.join(tmp, "out.onnx")
        with open(src, "wb") as fh:
            fh.write(data)
        kw = INT8_SCHEMES[scheme]
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType[kw["weight_type"]],
                         per_channel=kw["per_channel"], reduce_range=kw["reduce_range"])
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


def _max_abs(got_x, ref_x, got_e, ref_e) -> dict[str, float]:
    return {"x_hat": float(np.abs(got_x - ref_x).max()), "mu": float(np.abs(got_e[1] - ref_e[1]).max()),
            "logvar": float(np.abs(got_e[2] - ref_e[2]).max())}


def _errors_by_kernel(v_enc: bytes, v_dec: bytes, z, enc_feeds, ref_x, ref_e) -> dict[str, dict[str, float]]:
    """An int8 variant's error on every integer kernel a CPU may use, evaluated in numpy (``int8_kernels``)."""
    from curvae.export.int8_kernels import KERNELS, evaluate

    return {k: _max_abs(evaluate(v_dec, {"z": z}, k)[0], ref_x, evaluate(v_enc, enc_feeds, k), ref_e)
            for k in KERNELS}


def build_variant(
    name: str,
    enc: bytes,
    dec: bytes,
    *,
    latent_dim: int,
    targets: NDArray[np.float32],
    budget: float,
    seed: int = 0,
    int8_scheme: str = "u8u8-per-channel",
) -> tuple[bytes, bytes, dict[str, Any]]:
    """Convert both graphs, measure them against float32 and enforce the budget.

    Returns
    -------
    encoder_bytes, decoder_bytes : bytes
    record : dict
        Measured ``max_abs`` (per output), ``decode_rows_per_s`` (variant and
        float32), ``fit_residual_median`` (variant and float32) and ``budget``;
        for int8 also ``scheme`` and ``max_abs_by_kernel``, and ``max_abs`` is
        the worst over this machine and every integer kernel, so it bounds what
        any CPU gives.
    """
    convert = (lambda b: to_int8(b, int8_scheme)) if name == "int8" else CONVERTERS[name]
    v_enc, v_dec = (_tag(convert(b), name) for b in (enc, dec))
    cpu = ["CPUExecutionProvider"]
    s_enc, s_dec = make_session(enc, cpu, name="encoder"), make_session(dec, cpu, name="decoder")
    v_s_enc, v_s_dec = make_session(v_enc, cpu, name=f"{name} encoder"), make_session(v_dec, cpu, name=f"{name} decoder")
    g = np.random.default_rng(seed)
    z = g.standard_normal((N_CHECK_CODES, latent_dim)).astype(np.float32)
    feeds = {"x": targets, "eps": np.zeros((len(targets), latent_dim), np.float32)}
    ref_x, ref_e = s_dec.run(None, {"z": z})[0], s_enc.run(None, feeds)
    err = _max_abs(v_s_dec.run(None, {"z": z})[0], ref_x, v_s_enc.run(None, feeds), ref_e)
    extra: dict[str, Any] = {}
    if name == "int8":
        by_kernel = {"native": err, **_errors_by_kernel(v_enc, v_dec, z, feeds, ref_x, ref_e)}
        err = {out: max(e[out] for e in by_kernel.values()) for out in err}
        extra = {"scheme": int8_scheme, "max_abs_by_kernel": by_kernel}
    if not all(np.isfinite(v) for v in err.values()) or err["x_hat"] > budget:
        raise ExportError(f"variant {name}: decoded curves differ from float32 by {err['x_hat']:.3g} > budget "
                          f"{budget:g} (worst over this CPU and every integer kernel); nothing was written "
                          "(raise the budget only if that error is acceptable)")
    fits = {label: default_fit(se, sd, targets).summary()["residual_median"]
            for label, se, sd in (("fp32", s_enc, s_dec), (name, v_s_enc, v_s_dec))}
    big = g.standard_normal((100_000, latent_dim)).astype(np.float32)
    record = {
        "max_abs": err, "budget": budget,
        "decode_rows_per_s": _rows_per_s(v_s_dec, big), "fp32_decode_rows_per_s": _rows_per_s(s_dec, big),
        "fit_residual_median": fits[name], "fp32_fit_residual_median": fits["fp32"], "n_fit_targets": len(targets),
        **extra,
    }
    return v_enc, v_dec, record
