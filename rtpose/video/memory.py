"""A frame source over images already in memory (tests, benchmarks, synthetic scenes)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from types import TracebackType

import numpy as np

from rtpose.video.frames import ChannelOrder, Frame


class ArraySource:
    """Yields the given ``(H, W, 3)`` uint8 images as :class:`Frame` objects.

    Args:
        images: the frames (numpy or GPU arrays), all of one size.
        fps: frame rate used for ``pts = index / fps``.
        live: play them as a live source: frame ``i`` is released at ``i / fps`` seconds after
            iteration starts (a consumer that falls behind gets the frames late, as from a camera;
            the stream drops stale ones).
        repeat: iterate the images this many times (indices keep counting).
        channel_order: channel order of the images.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        *,
        fps: float = 30.0,
        live: bool = False,
        repeat: int = 1,
        channel_order: ChannelOrder = "bgr",
    ) -> None:
        if len(images) == 0:
            raise ValueError("ArraySource needs at least one image")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        shapes = {tuple(img.shape) for img in images}
        if len(shapes) != 1:
            raise ValueError(f"ArraySource images must all have one shape, got {sorted(shapes)}")
        # validate the first image the way every frame will be validated
        Frame(0, 0.0, images[0], channel_order)
        self._images = list(images)
        self._fps = float(fps)
        self._live = bool(live)
        self._repeat = int(repeat)
        self._channel_order = channel_order
        self._closed = False
        self._started = False

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        return None if self._live else len(self._images) * self._repeat

    @property
    def size(self) -> tuple[int, int]:
        h, w = self._images[0].shape[:2]
        return int(w), int(h)

    @property
    def is_live(self) -> bool:
        return self._live

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> ArraySource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise RuntimeError("an ArraySource can be iterated only once")
        self._started = True
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        start = time.perf_counter()
        n = len(self._images)
        for i in range(n * self._repeat):
            if self._closed:
                return
            pts = i / self._fps
            if self._live:
                delay = start + pts - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            yield Frame(i, pts, self._images[i % n], self._channel_order)
