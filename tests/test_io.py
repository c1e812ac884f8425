"""rtpose._io: outputs appear complete under their final name or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from rtpose._io import (
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    commit,
    temp_sibling,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_success_renames_the_temporary_file_into_place(tmp_path):
    dest = tmp_path / "sub" / "out.bin"  # the directory is created
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".out.bin.")
        assert tmp.name.endswith(".part") and tmp.exists() and not dest.exists()
        tmp.write_bytes(b"payload")
    assert dest.read_bytes() == b"payload"
    assert [p.name for p in dest.parent.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_an_exception_leaves_no_file_and_keeps_the_old_target(tmp_path, exc):
    fresh = tmp_path / "fresh.json"
    with pytest.raises(exc), atomic_path(fresh) as tmp:
        tmp.write_text("half")
        raise exc
    assert list(tmp_path.iterdir()) == []

    old = tmp_path / "old.json"
    old.write_text("previous")
    with pytest.raises(exc), atomic_open(old) as f:
        f.write("half")
        raise exc
    assert old.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["old.json"]


def test_mode_follows_the_umask_not_mkstemp(tmp_path, umask_022):
    for write in (
        lambda p: atomic_write_text(p, "x"),
        lambda p: atomic_write_bytes(p, memoryview(b"x")),
    ):
        dest = tmp_path / "f"
        write(dest)
        assert _mode(dest) == 0o644  # mkstemp would give 0o600
        dest.unlink()
    with atomic_path(tmp_path / "g") as tmp:
        assert _mode(tmp) == 0o644


def test_an_existing_target_is_replaced_atomically(tmp_path):
    dest = tmp_path / "engine.plan"
    dest.write_bytes(b"old")
    with open(dest, "rb") as reader:  # a reader of the old file keeps the old content
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"new")
            assert dest.read_bytes() == b"old"  # untouched until the block ends
        assert reader.read() == b"old"
    assert dest.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["engine.plan"]


def test_text_and_bytes_writers(tmp_path):
    assert atomic_write_text(tmp_path / "a.txt", "héllo\n") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_bytes() == "héllo\n".encode()
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with atomic_open(tmp_path / "c.bin", "wb") as f:
        f.write(b"abc")
    assert (tmp_path / "c.bin").read_bytes() == b"abc"
    with (
        pytest.raises(ValueError, match="mode must be 'w' or 'wb', got 'a'"),
        atomic_open(tmp_path / "d", "a"),
    ):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "c.bin"]


def test_temp_sibling_names_are_unique_and_keep_the_suffix(tmp_path):
    names = {temp_sibling(tmp_path / "v.mp4", suffix=".part.mp4") for _ in range(50)}
    assert len(names) == 50
    assert all(n.name.startswith(".v.mp4.") and n.suffix == ".mp4" for n in names)


def test_a_failed_commit_removes_the_temporary_file(tmp_path):
    target = tmp_path / "dir"
    target.mkdir()
    (target / "keep").write_text("x")  # a non-empty directory cannot be replaced by a file
    tmp = temp_sibling(target)
    with pytest.raises(OSError):
        commit(tmp, target)
    assert not tmp.exists() and (target / "keep").exists()


def test_exported_onnx_models_are_not_private_to_their_owner(tmp_path, umask_022):
    # The export and the precision passes used mkstemp's 0600 file as the output itself, so a
    # shared model cache came out unreadable for other users.
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    from rtpose.deploy.onnx import export_onnx
    from rtpose.deploy.onnx_files import save_atomic

    path = export_onnx(torch.nn.Conv2d(3, 2, 1), tmp_path / "m.onnx", sample_shape=(1, 3, 8, 8))
    assert _mode(path) == 0o644
    copy = save_atomic(onnx.load(str(path)), tmp_path / "copy.onnx")
    assert _mode(copy) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.onnx", "m.onnx"]
