"""onnxruntime session creation with settings suited to small MLP graphs."""

from __future__ import annotations

from collections.abc import Sequence

import onnxruntime as ort

from curvae.runtime.errors import BundleError
from curvae.runtime.providers import ProviderSpec


def make_session(
    model: bytes,
    providers: Sequence[ProviderSpec],
    *,
    threads: int | None = None,
    name: str = "graph",
    opset: int | None = None,
    ir_version: int | None = None,
) -> ort.InferenceSession:
    """Open one onnxruntime session over verified graph bytes.

    Parameters
    ----------
    model : bytes
        The serialised ONNX graph.
    providers : sequence
        Resolved providers (see :func:`curvae.runtime.providers.resolve_providers`).
    threads : int, optional
        Intra-op threads; None lets onnxruntime choose.
    name : str
        Graph name used in error messages.
    opset, ir_version : int, optional
        The graph's versions, named in the error when onnxruntime cannot load it.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model, sess_options=opts, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own untyped errors here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        versions = f" (opset {opset}, IR version {ir_version})" if opset is not None else ""
        raise BundleError(f"onnxruntime {ort.__version__} cannot load the {name} graph{versions}: {first[:300]}; "
                          "upgrade onnxruntime or re-export with a lower --opset") from None
