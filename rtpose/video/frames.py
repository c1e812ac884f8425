"""What every frame source yields (:class:`Frame`) and the interface sources share."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

ChannelOrder = Literal["bgr", "rgb"]


@dataclass(frozen=True)
class Frame:
    """One decoded video frame, in host or GPU memory.

    Attributes:
        index: 0-based position of the frame in the stream.
        pts: presentation time in seconds from the start of the stream.
        image: ``(H, W, 3)`` uint8: a numpy array, or a GPU array (cupy, DALI, anything with
            ``__cuda_array_interface__`` or a CUDA ``__dlpack__``) when decoded on the GPU.
        channel_order: ``"bgr"`` (OpenCV) or ``"rgb"`` (DALI) channel order of ``image``.
        arrival: ``time.perf_counter()`` when the frame was decoded or received: the start of
            the latency that :class:`rtpose.VideoPoseStream` reports.
    """

    index: int
    pts: float
    image: Any  # (H, W, 3) uint8
    channel_order: ChannelOrder = "bgr"
    arrival: float = field(default_factory=time.perf_counter, compare=False)

    def __post_init__(self) -> None:
        img = self.image
        if self.channel_order not in ("bgr", "rgb"):
            raise ValueError(
                f"Frame.channel_order must be 'bgr' or 'rgb', got {self.channel_order!r}"
            )
        shape = getattr(img, "shape", None)
        if not isinstance(img, np.ndarray) and not _is_gpu_array(img):
            raise ValueError(
                "Frame.image must be an (H, W, 3) uint8 numpy or GPU array, got "
                f"{type(img).__name__}"
            )
        if shape is None or len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"Frame.image must be an (H, W, 3) array, got shape {shape}")
        if np.dtype(img.dtype) != np.uint8:
            raise ValueError(f"Frame.image must have dtype uint8, got {img.dtype}")

    @property
    def hw(self) -> tuple[int, int]:
        """``(height, width)`` in pixels, the order of ``image.shape`` and of every other image
        size in rtpose (there is deliberately no ``size``, whose order a reader would guess)."""
        return int(self.image.shape[0]), int(self.image.shape[1])

    @property
    def on_gpu(self) -> bool:
        """True when ``image`` is in GPU memory."""
        return not isinstance(self.image, np.ndarray)

    def to_host_bgr(self) -> np.ndarray:
        """``image`` as an (H, W, 3) uint8 BGR numpy array (a device-to-host copy for GPU
        frames, a channel swap for RGB ones; the BGR host image itself otherwise)."""
        img = self.image
        if self.on_gpu:
            from rtpose.cuda.arrays import to_host

            img = to_host(img)
        if self.channel_order == "rgb":
            img = np.ascontiguousarray(img[..., ::-1])
        return img


def _is_gpu_array(obj: object) -> bool:
    from rtpose.cuda.arrays import is_device_array

    return is_device_array(obj)


@runtime_checkable
class FrameSource(Protocol):
    """A single-pass stream of :class:`Frame` objects, used as a context manager.

    Implementations: :class:`rtpose.video.OpenCVSource`, :class:`rtpose.video.DALISource`,
    :class:`rtpose.video.ArraySource`.
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
