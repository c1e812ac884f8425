"""Frame sources: video files, cameras and streams, decoded into :class:`Frame` objects.

Today every source is :class:`OpenCVSource` (CPU decoding through OpenCV/FFmpeg); GPU decoding
with NVIDIA DALI is planned and will be chosen by :func:`open_source` with ``device="gpu"``.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

from rtpose.errors import BackendUnavailableError
from rtpose.video.frames import Frame, FrameSource
from rtpose.video.memory import ArraySource
from rtpose.video.opencv import OpenCVSource

__all__ = ["ArraySource", "Frame", "FrameSource", "OpenCVSource", "open_source"]

logger = logging.getLogger(__name__)

_DEVICES = ("cpu", "gpu", "auto")


def open_source(
    uri: str | os.PathLike[str] | int,
    *,
    device: Literal["cpu", "gpu", "auto"] = "auto",
    live: bool | None = None,
) -> FrameSource:
    """Open a video file, camera or stream for decoding.

    Args:
        uri: file path, camera index (``0``, ``"0"``, ``"/dev/video0"``) or stream URL.
        device: where to decode. ``"cpu"`` uses OpenCV; ``"gpu"`` is not available in this build
            yet; ``"auto"`` currently means ``"cpu"``.
        live: see :class:`OpenCVSource`; ``None`` decides from ``uri``.

    Returns:
        An open source; use it as a context manager and iterate it for :class:`Frame` objects.

    Raises:
        ValueError: unknown ``device``.
        BackendUnavailableError: ``device="gpu"``.
        FileNotFoundError, IsADirectoryError, DecodeError: see :class:`OpenCVSource`.
    """
    if device not in _DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, _DEVICES))}, got {device!r}")
    if device == "gpu":
        raise BackendUnavailableError(
            "GPU video decoding is not available in this build of rtpose yet (NVIDIA DALI support "
            "is planned); decode on the CPU with device='cpu' (or device='auto')"
        )
    if device == "auto":
        logger.debug("open_source(device='auto'): decoding %r on the CPU with OpenCV", uri)
    return OpenCVSource(uri, live=live)
