"""One pair of onnxruntime sessions per bundle and options, per process.

A :class:`~curvae.runtime.model.CurveModel` that was pickled (to a Dask
worker, a process pool) carries its verified graph bytes, never a session;
on first use it opens its sessions here, once per process, shared by every
model with the same graphs and options.
"""

from __future__ import annotations

import hashlib
import threading
from curvae.runtime.bundle.format import Manifest
from curvae.runtime.engine.providers import resolve_providers
from curvae.runtime.engine.session import check_sessions, make_session

_SESSIONS: dict[tuple, tuple] = {}
_SESSIONS_LOCK = threading.Lock()


def process_sessions(graphs: tuple[bytes, bytes], manifest: Manifest, variant: str | None, args: dict) -> tuple:
    """This process's (encoder, decoder) sessions for the verified ``graphs`` of a bundle (its ``manifest``, the
    ``variant`` they are) opened with the session options ``args``: created once per graphs and options."""
    key = (hashlib.sha256(graphs[0] + graphs[1]).hexdigest(), repr(args.get("providers")),
           args.get("threads"), args.get("strict"))
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            _, _, opset, ir_version = manifest.graphs(variant)
            kw = {"opset": opset, "ir_version": ir_version, "strict": bool(args.get("strict")),
                  "threads": args.get("threads")}
            providers = args.get("providers") or resolve_providers("auto")
            enc = make_session(graphs[0], providers, name="encoder", **kw)
            dec = make_session(graphs[1], providers, name="decoder", **kw)
            check_sessions(manifest, enc, dec)
            _SESSIONS[key] = (enc, dec)
        return _SESSIONS[key]
