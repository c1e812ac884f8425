"""What every frame source yields (:class:`Frame`) and the interface sources share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded video frame.

    Attributes:
        index: 0-based position of the frame in the stream.
        pts: presentation time in seconds from the start of the stream.
        image: ``(H, W, 3)`` uint8 array, BGR channel order (OpenCV's convention).
    """

    index: int
    pts: float
    image: np.ndarray  # (H, W, 3) uint8 BGR

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            got = f"shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise ValueError(f"Frame.image must be an (H, W, 3) BGR array, got {got}")
        if img.dtype != np.uint8:
            raise ValueError(f"Frame.image must have dtype uint8, got {img.dtype}")

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@runtime_checkable
class FrameSource(Protocol):
    """A single-pass stream of :class:`Frame` objects, used as a context manager.

    Implementations: :class:`rtpose.video.OpenCVSource` (a GPU/DALI source comes later).
    """

    @property
    def fps(self) -> float | None:
        """Nominal frame rate, or None when the source does not report one."""
        ...

    @property
    def frame_count(self) -> int | None:
        """Number of frames the container reports, or None when unknown or live."""
        ...

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the decoded frames."""
        ...

    @property
    def is_live(self) -> bool:
        """True for cameras and streams (frames arrive in real time, no known length)."""
        ...

    def close(self) -> None:
        """Release the decoder; safe to call more than once."""
        ...

    def __iter__(self) -> Iterator[Frame]: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
