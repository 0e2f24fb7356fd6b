"""Execution-provider resolution, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

from curvae.core.errors import ProviderError
from curvae.runtime.engine import onnxrt

#: Preference order used by ``"auto"``: accelerators first, CPU last.
PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "OpenVINOExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)

ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}

#: Providers that do not run graphs locally; "auto" leaves them out.
NOT_COMPUTE = frozenset({"AzureExecutionProvider"})

ProviderSpec = Union[str, tuple[str, dict[str, Any]]]


def provider_name(spec: ProviderSpec) -> str:
    """The provider a spec names: ``"CUDAExecutionProvider"`` or ``("CUDAExecutionProvider", {options})``."""
    return spec if isinstance(spec, str) else spec[0]


def available_providers() -> list[str]:
    """Providers this onnxruntime build offers, in curvae's preference order."""
    avail = [p for p in onnxrt.load().get_available_providers() if p not in NOT_COMPUTE]
    rank = {p: i for i, p in enumerate(PREFERENCE)}
    # Unknown providers go just before CPU, keeping ORT's own relative order.
    return sorted(avail, key=lambda p: (rank.get(p, len(PREFERENCE) - 1.5), avail.index(p)))


def resolve_providers(requested: str | Sequence[ProviderSpec] | None = "auto") -> list[ProviderSpec]:
    """Turn a provider request into the list handed to onnxruntime.

    Parameters
    ----------
    requested : "auto", a comma-separated string, or a sequence
        ``"auto"`` (or None) takes every available provider in preference
        order. Names may be ORT names (``"CUDAExecutionProvider"``) or short
        aliases (``"cuda"``, ``"cpu"``). A sequence may hold
        ``(name, options)`` pairs.

    Returns
    -------
    list of str or (str, dict)
    """
    avail = available_providers()
    if requested is None or (isinstance(requested, str) and requested.strip().lower() == "auto"):
        return list(avail)
    items: list[ProviderSpec]
    if isinstance(requested, str):
        items = [s.strip() for s in requested.split(",") if s.strip()]
    else:
        items = list(requested)
    if not items:
        raise ProviderError(f"no provider requested; pass 'auto' or some of: {', '.join(avail)}")
    out: list[ProviderSpec] = []
    for item in items:
        name, opts = (item, None) if isinstance(item, str) else (item[0], dict(item[1]))
        full = ALIASES.get(name.lower(), name)
        if full not in avail:
            raise ProviderError(
                f"execution provider {name!r} is not available in this onnxruntime build; "
                f"available providers: {', '.join(avail)}"
            )
        out.append(full if opts is None else (full, opts))
    return out
