"""onnxruntime session creation with settings suited to small MLP graphs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from curvae.core.errors import BundleError, ProviderError, first_line
from curvae.runtime.bundle.format import Manifest
from curvae.runtime.engine import onnxrt
from curvae.runtime.engine.providers import ProviderSpec, provider_name

if TYPE_CHECKING:
    import onnxruntime as ort


def make_session(
    model: bytes,
    providers: Sequence[ProviderSpec],
    *,
    threads: int | None = None,
    name: str = "graph",
    opset: int | None = None,
    ir_version: int | None = None,
    strict: bool = False,
    profile_prefix: str | None = None,
) -> ort.InferenceSession:
    """Open one onnxruntime session over verified graph bytes.

    Parameters
    ----------
    model : bytes
        The serialised ONNX graph.
    providers : sequence
        Resolved providers (see :func:`curvae.runtime.engine.providers.resolve_providers`).
    threads : int, optional
        Intra-op threads; None lets onnxruntime choose.
    name : str
        Graph name used in error messages.
    opset, ir_version : int, optional
        The graph's versions, named in the error when onnxruntime cannot load it.
    strict : bool
        Forbid onnxruntime's silent fallback to CPU: the first requested
        provider must be the one that runs, or :class:`ProviderError` is raised.
    profile_prefix : str, optional
        Turn onnxruntime's profiler on, writing under this path prefix
        (see :func:`curvae.runtime.engine.placement.node_placement`).
    """
    ort = onnxrt.load()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    first = provider_name(providers[0])
    if strict and first != "CPUExecutionProvider":
        opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        sess = ort.InferenceSession(model, sess_options=opts, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own untyped errors here
        line = first_line(exc)
        if strict:
            raise ProviderError(f"--strict: {first} cannot run the whole {name} graph ({line[:200]}); "
                                "drop --strict to allow CPU fallback, or use another provider") from None
        versions = f" (opset {opset}, IR version {ir_version})" if opset is not None else ""
        raise BundleError(f"onnxruntime {ort.__version__} cannot load the {name} graph{versions}: {line[:300]}; "
                          "upgrade onnxruntime or re-export with a lower --opset") from None
    if strict and sess.get_providers()[0] != first:
        raise ProviderError(f"--strict: {first} was requested but the {name} graph runs on "
                            f"{sess.get_providers()[0]}; drop --strict to allow fallback")
    return sess


def check_sessions(manifest: Manifest, enc, dec) -> None:
    """Both graphs must come from the manifest's run and have the manifest's shapes."""
    for name, sess in (("encoder", enc), ("decoder", dec)):
        meta = sess.get_modelmeta().custom_metadata_map
        run_id = meta.get("curvae.run_id")
        if run_id != manifest.run_id or meta.get("curvae.graph") != name:
            raise BundleError(f"{name}.onnx says run {run_id!r} (graph {meta.get('curvae.graph')!r}) but the manifest "
                              f"says run {manifest.run_id!r}; encoder and decoder must come from one export: "
                              "re-export the bundle")
    enc_in = {i.name: i.shape[1:] for i in enc.get_inputs()}
    dec_in = {i.name: i.shape[1:] for i in dec.get_inputs()}
    dec_out = dec.get_outputs()[0].shape[1:]
    want = ({"x": [manifest.n_points], "eps": [manifest.latent_dim]}, {"z": [manifest.latent_dim]},
            [manifest.n_points])
    if (enc_in, dec_in, dec_out) != want:
        raise BundleError(f"graph shapes encoder {enc_in}, decoder {dec_in}->{dec_out} disagree with the manifest "
                          f"(n_points={manifest.n_points}, latent_dim={manifest.latent_dim}); re-export the bundle")
