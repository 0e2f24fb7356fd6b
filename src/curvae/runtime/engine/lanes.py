"""Large batches over parallel lanes: one single-threaded onnxruntime session per core, each running every k-th
chunk of rows, instead of one session whose threads split every Gemm.

A small MLP's Gemms on a few thousand rows are too short for onnxruntime's intra-op threads to split well: each
layer ends at a barrier, and the threads wait for one another. Lanes never wait: each core runs whole chunks
through the whole graph, in cache. On 2 cores, 100,000-row decodes of the depth-1 network took 25 ms instead of
42 ms, and of the depth-3 network 107 ms instead of 145 ms (``benchmarks/bench_runtime.py``). Only CPU sessions
get lanes; small batches keep the single session, whose one call is cheaper than a hand-off to the pool.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from curvae.runtime.bundle.format import Manifest
from curvae.runtime.engine.providers import ProviderSpec, provider_name, resolve_providers
from curvae.runtime.engine.session import make_session

#: Rows per lane call: the (rows, hidden) intermediates of the largest network the capacity search may choose stay
#: in a core's cache (100,000 rows on 2 cores, depth 1 and depth 3: 25.1 / 106.5 ms at 512 rows, 25.7 / 110.7 at
#: 1024, 29.3 / 117.5 at 2048).
LANE_ROWS = 512
#: Fewest rows a batch has before it runs on lanes.
MIN_LANE_ROWS = 4 * LANE_ROWS


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class Lanes:
    """``count`` single-threaded sessions of one graph and a pool of as many threads that runs them.

    Parameters
    ----------
    model : bytes
        The verified graph.
    providers : sequence
        Resolved providers; lanes run on the CPU only.
    count : int
        Sessions and threads (at least 2).
    """

    def __init__(self, model: bytes, providers: Sequence[ProviderSpec], count: int, *, name: str,
                 opset: int | None = None, ir_version: int | None = None) -> None:
        self.sessions = [make_session(model, providers, threads=1, name=name, opset=opset, ir_version=ir_version)
                         for _ in range(count)]
        self._name = name
        self._pool, self._pid = ThreadPoolExecutor(count, thread_name_prefix=f"curvae-{name}"), os.getpid()

    def _threads(self) -> ThreadPoolExecutor:
        """The pool; a forked child (``multiprocessing``'s default on Linux) inherits no threads, so it starts its own."""
        if self._pid != os.getpid():
            self._pool = ThreadPoolExecutor(len(self.sessions), thread_name_prefix=f"curvae-{self._name}")
            self._pid = os.getpid()
        return self._pool

    def map(self, run_chunk: Callable[[object, int, int], None], n: int, chunk: int = LANE_ROWS) -> None:
        """``run_chunk(session, lo, hi)`` for every chunk of ``n`` rows; lane ``i`` takes chunks i, i + k, ...

        The first error of any chunk is raised here, after every lane has stopped.
        """
        starts = range(0, n, chunk)
        k = min(len(self.sessions), len(starts))

        def lane(i: int) -> None:
            sess = self.sessions[i]
            for lo in starts[i::k]:
                run_chunk(sess, lo, min(lo + chunk, n))

        pool = self._threads()
        futures = [pool.submit(lane, i) for i in range(k)]
        errors = [f.exception() for f in futures]  # waits for all
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first


_LANES: dict[tuple, tuple[Lanes, Lanes]] = {}
_LANES_LOCK = threading.Lock()


def process_lanes(graphs: tuple[bytes, bytes], providers: Sequence[ProviderSpec], threads: int | None, *,
                  opset: int | None = None, ir_version: int | None = None) -> tuple[Lanes, Lanes] | None:
    """This process's (encoder, decoder) lanes for a bundle's verified ``graphs``: one lane per core (or per
    ``threads``), created once per graphs and options. None when they would not pay: a provider other than the
    CPU comes first, or there is one core (or ``threads=1``)."""
    first = provider_name(providers[0])
    count = cores() if threads is None else int(threads)
    if first != "CPUExecutionProvider" or count < 2:
        return None
    key = (hashlib.sha256(graphs[0] + graphs[1]).hexdigest(), repr(list(providers)), count)
    with _LANES_LOCK:
        if key not in _LANES:
            kw = {"opset": opset, "ir_version": ir_version}
            _LANES[key] = (Lanes(graphs[0], providers, count, name="encoder", **kw),
                           Lanes(graphs[1], providers, count, name="decoder", **kw))
        return _LANES[key]


def model_lanes(graphs: tuple[bytes, bytes] | None, manifest: Manifest, variant: str | None,
                args: dict) -> tuple[Lanes, Lanes] | None:
    """:func:`process_lanes` for a bundle's verified ``graphs`` (None: a model not opened from a bundle, no lanes),
    its ``manifest``, the ``variant`` they are, and the model's session options ``args``."""
    if graphs is None:
        return None
    _, _, opset, ir_version = manifest.graphs(variant)
    return process_lanes(graphs, args.get("providers") or resolve_providers("auto"), args.get("threads"),
                         opset=opset, ir_version=ir_version)
