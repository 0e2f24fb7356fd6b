"""Writes are all or nothing: a writer that fails midway leaves the old file and no temporary."""

from __future__ import annotations

import numpy as np
import pytest

from curvae.core.atomic import (
    NpzStreamWriter,
    atomic_dir,
    check_can_write,
    save_npy,
    write_bytes,
)
from curvae.core.errors import OutputExistsError


def test_failed_file_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "codes.npy"
    save_npy(target, np.arange(4.0))
    old = target.read_bytes()

    import os

    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        save_npy(target, np.zeros(1000))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["codes.npy"]


def test_failed_folder_build_keeps_the_old_folder(tmp_path):
    out = tmp_path / "bundle"
    with atomic_dir(out) as tmp:
        write_bytes(tmp / "a.txt", b"old")
    with pytest.raises(RuntimeError, match="midway"), atomic_dir(out, force=True) as tmp:
        write_bytes(tmp / "a.txt", b"new")
        raise RuntimeError("midway")
    assert (out / "a.txt").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_forced_replacement_is_whole(tmp_path):
    out = tmp_path / "bundle"
    with atomic_dir(out) as tmp:
        write_bytes(tmp / "stale.txt", b"x")
    with atomic_dir(out, force=True) as tmp:
        write_bytes(tmp / "fresh.txt", b"y")
    assert [p.name for p in out.iterdir()] == ["fresh.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_existing_output_needs_force(tmp_path):
    (tmp_path / "f.npy").write_bytes(b"")
    with pytest.raises(OutputExistsError, match="already exists; .* --force"):
        check_can_write(tmp_path / "f.npy", force=False)
    check_can_write(tmp_path / "f.npy", force=True)


def test_written_files_have_ordinary_permissions(tmp_path):
    save_npy(tmp_path / "a.npy", np.zeros(2))
    with atomic_dir(tmp_path / "d") as tmp:
        write_bytes(tmp / "x", b"1")
    assert (tmp_path / "a.npy").stat().st_mode & 0o044  # readable by group/others under a usual umask
    assert (tmp_path / "d").stat().st_mode & 0o055


def test_stream_writer_discard_leaves_nothing(tmp_path):
    w = NpzStreamWriter(tmp_path / "fit.npz", {"z": ((3, 2), "float32")})
    w.append("z", np.zeros((2, 2)))
    w.discard()
    assert list(tmp_path.iterdir()) == []
