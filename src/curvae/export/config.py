"""Export options, saved inside the bundle manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from curvae.runtime.errors import InputError

MIN_OPSET, MAX_OPSET = 18, 23


@dataclass(frozen=True)
class ExportConfig:
    """How to export: opset and the parity tolerance that gates the write.

    An output element passes when ``|onnx - torch| <= atol + rtol·|torch|``;
    the small default ``rtol`` (8 float32 ulps) absorbs summation-order
    rounding on large log-PDF values, and ``rtol=0`` gives a pure ``atol`` gate.
    """

    opset: int = 18
    atol: float = 1e-5
    rtol: float = 1e-6
    seed: int = 0

    def __post_init__(self) -> None:
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise InputError(f"opset={self.opset} is outside the supported {MIN_OPSET}..{MAX_OPSET}; pick one in range")
        if not (self.atol > 0 and self.atol == self.atol):
            raise InputError(f"atol={self.atol!r} must be a positive number")
        if not (0 <= self.rtol < 1e-2):
            raise InputError(f"rtol={self.rtol!r} must be in [0, 0.01); float32 rounding needs about 1e-6")

    def to_dict(self) -> dict:
        return asdict(self)
