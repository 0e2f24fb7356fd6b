"""Export options, saved inside the bundle manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from curvae.core.errors import InputError
from curvae.runtime.bundle.versions import (
    MAX_OPSET,
    MIN_OPSET,
    min_ir_version,
    min_onnxruntime,
)

#: Default error budgets of the precision variants: max |variant − float32| over decoded curves
#: (log-PDF units for the built-in families).
DEFAULT_BUDGETS = {"fp16": 0.05, "int8": 0.5}

#: int8 schemes (onnxruntime dynamic quantisation settings). Neither saturates on any CPU: u8×u8 is summed
#: exactly by every kernel, and 7-bit weights keep every u8×s7 pair sum within int16 (docs/portability.md).
INT8_SCHEMES: dict[str, dict] = {
    "u8u8-per-channel": {"weight_type": "QUInt8", "per_channel": True, "reduce_range": False},
    "u8s7-per-channel": {"weight_type": "QInt8", "per_channel": True, "reduce_range": True},
}


@dataclass(frozen=True)
class ExportConfig:
    """How to export: opset and the parity tolerance that gates the write.

    ``opset`` is the default-domain opset the graphs declare, 7..23; the
    IR version written is the lowest that opset needs, so opset 18 runs on
    onnxruntime 1.14 and later, opset 13 on 1.6 and later.

    An output element passes when ``|onnx - torch| <= atol + rtol·|torch|``;
    the small default ``rtol`` (8 float32 ulps) absorbs summation-order
    rounding on large log-PDF values, and ``rtol=0`` gives a pure ``atol`` gate.
    """

    opset: int = 18
    atol: float = 1e-5
    rtol: float = 1e-6
    seed: int = 0
    #: How ``--quantize int8`` quantises: the most accurate saturation-free scheme by default; "u8s7-per-channel"
    #: is about 2x faster on CPUs with VNNI, at some accuracy.
    int8_scheme: str = "u8u8-per-channel"
    #: Held-out curves of user data kept in the manifest (hashed) for reports and checks; 0 keeps none.
    held_out: int = 200
    #: Fit and ship the parameter head (``params.onnx``) when the curves' parameters are known.
    params: bool = True
    #: Fit and ship the emulator (``emulator.onnx``, θ → curve) beside the head. Its training is most of an export's
    #: time (about 10 s on 2,000 curves); False keeps the head and leaves the emulator out.
    emulator: bool = True

    def __post_init__(self) -> None:
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise InputError(f"opset={self.opset} is outside the supported {MIN_OPSET}..{MAX_OPSET}; pick one in range "
                             f"(opset {MIN_OPSET} runs on every onnxruntime 1.x, {MAX_OPSET} needs onnxruntime >= "
                             f"{min_onnxruntime(MAX_OPSET, min_ir_version(MAX_OPSET))})")
        if not (self.atol > 0 and self.atol == self.atol):
            raise InputError(f"atol={self.atol!r} must be a positive number")
        if not (0 <= self.rtol < 1e-2):
            raise InputError(f"rtol={self.rtol!r} must be in [0, 0.01); float32 rounding needs about 1e-6")
        if not (isinstance(self.held_out, int) and 0 <= self.held_out <= 10_000):
            raise InputError(f"held_out={self.held_out!r} must be an integer in 0..10000 (0 keeps no held-out curves)")
        if self.int8_scheme not in INT8_SCHEMES:
            raise InputError(f"int8_scheme={self.int8_scheme!r} is not one of {', '.join(INT8_SCHEMES)}; pick one")

    def to_dict(self) -> dict:
        return asdict(self)
