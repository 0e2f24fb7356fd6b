"""``curvae train --nproc N``: start N ranks of the same command on this machine, as torchrun would.

Each rank is ``python -m curvae <the same arguments>`` with torchrun's
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT`` on a free local port). Rank 0's output is shown; the others'
is kept back. When a rank fails, the others are stopped at once and the
failing rank's one-line error is the job's; Ctrl-C or SIGTERM stops them all.
For several machines, use torchrun itself (``docs/scale.md``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from curvae.core.errors import TrainingError


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _error_line(path: str) -> str:
    """The rank's one-line error, or its last line of output."""
    with open(path, errors="replace") as fh:
        lines = [ln.strip() for ln in fh.read().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    return errors[0][len("Error: "):] if errors else (lines[-1] if lines else "it exited without a message")


def launch(argv: list[str], nproc: int, *, timeout_s: float | None = None) -> None:
    """Run ``curvae <argv>`` as ``nproc`` ranks; returns when all succeeded, else raises :class:`TrainingError`."""
    port = free_port()
    logs = [tempfile.NamedTemporaryFile(prefix=f"curvae-rank{r}-", suffix=".log", delete=False) for r in range(nproc)]
    procs: list[subprocess.Popen] = []
    try:
        for r in range(nproc):
            env = {**os.environ, "RANK": str(r), "WORLD_SIZE": str(nproc), "LOCAL_RANK": str(r),
                   "LOCAL_WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
            procs.append(subprocess.Popen([sys.executable, "-m", "curvae", *argv], env=env,
                                          stdout=None if r == 0 else subprocess.DEVNULL, stderr=logs[r]))
        failed = _wait(procs, timeout_s)
    except BaseException:
        _stop(procs)
        raise
    finally:
        for fh in logs:
            fh.close()
    try:
        if failed is not None:
            rank, code = failed
            why = _error_line(logs[rank].name)
            if code < 0 and why == "it exited without a message":
                why = f"killed by signal {-code}"
            raise TrainingError(f"rank {rank} of {nproc} failed (exit {code}): {why}")
    finally:
        for fh in logs:
            with contextlib.suppress(OSError):
                os.unlink(fh.name)


def _wait(procs: list[subprocess.Popen], timeout_s: float | None) -> tuple[int, int] | None:
    """Wait for every rank; at the first failure stop the others and return (rank, exit code)."""
    start = time.monotonic()
    while True:
        codes = [p.poll() for p in procs]
        bad = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
        if bad:
            _stop(procs)
            # The first rank to fail on its own, not one stopped by the others' failure.
            return min(bad, key=lambda rc: (rc[1] in (-signal.SIGTERM, -signal.SIGKILL), rc[0]))
        if all(c == 0 for c in codes):
            return None
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            _stop(procs)
            return 0, -1
        time.sleep(0.05)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        if p.poll() is None:
            p.kill()
            p.wait()
