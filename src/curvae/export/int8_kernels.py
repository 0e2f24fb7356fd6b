"""What an int8 graph computes on CPUs other than this one, evaluated in numpy.

onnxruntime's dynamic quantisation multiplies uint8 activations by int8 or
uint8 weights with ``MatMulInteger`` (fused at load into its MLAS QGEMM). The
sums it returns depend on the CPU's instruction set:

- with AVX-512 VNNI, AVX-VNNI, or on ARM64 (``sdot``/``udot``), and for
  uint8 × uint8 weights on every x86 CPU (``vpmaddwd`` on 16-bit widened
  values), every product is summed exactly in int32;
- for uint8 × int8 on x86 CPUs without VNNI (AVX2, AVX-512BW), the kernel
  uses ``vpmaddubsw``: it adds each pair of neighbouring products along K in
  int16 *with saturation* to [-32768, 32767], then sums the pairs in int32.

:func:`evaluate` runs a quantised graph on onnx's reference evaluator with
either kernel, so the error of a bundle on CPUs this machine is not can be
measured here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

Kernel = Literal["exact", "pairsum16"]
KERNELS: tuple[Kernel, ...] = ("exact", "pairsum16")


def _zero_point(zp, like: NDArray) -> NDArray[np.int64]:
    return np.zeros((), np.int64) if zp is None else np.asarray(zp, dtype=np.int64)


def pairsum16_matmul(a: NDArray, b: NDArray, a_zp=None, b_zp=None) -> NDArray[np.int32]:
    """``MatMulInteger`` as the non-VNNI x86 u8×s8 kernel computes it.

    Parameters
    ----------
    a : (M, K) uint8
    b : (K, N) int8 (uint8 weights never saturate and are summed exactly)
    a_zp, b_zp : scalar or (N,) zero points

    Returns
    -------
    (M, N) int32
        ``Σ_k (a - a_zp)(b - b_zp)``, where the raw products ``a·b`` are added
        in int16 pairs ``(k, k+1)`` with saturation; the zero-point terms are
        exact, as MLAS folds them in from row and column sums.
    """
    a64, b64 = np.asarray(a, np.int64), np.asarray(b, np.int64)
    za, zb = _zero_point(a_zp, a64), _zero_point(b_zp, b64)
    k = a64.shape[-1]
    if k % 2:
        a64 = np.concatenate([a64, np.zeros(a64.shape[:-1] + (1,), np.int64)], axis=-1)
        b64 = np.concatenate([b64, np.zeros((1,) + b64.shape[1:], np.int64)], axis=0)
    raw = np.zeros(a64.shape[:-1] + (b64.shape[-1],), np.int64)
    saturates = b.dtype == np.int8
    for j in range(0, a64.shape[-1], 2):
        pair = a64[..., j, None] * b64[j] + a64[..., j + 1, None] * b64[j + 1]
        raw += np.clip(pair, -32768, 32767) if saturates else pair
    col = np.asarray(b, np.int64).sum(axis=0)
    row = np.asarray(a, np.int64).sum(axis=-1, keepdims=True)
    return (raw - za * col - zb * row + k * za * zb).astype(np.int32)


class MatMulInteger(OpRun):
    """Replaces onnx's ``MatMulInteger`` (the reference evaluator keys custom ops by class name)."""

    op_domain = ""

    def _run(self, a, b, a_zero_point=None, b_zero_point=None):  # noqa: D401 - onnx's signature
        return (pairsum16_matmul(a, b, a_zero_point, b_zero_point),)


def evaluate(data: bytes, feeds: dict[str, NDArray], kernel: Kernel = "exact") -> list[NDArray]:
    """Run a (quantised) graph in numpy with the given integer kernel.

    ``"exact"`` sums every product in int32, as VNNI, ARM64 and u8×u8 kernels
    do; ``"pairsum16"`` saturates u8×s8 pair sums to int16, as AVX2 and
    AVX-512BW CPUs without VNNI do. Float parts run in float32 like onnxruntime.
    """
    new_ops = [MatMulInteger] if kernel == "pairsum16" else None
    return ReferenceEvaluator(onnx.load_from_string(data), new_ops=new_ops).run(None, feeds)


def weight_types(data: bytes) -> set[str]:
    """The element types of the weights (second input) of every ``MatMulInteger``: {"int8"}, {"uint8"}, ..."""
    proto = onnx.load_from_string(data)
    inits = {i.name: onnx.helper.tensor_dtype_to_np_dtype(i.data_type).name for i in proto.graph.initializer}
    return {inits.get(n.input[1], "?") for n in proto.graph.node if n.op_type == "MatMulInteger"}
