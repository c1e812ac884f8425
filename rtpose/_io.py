"""Atomic file outputs: a result appears under its final name complete, or not at all.

Everything rtpose writes for later use (exported ONNX models, TensorRT engines and manifests,
timing caches, downloaded assets, annotated videos, JSON reports) is first written to a hidden
temporary file in the destination's directory and then renamed over the destination. The rename
is atomic on POSIX and Windows as long as both names are on one file system, which a sibling
always is: a reader sees the old file or the new one, never half of one, and an interrupted
write (exception, Ctrl-C, a failed check) leaves the destination as it was and no temporary
file behind.

The temporary file is created with the mode a plain ``open(path, "w")`` would give (0666 minus
the umask, usually 0644), not :func:`tempfile.mkstemp`'s 0600, because the rename carries the
mode over to the result: an engine or model cache must stay readable by the other users of a
shared machine.

- :func:`atomic_path`: a context manager yielding the temporary path, for writers that take a
  file name (``torch.save``, ``onnx.save``, ``torch.onnx.export``).
- :func:`atomic_open`, :func:`atomic_write_text`, :func:`atomic_write_bytes`: the same for a file
  object, a string and bytes.
- :func:`temp_sibling`, :func:`commit`, :func:`discard`: the three steps, for an output whose
  lifetime is not one ``with`` block (a video writer closed later).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

__all__ = [
    "atomic_open",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "commit",
    "discard",
    "temp_sibling",
]

_ATTEMPTS = 100
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def temp_sibling(path: str | os.PathLike, *, suffix: str = ".part") -> Path:
    """Create an empty, new, hidden file next to ``path`` and return its path.

    The name is ``.{name}.{8 random hex digits}{suffix}`` in ``path``'s directory (which must
    exist); keep the extension in ``suffix`` when the writer picks a format from it (e.g.
    ``".part.mp4"`` for OpenCV). It is created exclusively, so concurrent writers of the same
    destination never share a temporary file, with mode 0666 minus the umask.
    """
    path = Path(path)
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(tmp, _FLAGS, 0o666)  # the umask applies, as for open(path, "w")
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(  # pragma: no cover - 100 collisions of 32 random bits
        f"could not create a temporary file next to {path} after {_ATTEMPTS} attempts"
    )


def discard(tmp: str | os.PathLike) -> None:
    """Delete a temporary file; nothing happens if it is already gone."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(tmp)


def commit(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename the finished temporary file ``tmp`` over ``path`` (atomic); returns ``path``.

    If the rename fails (e.g. ``path`` is a directory), ``tmp`` is deleted and the error raised.
    """
    try:
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it becomes ``path`` when the block ends.

    ``path``'s directory is created if missing. On a clean exit the temporary file is renamed
    over ``path`` (replacing any file there); on any exception, ``KeyboardInterrupt`` included,
    it is deleted and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path, suffix=suffix)
    try:
        yield tmp
    except BaseException:
        discard(tmp)
        raise
    commit(tmp, path)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, mode: Literal["w", "wb"] = "w", *, encoding: str = "utf-8"
) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing (see :func:`atomic_path`).

    The file is closed, then renamed over ``path``, when the block ends without an exception.
    ``encoding`` applies to text mode (``"w"``) only.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        if mode == "w":
            with open(tmp, "w", encoding=encoding) as f:
                yield f
        else:
            with open(tmp, "wb") as f:
                yield f


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)
