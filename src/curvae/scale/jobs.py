"""``curvae encode | decode | fit --dask``: the file commands, run on a Dask cluster.

The input (``.npy`` read at offsets, ``.zarr``, or a small ``.npz``/``.csv``)
becomes a Dask array of row blocks that each task reads where it runs; each
task runs the runtime's chunk kernel on its block. A ``.zarr`` output is
written by the tasks themselves into a temporary store, renamed on success;
a ``.npz``/``.npy`` output is written by the client in row order, with a
bounded number of blocks in flight. Either way the client keeps only
counters, so its memory does not grow with the number of rows.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from curvae.core.errors import ClusterError, CurvaeError, InputError
from curvae.core.seeding import entropy
from curvae.io.chunks import (
    FitTally,
    column,
    decode_chunk,
    emulate_chunk,
    encode_chunk,
    fit_chunk,
    fit_columns_for,
    one_seed,
    param_names_for,
)
from curvae.io.files import check_chunk, emulate_specs
from curvae.io.stores import (
    Finishing,
    ZarrSink,
    ZarrSource,
    check_output,
    is_zarr,
    open_rows,
    open_sink,
)
from curvae.runtime.model import CurveModel
from curvae.scale.arrays import _da, block_start, model_key
from curvae.scale.cluster import Connection, connect

Progress = Callable[[int, int], None]

#: Most rows per task by default; fewer when that leaves too few tasks to keep every worker busy.
MAX_TASK_ROWS = 65536
#: The same when every result passes through the client (a .npz/.npy output), which holds a few blocks at once.
MAX_CLIENT_ROWS = 16384


def task_rows(n: int, n_workers: int, source: Any = None, *, through_client: bool = False) -> int:
    """Rows per task: about 4 tasks per worker, at most :data:`MAX_TASK_ROWS` (:data:`MAX_CLIENT_ROWS` when results
    go through the client), whole Zarr chunks where read from one."""
    cap = MAX_CLIENT_ROWS if through_client else MAX_TASK_ROWS
    rows = max(1, min(cap, math.ceil(n / (4 * max(n_workers, 1)))))
    if isinstance(source, ZarrSource) and source.chunks[0] < n:
        rows = math.ceil(rows / source.chunks[0]) * source.chunks[0]
    return rows


class _Rows:
    """A row source as Dask's ``from_array`` wants it: shape, dtype, ndim and 2-D slicing."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.shape = tuple(source.shape)
        self.dtype = np.dtype(source.dtype)
        self.ndim = 2

    def __getitem__(self, key: tuple) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        start, stop, _ = rows.indices(self.shape[0])
        return np.asarray(self.source.read(start, stop))[:, cols]


def rows_array(source: Any, rows: int):
    """The Dask array of ``source``'s rows in blocks of ``rows`` (read by each task where it runs)."""
    from dask.base import tokenize

    _, da = _da()
    name = "curvae-rows-" + tokenize(getattr(source, "path", None) or getattr(source, "_path", None) or id(source),
                                     source.shape, str(source.dtype), rows)
    return da.from_array(_Rows(source), chunks=(rows, source.shape[1]), lock=False, asarray=True, name=name,
                         meta=np.empty((0, 0), source.dtype))


def _emit(columns: dict[str, np.ndarray], start: int, sink: ZarrSink | None, extra: Any = None) -> np.ndarray:
    """Write a block's columns where the task runs (``.zarr``) or hand them back (``.npz``/``.npy``)."""
    n_rows = len(next(iter(columns.values())))
    if sink is not None:
        sink.write_block(start, columns)
        columns = {}
    out = np.empty((1,), object)
    out[0] = (start, n_rows, columns, extra)
    return out


def _encode_task(x, model: CurveModel, sample: bool, seed: int, sink, block_info=None):
    start = block_start(block_info)
    return _emit({"z": encode_chunk(model, x, start=start, sample=sample, seed=seed)}, start, sink)


def _decode_task(z, model: CurveModel, sink, block_info=None):
    start = block_start(block_info)
    return _emit({"curves": decode_chunk(model, z, start=start)}, start, sink)


def _emulate_task(theta, model: CurveModel, extrapolate: bool, names: tuple[str, ...], sink, block_info=None):
    start = block_start(block_info)
    got = emulate_chunk(model, theta, start=start, extrapolate=extrapolate)
    return _emit({k: got[k] for k in names}, start, sink, int(got["outside"].sum()))


def _fit_task(x, model: CurveModel, skip_bad_rows: bool, fit_kw: dict, names: tuple[str, ...], sink,
              block_info=None):
    start = block_start(block_info)
    res, skipped = fit_chunk(model, x, start=start, skip_bad_rows=skip_bad_rows, **fit_kw)
    return _emit({name: column(res, name) for name in names}, start, sink, FitTally().add(res, skipped))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(conn: Connection, tasks, sink, *, ordered: bool, total: int, progress: Progress | None,
         on_block: Callable[[Any], None]) -> None:
    """Compute one task per block, write or collect what each returns, commit the sink; discard it on failure.

    ``ordered`` (a ``.npz``/``.npy`` sink): blocks are written in row order, at
    most ``2 × workers + 1`` in flight, so the client holds a bounded number.
    Otherwise (a ``.zarr`` the tasks write) every block is submitted at once
    and only its small summary comes back.
    """
    from distributed import as_completed

    delayed = list(tasks.to_delayed().ravel())
    client = conn.client
    pending: dict[int, Any] = {}
    done = 0

    def finished(n_rows: int, extra: Any) -> None:
        nonlocal done
        on_block(extra)
        done += n_rows
        if progress is not None:
            progress(done, total)

    try:
        if ordered:
            window = 2 * conn.n_workers + 1  # enough to keep every worker busy while the client writes
            for i in range(len(delayed)):
                for j in range(i, min(i + window, len(delayed))):
                    if j not in pending:
                        pending[j] = client.compute(delayed[j])
                start, n_rows, columns, extra = pending.pop(i).result()[0]
                sink.write_block(start, columns)
                finished(n_rows, extra)
        else:
            pending = dict(enumerate(client.compute(delayed)))
            for fut in as_completed(list(pending.values())):
                _, n_rows, _, extra = fut.result()[0]
                finished(n_rows, extra)
        sink.commit()
    except BaseException as exc:
        _cancel(client, list(pending.values()))
        sink.discard()
        if isinstance(exc, (CurvaeError, KeyboardInterrupt)):
            raise
        if isinstance(exc, (OSError, TimeoutError)) or type(exc).__module__.startswith("distributed"):
            raise ClusterError(f"the Dask job failed: {type(exc).__name__}: {str(exc)[:200]}; nothing was "
                               "written. Check the workers' logs (a worker that died more than "
                               "distributed.scheduler.allowed-failures times stops the job)") from None
        raise


def _executing(dask_worker) -> list:
    """The keys a worker is running now (called on each worker through ``client.run``)."""
    return [ts.key for ts in dask_worker.state.executing]


def _cancel(client, futures: list, timeout: float = 60.0) -> None:
    """Cancel ``futures`` and wait until no worker still runs one of them: a running task cannot be stopped,
    and it would otherwise write into a store that is being removed."""
    import time

    keys = {f.key for f in futures}
    client.cancel(futures)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            running = {k for ks in client.run(_executing).values() for k in ks}
        except Exception:  # the cluster is gone: nothing runs any more
            return
        if not running & keys:
            return
        time.sleep(0.05)


def _worker_memory(conn: Connection) -> list[float]:
    try:
        return sorted(conn.client.run(_peak_rss_mib).values())
    except Exception:  # a worker that left: its figure is simply missing
        return []


def _source(path, n_cols: int, what: str, min_cols: int = 2):
    src = open_rows(path, n_cols=n_cols, what=what, min_cols=min_cols)
    note = None
    if isinstance(src, ZarrSource) and src.chunks[1] < src.shape[1]:
        note = (f"{path} is chunked along its {src.shape[1]} columns (chunks of {src.chunks[1]}); "
                "each task reads whole rows across them")
    return src, note


def _job(model: CurveModel, src: Any, dest: Path, specs: dict, task: Callable, task_kw: dict, *, dask: str,
         chunk_rows: int | None, threads: int | None, progress: Progress | None,
         on_block: Callable[[Any], None] = lambda _: None, before_commit: Callable[[Any], None] = lambda _: None
         ) -> dict[str, Any]:
    """Connect, cut ``src`` into tasks of rows, run ``task`` on each, write ``specs`` into ``dest``; the facts of the run.

    ``before_commit(sink)`` writes what belongs to the whole set just before the output is renamed into place.
    """
    _, da = _da()
    with connect(dask, threads=threads) as conn:
        n = src.shape[0]
        rows = check_chunk(chunk_rows) if chunk_rows else \
            task_rows(n, conn.n_workers, src, through_client=not is_zarr(dest))
        x = rows_array(src, rows)
        sink = open_sink(dest, specs, chunk_rows=rows)
        on_workers = isinstance(sink, ZarrSink)  # a .zarr is written by the tasks, anything else by the client
        tasks = da.map_blocks(task, x, model=model_key(model, conn.ort_threads), sink=sink if on_workers else None,
                              **task_kw, chunks=(tuple(1 for _ in x.chunks[0]),), drop_axis=1, dtype=object,
                              meta=np.empty((0,), object))
        _run(conn, tasks, Finishing(sink, lambda: before_commit(sink)), ordered=not on_workers, total=n,
             progress=progress, on_block=on_block)
        return {"tasks": len(x.chunks[0]), "workers": conn.n_workers, "worker_peak_rss_mib": _worker_memory(conn)}


def encode_job(model: CurveModel, curves, out, *, dask: str, sample: bool = False, seed: int | None = None,
               force: bool = False, chunk_rows: int | None = None, threads: int | None = None,
               progress: Progress | None = None) -> dict[str, Any]:
    """``curvae encode --dask``: the codes of every curve, shape (n, latent_dim), as in one process."""
    dest = check_output(out, force=force)
    src, note = _source(curves, model.n_points, "curves")
    shape = (src.shape[0], model.latent_dim)
    run = _job(model, src, dest, {"z": (shape, "float32")}, _encode_task,
               {"sample": bool(sample), "seed": entropy(seed) if sample else 0}, dask=dask, chunk_rows=chunk_rows,
               threads=threads, progress=progress)
    return {"shape": shape, "note": note, **run}


def decode_job(model: CurveModel, codes, out, *, dask: str, force: bool = False, chunk_rows: int | None = None,
               threads: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """``curvae decode --dask``: the curves of every code, shape (n, n_points), as in one process."""
    dest = check_output(out, force=force)
    src, note = _source(codes, model.latent_dim, "codes", min_cols=1)
    shape = (src.shape[0], model.n_points)
    run = _job(model, src, dest, {"curves": (shape, "float32")}, _decode_task, {}, dask=dask, chunk_rows=chunk_rows,
               threads=threads, progress=progress)
    return {"shape": shape, "note": note, **run}


def emulate_job(model: CurveModel, params, out, *, dask: str, extrapolate: bool = False, force: bool = False,
                chunk_rows: int | None = None, threads: int | None = None,
                progress: Progress | None = None) -> dict[str, Any]:
    """``curvae emulate --dask``: the curves of every parameter row, as in one process."""
    k = model._need_emulator().record.k
    dest = check_output(out, force=force)
    src, note = _source(params, k, "parameters", min_cols=1)
    specs = emulate_specs(model, src.shape[0], dest)
    outside = [0]
    run = _job(model, src, dest, specs, _emulate_task, {"extrapolate": bool(extrapolate), "names": tuple(specs)},
               dask=dask, chunk_rows=chunk_rows, threads=threads, progress=progress,
               on_block=lambda count: outside.__setitem__(0, outside[0] + count))
    return {"shape": specs["curves"][0], "note": note, "outside": outside[0], **run}


def fit_job(model: CurveModel, targets, out, *, dask: str, force: bool = False, chunk_rows: int | None = None,
            threads: int | None = None, progress: Progress | None = None, skip_bad_rows: bool = False,
            **fit_kw: Any) -> dict[str, Any]:
    """``curvae fit --dask``: every target on the model grid fitted on the cluster, written as in one process.

    A ``.zarr`` output is written by the workers; a ``.npz`` passes every
    result through the client, in row order, with at most ``2 × workers + 1``
    blocks of at most 16,384 rows in flight.

    Returns
    -------
    dict
        The summary of :func:`curvae.io.files.fit_file`, with ``tasks``,
        ``workers`` and each worker's peak RSS (``worker_peak_rss_mib``).
    """
    dest = check_output(out, force=force, allowed=(".npz", ".zarr"))
    if fit_kw.get("grid") is not None or Path(targets).suffix.lower() not in (".npy", ".zarr", ".npz", ".csv"):
        raise InputError("--dask fits targets on the model grid (.npy or .zarr); targets on grids of their own "
                         "are read whole and fitted in one process: drop --dask")
    src, note = _source(targets, model.n_points, "targets")
    kw = one_seed({k: v for k, v in fit_kw.items() if k not in ("grid", "clip_range", "columns")})
    specs = fit_columns_for(model, src.shape[0], kw)
    tally = FitTally()
    run = _job(model, src, dest, specs, _fit_task,
               {"skip_bad_rows": skip_bad_rows, "fit_kw": kw, "names": tuple(k for k in specs if k != "ood_threshold")},
               dask=dask, chunk_rows=chunk_rows, threads=threads, progress=progress, on_block=tally.merge,
               before_commit=lambda sink: tally.finish(sink, specs, skip_bad_rows, param_names_for(model, kw)))
    return {**tally.summary(), "kind": "model grid", "header": None, "dropped": 0, "note": note, **run}
