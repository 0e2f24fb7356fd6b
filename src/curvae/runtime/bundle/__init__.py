"""The bundle format: the manifest and its typed records, the graph scan, the version table, and the reader.

- ``format``: :class:`Manifest`, :func:`read_manifest`, :func:`read_bundle` and the format's rules;
- ``records``: the manifest's typed parts (parity, variants, training, fit residuals, baseline, held-out curves);
- ``scan``: what a graph declares (opsets, IR version, op types, external data), read without onnx;
- ``versions``: which onnxruntime runs which opset and IR version.
"""

from curvae.runtime.bundle.format import (
    FORMAT_VERSION,
    Manifest,
    read_bundle,
    read_manifest,
)

__all__ = ["FORMAT_VERSION", "Manifest", "read_bundle", "read_manifest"]
