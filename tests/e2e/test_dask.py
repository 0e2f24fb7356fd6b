"""curvae on a real Dask cluster (2 worker processes): the same numbers as in one process, and clear failures."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from curvae import scale
from curvae.cli import main
from curvae.core.errors import BadRowsError
from curvae.runtime import CurveModel

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
sys.path.insert(0, str(GOLDEN.parent))
from results import assert_identical, assert_same_fit, read_outputs  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return CurveModel.load(GOLDEN)


@pytest.fixture(scope="module")
def targets(model):
    noise = np.random.default_rng(0).normal(0, 0.02, (700, model.n_points)).astype(np.float32)
    t = model.sample(700, seed=1) + noise
    t[10, :40] = np.nan  # missing points are fitted too
    return t


def cli(*args, ok: bool = True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def error_line(result) -> str:
    """The one error line (a progress bar may have drawn its label before the failure)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, result.output
    others = [ln for ln in result.output.splitlines() if ln.strip() and not ln.startswith(("Error: ", "fitting",
                                                                                            "encoding", "decoding"))]
    assert not others, result.output
    return errors[0]


CHUNKINGS = {"ragged": (256, 256, 188), "one-row": (1,) * 5 + (695,), "all": (700,)}


@pytest.mark.parametrize("chunks", CHUNKINGS.values(), ids=CHUNKINGS.keys())
def test_encode_decode_fit_over_dask_equal_the_in_process_calls(dask_client, model, targets, chunks):
    x = da.from_array(targets, chunks=(chunks, -1))
    whole = targets[np.isfinite(targets).all(axis=1)]
    xw = da.from_array(whole, chunks=(chunks[:-1] + (chunks[-1] - 1,), -1))
    np.testing.assert_array_equal(scale.encode(model, xw).compute(), model.encode(whole))
    np.testing.assert_array_equal(scale.encode(model, xw, sample=True, seed=3).compute(),
                                  model.encode(whole, sample=True, seed=3))
    z = model.encode(whole)
    np.testing.assert_array_equal(scale.decode(model, da.from_array(z, chunks=(chunks[:-1] + (chunks[-1] - 1,), -1)))
                                  .compute(), model.decode(z))
    res, skipped = scale.fit(model, x).compute()
    assert_same_fit(res, model.fit(targets), ignore=("x_hat_obs",))  # not kept for targets on the model grid
    assert len(skipped) == 0
    fields_ = scale.fit(model, x, n_starts=3, seed=5).fields  # seeded extra starts follow the row, not the chunk
    np.testing.assert_array_equal(fields_["z"].compute(), model.fit(targets, n_starts=3, seed=5).z)


def test_the_model_is_one_key_and_workers_use_the_threads_asked(dask_client, model, targets):
    x = da.from_array(targets, chunks=(100, -1))
    out = scale.decode(model, scale.encode(model, x[11:], threads=1), threads=1)
    graph = dict(out.__dask_graph__())
    assert len([k for k in graph if "CurveModel" in str(k)]) <= 2  # each model once, not once per block
    assert out.compute().shape == (689, 100)

    def session_threads():
        from curvae.runtime.engine.cache import _SESSIONS

        return sorted({s.get_session_options().intra_op_num_threads for pair in _SESSIONS.values() for s in pair})

    assert all(1 in t for t in dask_client.run(session_threads).values())


def test_chunks_along_the_points_are_refused_with_the_fix(model, targets):
    with pytest.raises(Exception, match=r"chunked along its 100 columns .*rechunk\(\{1: -1\}\)"):
        scale.fit(model, da.from_array(targets, chunks=(100, 50)))


def test_a_worker_killed_mid_job_is_retried_and_the_result_is_right(dask_client, model):
    t = model.sample(6000, seed=4)
    expected = model.fit(t, uncertainty=False).z
    pids = dask_client.run(os.getpid)
    fa = scale.fit(model, da.from_array(t, chunks=(100, -1)), uncertainty=False)
    futures = dask_client.compute(list(fa.fields["z"].to_delayed().ravel()))
    while sum(f.done() for f in futures) < 2:
        time.sleep(0.005)
    os.kill(next(iter(pids.values())), signal.SIGKILL)  # a worker process dies with tasks left to run
    assert sum(f.done() for f in futures) < len(futures)
    got = np.concatenate([f.result() for f in futures])
    np.testing.assert_array_equal(got, expected)
    dask_client.wait_for_workers(2, timeout=60)
    assert set(dask_client.run(os.getpid).values()) != set(pids.values())


def test_a_bad_row_in_chunk_k_names_its_global_row(dask_client, model, targets):
    t = targets.copy()
    t[523] = np.nan  # in the third chunk of 200
    with pytest.raises(BadRowsError, match="target 523 has 0 observed points"):
        scale.fit(model, da.from_array(t, chunks=(200, -1))).compute()
    res, skipped = scale.fit(model, da.from_array(t, chunks=(200, -1)), skip_bad_rows=True).compute()
    assert skipped.rows.tolist() == [523] and not res.success[523]
    keep = np.arange(700) != 523
    np.testing.assert_array_equal(res.z[keep], model.fit(t[keep]).z)


@pytest.fixture(scope="module")
def files(tmp_path_factory, targets):
    d = tmp_path_factory.mktemp("dask-files")
    np.save(d / "t.npy", targets)
    zarr.create_array(str(d / "t.zarr"), data=targets, chunks=(128, 100))
    return d


@pytest.mark.parametrize("source,out", [("t.npy", "fit.zarr"), ("t.zarr", "fit.npz")])
def test_cli_fit_with_dask_writes_exactly_what_it_writes_without(dask_client, files, tmp_path, source, out):
    address = dask_client.scheduler.address
    plain = cli("fit", GOLDEN, files / source, "--out", tmp_path / f"plain{Path(out).suffix}")
    spread = cli("fit", GOLDEN, files / source, "--out", tmp_path / out, "--dask", address, "--chunk-rows", 90)
    assert "ran 8 tasks on 2 Dask workers" in spread.output
    assert plain.output.splitlines()[-1].split(":", 1)[1] == spread.output.splitlines()[-1].split(":", 1)[1]
    assert_identical(read_outputs(tmp_path / f"plain{Path(out).suffix}"), read_outputs(tmp_path / out))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({f"plain{Path(out).suffix}", out})


def test_cli_encode_and_decode_with_dask_equal_without(dask_client, files, tmp_path, model, targets):
    address = dask_client.scheduler.address
    whole = targets[np.isfinite(targets).all(axis=1)]
    np.save(files / "c.npy", whole)
    cli("encode", GOLDEN, files / "c.npy", "--out", tmp_path / "z.zarr", "--sample", "--seed", 7, "--dask", address)
    cli("encode", GOLDEN, files / "c.npy", "--out", tmp_path / "z.npy", "--sample", "--seed", 7)
    z = read_outputs(tmp_path / "z.zarr")["z"]
    np.testing.assert_array_equal(z, np.load(tmp_path / "z.npy"))
    cli("decode", GOLDEN, tmp_path / "z.zarr", "--out", tmp_path / "x.npy", "--dask", address, "--chunk-rows", 50)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), model.decode(z))


def test_cli_bad_row_stops_the_job_naming_its_row_or_is_skipped(dask_client, files, tmp_path, targets):
    address = dask_client.scheduler.address
    t = targets.copy()
    t[612, 7] = np.inf
    np.save(tmp_path / "bad.npy", t)
    line = error_line(cli("fit", GOLDEN, tmp_path / "bad.npy", "--out", tmp_path / "fit.zarr", "--dask", address,
                          "--chunk-rows", 100, ok=False))
    assert "targets[612, 7] = inf is not finite" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npy"]  # no half-store, no temporary
    spread = cli("fit", GOLDEN, tmp_path / "bad.npy", "--out", tmp_path / "fit.zarr", "--dask", address,
                 "--skip-bad-rows")
    assert "1 bad row skipped (first: row 612: targets[612, 7] = inf" in spread.output
    cli("fit", GOLDEN, tmp_path / "bad.npy", "--out", tmp_path / "fit.npz", "--skip-bad-rows")
    got, want = read_outputs(tmp_path / "fit.zarr"), read_outputs(tmp_path / "fit.npz")
    assert_identical(got, want)
    assert got["skipped_rows"].tolist() == [612] and got["message"][612].startswith("not fitted: ")


def test_cli_unreadable_zarr_is_one_line(dask_client, tmp_path):
    (tmp_path / "t.zarr").mkdir()
    (tmp_path / "t.zarr" / ".zarray").write_text("{broken")
    line = error_line(cli("fit", GOLDEN, tmp_path / "t.zarr", "--out", tmp_path / "fit.zarr", "--dask",
                          dask_client.scheduler.address, ok=False))
    assert "is not a readable Zarr store" in line


def test_an_unreachable_scheduler_is_one_line_within_seconds(tmp_path, files):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    t0 = time.perf_counter()
    line = error_line(cli("fit", GOLDEN, files / "t.npy", "--out", tmp_path / "fit.zarr", "--dask",
                          f"tcp://127.0.0.1:{port}", ok=False))
    assert time.perf_counter() - t0 < 20
    assert f"could not reach the Dask scheduler at 'tcp://127.0.0.1:{port}'" in line
    assert list(tmp_path.iterdir()) == []
    assert "neither a scheduler address nor local[:N]" in error_line(
        cli("fit", GOLDEN, files / "t.npy", "--out", tmp_path / "f.zarr", "--dask", "local:two", ok=False))


def test_cli_starts_a_local_cluster_of_its_own(files, tmp_path):
    out = cli("fit", GOLDEN, files / "t.npy", "--out", tmp_path / "fit.zarr", "--dask", "local:1",
              "--no-uncertainty")
    assert "on 1 Dask worker;" in out.output
    cli("fit", GOLDEN, files / "t.npy", "--out", tmp_path / "fit.npz", "--no-uncertainty")
    assert_identical(read_outputs(tmp_path / "fit.zarr"), read_outputs(tmp_path / "fit.npz"))


def test_sigterm_cancels_the_job_and_leaves_nothing(tmp_path, model):
    import subprocess
    import sys

    np.save(tmp_path / "t.npy", np.tile(model.sample(1000, seed=2), (300, 1)))  # long enough to be stopped
    proc = subprocess.Popen([sys.executable, "-m", "curvae.cli", "fit", str(GOLDEN), str(tmp_path / "t.npy"),
                             "--out", str(tmp_path / "fit.zarr"), "--dask", "local:1", "--chunk-rows", "2000"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".fit.zarr.") for p in tmp_path.iterdir()):  # the job has started writing
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "Error: interrupted; nothing partial was written" in out and "Traceback" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.npy"]
