"""The one place that imports onnxruntime, lazily, with a clear error when it is missing.

curvae's base install carries no onnxruntime: the user picks the build that
fits their hardware through an extra (``curvae[cpu]``, ``[gpu]``,
``[openvino]``, ``[directml]``), because those builds all ship the same
``onnxruntime`` module and must not be installed side by side.
"""

from __future__ import annotations

from types import ModuleType

from curvae.core.errors import MissingRuntimeError

#: The onnxruntime builds on PyPI, each behind one curvae extra.
BUILDS = {
    "onnxruntime": "cpu",
    "onnxruntime-gpu": "gpu",
    "onnxruntime-openvino": "openvino",
    "onnxruntime-directml": "directml",
}

INSTALL_HINT = ("install curvae with the onnxruntime build for your hardware, one of: "
                "pip install 'curvae[cpu]' | 'curvae[gpu]' | 'curvae[openvino]' | 'curvae[directml]'")


def load() -> ModuleType:
    """Import and return ``onnxruntime``; raise :class:`MissingRuntimeError` if no build is installed."""
    try:
        import onnxruntime
    except ImportError as exc:
        why = "is not installed" if getattr(exc, "name", None) == "onnxruntime" else f"cannot be imported ({exc})"
        raise MissingRuntimeError(f"onnxruntime {why}; {INSTALL_HINT}") from None
    return onnxruntime


def installed_builds() -> list[str]:
    """The onnxruntime distributions installed in this environment (normally exactly one)."""
    from importlib import (
        metadata,  # imported here: it costs more than the rest of this module
    )

    found = []
    for dist in BUILDS:
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return found
