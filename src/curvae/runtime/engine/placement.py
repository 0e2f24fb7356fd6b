"""Proof of where each node ran: onnxruntime's own profile, read back per node.

A session's provider list says which providers it may use, not which one ran
each node. onnxruntime's profiler records, for every node it executes, the
provider that executed it; :func:`node_placement` runs a graph once with the
profiler on and returns that record.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence

import numpy as np

from curvae.core.errors import BundleError, ProviderError
from curvae.runtime.engine.providers import ProviderSpec
from curvae.runtime.engine.session import make_session

#: Rows fed to the graph for the profiled run; > 1 so batch-dependent paths are the ones used.
PROFILE_ROWS = 2


def node_placement(
    model: bytes,
    providers: Sequence[ProviderSpec],
    *,
    name: str,
    threads: int | None = None,
    strict: bool = False,
) -> dict[str, list[str]]:
    """Run ``model`` once under onnxruntime's profiler and report who executed each node.

    Parameters
    ----------
    model : bytes
        Verified graph bytes.
    providers, threads, strict
        As for :func:`curvae.runtime.engine.session.make_session`, so the placement
        is the one the real session gets.
    name : str
        Graph name for messages.

    Returns
    -------
    dict
        Execution provider → op types of the nodes it executed (after
        onnxruntime's graph optimisations, so fused nodes such as
        ``FusedGemm`` appear as one), sorted.
    """
    with tempfile.TemporaryDirectory(prefix="curvae-profile-") as tmp:
        sess = make_session(model, providers, threads=threads, name=name, strict=strict,
                            profile_prefix=os.path.join(tmp, "profile"))
        feeds = {}
        for inp in sess.get_inputs():
            shape = [PROFILE_ROWS if not isinstance(d, int) else d for d in inp.shape]
            feeds[inp.name] = np.zeros(shape, np.float32)
        sess.run(None, feeds)
        path = sess.end_profiling()
        try:
            with open(path, encoding="utf-8") as fh:
                events = json.load(fh)
        except (OSError, ValueError) as exc:
            raise BundleError(f"onnxruntime's profile of the {name} graph is unreadable ({exc})") from None
    placed: dict[str, list[str]] = {}
    for ev in events:
        args = ev.get("args") or {}
        if ev.get("cat") == "Node" and str(ev.get("name", "")).endswith("_kernel_time") and "provider" in args:
            placed.setdefault(str(args["provider"]), []).append(str(args.get("op_name", "?")))
    if not placed:
        raise ProviderError(f"onnxruntime recorded no executed nodes for the {name} graph, so where it ran cannot "
                            "be shown; this onnxruntime build does not report node placement")
    return {p: sorted(ops) for p, ops in sorted(placed.items())}


def check_placement(placed: dict[str, list[str]], provider: str, *, name: str) -> None:
    """Raise :class:`ProviderError` when any node ran on another provider than ``provider``."""
    elsewhere = {p: ops for p, ops in placed.items() if p != provider}
    if elsewhere:
        where = "; ".join(f"{len(ops)} on {p} ({', '.join(sorted(set(ops)))})" for p, ops in elsewhere.items())
        total = sum(len(ops) for ops in placed.values())
        raise ProviderError(f"--strict: {provider} was requested, but of the {name} graph's {total} nodes {where}; "
                            "drop --strict to allow that, or pick a provider that runs every op")
