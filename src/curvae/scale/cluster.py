"""Reach a Dask cluster: a scheduler's address, or ``local[:N]`` for a LocalCluster of N worker processes.

Threads: a Dask worker runs ``nthreads`` tasks at once and each task runs
onnxruntime, whose intra-op thread count is set explicitly (it ignores
``OMP_NUM_THREADS``). curvae keeps worker threads × onnxruntime threads within
the worker's cores:

- ``local:N`` starts N processes of one thread each and gives each
  onnxruntime ``max(1, cores // N)`` threads;
- on an existing cluster, onnxruntime gets 1 thread per task by default
  (Dask's threads are the parallelism); give ``threads`` when workers have
  more cores than threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from curvae.core.errors import ClusterError, InputError, MissingRuntimeError
from curvae.runtime.arrays import check_int

#: Seconds to wait for a scheduler before giving up with a clear error.
CONNECT_TIMEOUT_S = 5.0

#: glibc settings of the workers ``local:N`` starts. Dask's default, MALLOC_TRIM_THRESHOLD_=65536, also
#: freezes glibc's mmap threshold at 128 KiB, so every array a fit allocates becomes a fresh mmap that is
#: zero-filled and unmapped again: that made a fit about 2x slower per target in a worker than in one
#: process (15 vs 32 µs, measured). 64 MiB for both keeps those arrays on the heap and still gives memory
#: above 64 MiB back to the OS. docs/scale.md shows the same settings for a cluster of your own.
WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": 64 * 2**20, "MALLOC_MMAP_THRESHOLD_": 64 * 2**20}

_LOCAL = re.compile(r"^local(?::(\d+))?$")
_REMOTE = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://\S+$")

ADDRESS_RULE = "give a scheduler address such as tcp://10.0.0.5:8786, or local[:N] for N local worker processes"


def distributed_module():
    """``distributed``, or a one-line error naming the extra that installs it."""
    try:
        import dask.array  # noqa: F401
        import distributed
    except ImportError:
        raise MissingRuntimeError("--dask needs dask and distributed: pip install 'curvae[dask]'") from None
    return distributed


def cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Address:
    """A parsed ``--dask`` value: ``local`` with ``n_workers`` processes, or a scheduler ``address``."""

    local: bool
    n_workers: int = 0
    address: str = ""


def parse_address(spec: str) -> Address:
    """Parse ``local``, ``local:N`` or ``tcp://host:port`` (also tls://, ucx://, ws://; ``host:port`` means tcp)."""
    spec = str(spec).strip()
    m = _LOCAL.match(spec)
    if m:
        n = int(m.group(1)) if m.group(1) else cores()
        if n < 1:
            raise InputError(f"--dask {spec!r} asks for {n} workers; {ADDRESS_RULE}")
        return Address(local=True, n_workers=n)
    if _REMOTE.match(spec):
        return Address(local=False, address=spec)
    if re.match(r"^[\w.\-]+:\d+$", spec):
        return Address(local=False, address=f"tcp://{spec}")
    raise InputError(f"--dask {spec!r} is neither a scheduler address nor local[:N]; {ADDRESS_RULE}")


@dataclass(frozen=True)
class Connection:
    """A connected client, how many workers it has, and the onnxruntime threads each task should use."""

    client: object
    n_workers: int
    ort_threads: int


@contextlib.contextmanager
def connect(spec: str, *, threads: int | None = None, timeout: float = CONNECT_TIMEOUT_S) -> Iterator[Connection]:
    """Connect to the cluster ``spec`` names (starting a LocalCluster for ``local[:N]``), and close it after.

    Parameters
    ----------
    spec : str
        ``local``, ``local:N`` or a scheduler address.
    threads : int, optional
        onnxruntime intra-op threads per task; by default ``cores // N`` on
        ``local:N`` and 1 on an existing cluster.
    timeout : float
        Seconds to wait for the scheduler; past them, :class:`ClusterError`.
    """
    addr = parse_address(spec)
    if threads is not None:
        check_int("threads", threads, what="onnxruntime threads per task")
    distributed = distributed_module()
    with contextlib.ExitStack() as stack:
        if addr.local:
            import dask

            environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_MALLOC}
            try:  # a worker's own log of a failed task is silenced: the client reports it, once, as one line
                with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
                    cluster = distributed.LocalCluster(n_workers=addr.n_workers, threads_per_worker=1,
                                                       processes=True, dashboard_address=":0",
                                                       silence_logs=logging.CRITICAL)
            except Exception as exc:  # distributed raises RuntimeError, OSError, TimeoutError... here
                raise ClusterError(f"could not start a local Dask cluster of {addr.n_workers} worker processes "
                                   f"({type(exc).__name__}: {str(exc)[:160]}); try fewer workers, e.g. "
                                   "--dask local:1") from None
            stack.callback(cluster.close)
            client = distributed.Client(cluster, timeout=timeout)
            ort = threads or max(1, cores() // addr.n_workers)
        else:
            try:
                client = distributed.Client(addr.address, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"could not reach the Dask scheduler at {addr.address!r} within {timeout:g} s "
                                   f"({type(exc).__name__}); check that it runs and the address is right, "
                                   "or use --dask local:N") from None
            ort = threads or 1
        stack.callback(client.close)
        n = len(client.scheduler_info().get("workers", {})) or 1
        yield Connection(client=client, n_workers=n, ort_threads=ort)
