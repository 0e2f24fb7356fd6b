"""The bundle's optional graphs (the parameter head and the emulator), read and verified, and the full check.

Each is read like the main graphs: bounded, hashed in memory against the
manifest, vetted (opset, IR version, no external data, no random ops). Call
after :func:`~curvae.runtime.bundle.format.read_bundle`, which checks the file set.
"""

from __future__ import annotations

import os
from pathlib import Path

from curvae.core.errors import BundleError, first_line
from curvae.core.safeio import read_bounded
from curvae.runtime.bundle.format import (
    Manifest,
    graph_byte_cap,
    read_bundle,
    read_manifest,
    sha256_bytes,
    vet_graph,
)
from curvae.runtime.bundle.records import GraphInfo


def read_head(bundle: str | os.PathLike[str], manifest: Manifest) -> bytes | None:
    """The verified bytes of the bundle's parameter head (``params.onnx``), or None when it has none.

    Read like the other graphs: bounded, hashed in memory against the manifest, vetted (opset, IR
    version, no external data, no random ops). Call after :func:`read_bundle`, which checks the file set.
    """
    return None if manifest.params is None else _read_extra(bundle, manifest, manifest.params.graph, HEAD_MAX_BYTES)


def read_emulator(bundle: str | os.PathLike[str], manifest: Manifest) -> bytes | None:
    """The verified bytes of the bundle's emulator (``emulator.onnx``), or None when it has none (as :func:`read_head`).

    It holds a copy of the decoder, so it may be as large as the decoder plus its small θ → z network.
    """
    if manifest.emulator is None:
        return None
    cap = max(HEAD_MAX_BYTES, graph_byte_cap(manifest) + HEAD_MAX_BYTES)
    return _read_extra(bundle, manifest, manifest.emulator.graph, cap)


def _read_extra(bundle: str | os.PathLike[str], manifest: Manifest, info: GraphInfo, cap: int) -> bytes:
    root = Path(bundle)
    data = read_bounded(root / info.file, max_bytes=cap, root=root, error=BundleError, fix="re-export the bundle")
    digest = sha256_bytes(data)
    if digest != info.sha256:
        raise BundleError(f"{info.file} has sha256 {digest[:12]}… but the manifest says {info.sha256[:12]}…; "
                          "the file is corrupt or was replaced: re-export the bundle")
    vet_graph(data, manifest.opset, manifest.ir_version, name=info.file)
    return data


#: Largest parameter head read: its two hidden layers are at most 1024 wide (a real one is about 20 kB).
HEAD_MAX_BYTES = 16 * 2**20


def full_check(bundle: str | os.PathLike[str]) -> str:
    """Run ``onnx.checker`` (full check) on both graphs when the onnx package is installed.

    Returns what was done, for reporting; raises :class:`BundleError` on failure.
    """
    try:
        import onnx
    except ImportError:
        return "onnx.checker skipped (the onnx package is not installed)"
    manifest = read_manifest(bundle)
    for variant in [None, *sorted(manifest.variants)]:
        _, enc, dec = read_bundle(bundle, variant)
        enc_info, dec_info, _, _ = manifest.graphs(variant)
        for info, data in ((enc_info, enc), (dec_info, dec)):
            try:
                onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
            except Exception as exc:  # onnx raises ValidationError, InferenceError, DecodeError...
                raise BundleError(f"{info.file} fails onnx.checker ({first_line(exc)}); re-export the bundle") from None
    extras = [(manifest.params, read_head(bundle, manifest)), (manifest.emulator, read_emulator(bundle, manifest))]
    for record, data in extras:
        if data is None:
            continue
        try:
            onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
        except Exception as exc:
            raise BundleError(f"{record.graph.file} fails onnx.checker ({first_line(exc)}); "
                              "re-export the bundle") from None
    n = 2 * (1 + len(manifest.variants)) + sum(data is not None for _, data in extras)
    return f"onnx.checker full check passed on {n} graphs (onnx {onnx.__version__})"
