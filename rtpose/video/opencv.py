"""Frame source backed by ``cv2.VideoCapture`` (FFmpeg for files, V4L2 for cameras), CPU only."""

from __future__ import annotations

import dataclasses
import glob
import logging
import math
import os
import re
import time
from collections.abc import Iterator
from types import TracebackType

import cv2
import numpy as np

from rtpose.errors import DecodeError
from rtpose.video.frames import Frame

logger = logging.getLogger(__name__)

# URL schemes whose streams are live by default (no known length, real-time arrival).
_LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt", "rtp")
_DEV_VIDEO = re.compile(r"^/dev/video(\d+)$")


def _tolerated_missing(count: int) -> int:
    """Frames that may be missing at the end of a stream before it counts as truncated."""
    # Containers without a frame index (Matroska/WebM, some MPEG-TS) only store a duration, and
    # OpenCV reports round(duration * fps), which can overshoot by a frame or two (more when an
    # audio track outlasts the video); 1% of the length covers that on long files.
    return max(2, count // 100)


class OpenCVSource:
    """Decode a video file or read a camera with OpenCV, yielding :class:`Frame` objects.

    Args:
        uri: a video file path; a camera as an ``int`` device index, a string of digits
            (``"0"``) or a device path (``"/dev/video0"``); or a stream URL (``rtsp://...``),
            passed to OpenCV unchanged.
        live: whether the source is live (a camera or stream). ``None`` decides from ``uri``:
            cameras and ``rtsp``/``rtmp``/``udp``/``srt`` URLs are live, files are not. A live
            source reports no ``frame_count`` and is not checked for truncation.

    Use it as a context manager and iterate it once::

        with OpenCVSource("clip.mp4") as src:
            for frame in src:          # Frame(index, pts, image (H, W, 3) uint8 BGR)
                ...

    A file opened with ``live=True`` is played in real time: frame ``i`` is released ``pts_i``
    seconds after the first (as a camera would deliver it) and stamped with that arrival time.
    Dropping stale frames (latest-frame semantics) is the consumer's job:
    :class:`rtpose.VideoPoseStream` does it for every live source.

    Timestamps: for files, ``pts`` is ``CAP_PROP_POS_MSEC / 1000`` when OpenCV reports a positive
    position, else ``index / fps``. For live sources, ``CAP_PROP_POS_MSEC`` (often a driver
    clock) is taken relative to the first frame, and the monotonic clock since the first frame
    is used when the source reports no position.

    Errors: the constructor fails fast with ``FileNotFoundError`` (no such file or device),
    ``IsADirectoryError``, or :class:`~rtpose.errors.DecodeError` (empty file, still image, not a
    video, zero frames, first frame undecodable, camera that cannot be opened).

    Truncation: OpenCV's ``read()`` returns False both at the end of the stream and when decoding
    fails, so an early end is detected by counting. For a source that is not live and whose
    container reports ``N > 0`` frames, let ``n`` be the frames decoded and
    ``tol = max(2, N // 100)``. The stream is truncated when both

    - ``N - n > tol``, and
    - the decoded frames stop short of the nominal duration: ``N / fps - (last_pts + 1 / fps) >
      tol / fps``;

    then iteration raises :class:`~rtpose.errors.DecodeError` in place of ``StopIteration``,
    after all ``n`` decodable frames were yielded. MP4/MOV and AVI store an exact count (the
    intact sample reports exactly the 230 frames it decodes); ``tol`` absorbs containers that
    only store a duration (Matroska/WebM: OpenCV then reports duration x fps), and the time test
    keeps variable-frame-rate files, whose nominal fps can overstate the count, from being
    flagged. Consequences: losing only the last ``tol`` frames is not reported, and damage that
    the decoder conceals (it yields every frame, some with corrupted pixels) cannot be detected.
    """

    def __init__(self, uri: str | os.PathLike[str] | int, *, live: bool | None = None) -> None:
        self._cap: cv2.VideoCapture | None = None
        self._exhausted = False
        self._pending: Frame | None = None
        self._decoded = 0
        self._last_pts = 0.0
        self._pts_origin_ms: float | None = None
        self._t0 = 0.0

        kind, target, self._name = _resolve(uri)
        if live is None:
            live = kind == "camera" or (
                kind == "url" and str(target).split("://", 1)[0].lower() in _LIVE_SCHEMES
            )
        self._live = bool(live)
        # a file opened live is played in real time: frame i is released at its pts
        self._pace = self._live and kind == "file"
        self._play_start: float | None = None

        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            raise DecodeError(_open_failure_message(kind, target, self._name))
        self._cap = cap

        fps = cap.get(cv2.CAP_PROP_FPS)
        self._fps = float(fps) if math.isfinite(fps) and 0.0 < fps < 10_000.0 else None
        raw_count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        # Images and some streams report nonsense here (-1, 0, or -2**63): keep plausible values.
        self._count = round(float(raw_count)) if math.isfinite(raw_count) and raw_count >= 0 else -1
        if self._count >= 2**31:
            self._count = -1

        ok, image = cap.read()
        if not ok or image is None:
            self.close()
            raise DecodeError(self._first_frame_failure_message(kind))
        self._t0 = time.monotonic()
        self._pending = self._make_frame(image, cap.get(cv2.CAP_PROP_POS_MSEC))
        self._size = self._pending.hw[::-1]  # (width, height), as FrameSource.size
        logger.debug(
            "opened %s with OpenCV backend %s: %dx%d, fps=%s, frame_count=%s, live=%s",
            self._name,
            cap.getBackendName(),
            *self._size,
            self._fps,
            self.frame_count,
            self._live,
        )

    # -- properties -------------------------------------------------------------------------

    @property
    def fps(self) -> float | None:
        """Nominal frame rate reported by the container or camera, or None if unknown."""
        return self._fps

    @property
    def frame_count(self) -> int | None:
        """Frame count reported by the container (may be an estimate, see the class docstring).

        None for live sources and when the container does not report one.
        """
        if self._live or self._count <= 0:
            return None
        return self._count

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the decoded frames (after OpenCV's auto-rotation)."""
        return self._size

    @property
    def is_live(self) -> bool:
        """True for cameras and live streams."""
        return self._live

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Release the decoder. Safe to call more than once."""
        cap, self._cap = self._cap, None
        self._pending = None
        if cap is not None:
            cap.release()

    def __enter__(self) -> OpenCVSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Release the native decoder even when the caller forgot to close (no-op after close()).
        cap = getattr(self, "_cap", None)
        if cap is not None:
            cap.release()

    def __repr__(self) -> str:
        state = "closed" if self._cap is None else "open"
        return (
            f"OpenCVSource({self._name}, {self._size[0]}x{self._size[1]}, fps={self._fps}, "
            f"frame_count={self.frame_count}, live={self._live}, {state})"
        )

    # -- iteration --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        frame = self._next_frame()
        if not self._pace:
            return frame
        # real-time playback: wait for the frame's time, and stamp its arrival then
        now = time.perf_counter()
        if self._play_start is None:
            self._play_start = now - frame.pts
        delay = self._play_start + frame.pts - now
        if delay > 0:
            time.sleep(delay)
        return dataclasses.replace(frame, arrival=time.perf_counter())

    def _next_frame(self) -> Frame:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._cap is None:
            if self._exhausted:
                raise StopIteration
            raise ValueError(f"cannot read from {self._name}: the source is closed")
        ok, image = self._cap.read()
        if not ok or image is None:
            self._exhausted = True
            self.close()
            self._check_complete()
            raise StopIteration
        return self._make_frame(image, self._cap.get(cv2.CAP_PROP_POS_MSEC))

    def _make_frame(self, image: np.ndarray, msec: float) -> Frame:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        index = self._decoded
        frame = Frame(index=index, pts=self._pts(index, msec), image=image)
        self._decoded += 1
        self._last_pts = frame.pts
        return frame

    def _pts(self, index: int, msec: float) -> float:
        has_msec = math.isfinite(msec) and msec > 0
        if not self._live:
            if has_msec:
                return msec / 1000.0
            return index / self._fps if self._fps else 0.0
        # Live: cameras report driver timestamps (e.g. since boot); make them start at 0.
        if index == 0:
            self._pts_origin_ms = msec if has_msec else 0.0
            return 0.0
        if has_msec:
            return (msec - (self._pts_origin_ms or 0.0)) / 1000.0
        return time.monotonic() - self._t0

    # -- errors -----------------------------------------------------------------------------

    def _check_complete(self) -> None:
        """Raise DecodeError if the stream ended well before the container's frame count."""
        count = self.frame_count
        if count is None:
            return
        n = self._decoded
        tolerance = _tolerated_missing(count)
        if count - n <= tolerance:
            if n > count:
                logger.debug("%s: decoded %d frames, container reported %d", self._name, n, count)
            return
        if self._fps is not None:
            expected_end = count / self._fps
            covered = self._last_pts + 1.0 / self._fps
            if expected_end - covered <= tolerance / self._fps:
                # The frames cover the whole duration: the count was an overestimate (VFR).
                logger.debug(
                    "%s: %d of %d reported frames, but they span the full %.3f s; not truncated",
                    self._name,
                    n,
                    count,
                    expected_end,
                )
                return
        duration = f" (~{count / self._fps:.2f} s)" if self._fps else ""
        raise DecodeError(
            f"video {self._name} ended after {n} of the {count} frames its container reports"
            f"{duration}; the last decoded frame is at {self._last_pts:.3f} s. The file is "
            f"truncated or corrupt: the {n} frames already returned are all that could be "
            "decoded. Re-download or re-encode the file to process all of it."
        )

    def _first_frame_failure_message(self, kind: str) -> str:
        if kind == "camera":
            return (
                f"camera {self._name} opened but delivered no frame; it may be in use by another "
                "program, or this user may lack permission to read it (on Linux: the 'video' "
                "group)"
            )
        if self._count == 0:
            return (
                f"video {self._name} contains no frames (the container holds a video stream with "
                "zero frames); there is nothing to process. Check how the file was produced."
            )
        return (
            f"video {self._name} opened, but its first frame could not be decoded: the file is "
            "corrupt, or it uses a codec this OpenCV build cannot decode. Re-encode it (e.g. to "
            "H.264 in MP4) and try again."
        )


def _resolve(uri: str | os.PathLike[str] | int) -> tuple[str, int | str, str]:
    """Classify ``uri`` as ("camera" | "file" | "url", target for cv2.VideoCapture, display name).

    Raises FileNotFoundError / IsADirectoryError / DecodeError for files that cannot be videos.
    """
    if isinstance(uri, bool) or not isinstance(uri, (int, str, os.PathLike)):
        raise TypeError(
            "uri must be a file path (str or os.PathLike), a camera index (int) or a stream URL, "
            f"got {type(uri).__name__}"
        )
    if isinstance(uri, int):
        if uri < 0:
            raise ValueError(f"camera index must be >= 0, got {uri}")
        return "camera", uri, f"camera {uri}"
    # A plain string of digits means a camera index; a Path named "0" stays a file.
    if isinstance(uri, str) and uri.isascii() and uri.isdigit():
        return "camera", int(uri), f"camera {int(uri)}"
    path = os.fspath(uri)
    if not isinstance(path, str):
        raise TypeError(f"uri must be a str path, got {type(path).__name__}")
    if "://" in path:
        return "url", path, f"'{path}'"
    if path.startswith("/dev/"):
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"camera device '{path}' does not exist; cameras present: {_list_cameras()}"
            )
        match = _DEV_VIDEO.match(os.path.realpath(path))
        if match:
            return "camera", int(match.group(1)), f"camera '{path}'"
        return "camera", path, f"camera '{path}'"
    _check_video_file(path)
    return "file", path, f"'{path}'"


def _check_video_file(path: str) -> None:
    """Reject paths that cannot be a video before handing them to OpenCV."""
    if not os.path.exists(path):
        parent = os.path.dirname(os.path.abspath(path))
        where = "" if os.path.isdir(parent) else f" (its directory '{parent}' does not exist)"
        raise FileNotFoundError(
            f"video file '{path}' does not exist{where}; give the path to a video file, a camera "
            "index such as 0, or a stream URL"
        )
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"'{path}' is a directory, not a video file; give the path of one video file inside it"
        )
    if os.path.getsize(path) == 0:
        raise DecodeError(f"video file '{path}' is empty (0 bytes); it holds no video to decode")
    with open(path, "rb") as f:
        magic = f.read(6)
    try:
        # GIF is left to FFmpeg, which reads an animated GIF as a video.
        is_still_image = cv2.haveImageReader(path) and magic not in (b"GIF87a", b"GIF89a")
    except cv2.error:
        is_still_image = False
    if is_still_image:
        raise DecodeError(
            f"'{path}' is a still image, not a video: video sources read video files, cameras "
            "and streams. To estimate poses on one image, load it with cv2.imread() and pass the "
            "array to rtpose.PoseEstimator."
        )


def _open_failure_message(kind: str, target: int | str, name: str) -> str:
    if kind == "camera":
        return (
            f"cannot open {name}: no camera answered at that index or path. Cameras present: "
            f"{_list_cameras()}. Check the device number, that no other program holds it, and "
            "that this user may read it."
        )
    if kind == "url":
        return (
            f"cannot open stream {name}: OpenCV (FFmpeg) could not connect or found no video "
            "stream. Check the URL, the network, and the credentials in it."
        )
    path = str(target)
    hint = (
        " It looks like a text file."
        if _looks_like_text(path)
        else " It is not a video, uses a container or codec this OpenCV build cannot read, or is "
        "damaged (an MP4 cut short before its index, the 'moov' atom, cannot be opened)."
    )
    return (
        f"cannot open '{path}' ({os.path.getsize(path)} bytes) as a video: OpenCV (FFmpeg) found "
        f"no readable video stream in it.{hint} Files that work: MP4, MKV, WebM, AVI or MOV "
        "with a codec FFmpeg decodes (H.264, HEVC, VP8/VP9, AV1, MPEG-4, MJPEG)."
    )


def _looks_like_text(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    return bool(head) and all(b in b"\t\n\r" or 32 <= b < 127 for b in head)


def _list_cameras() -> str:
    devices = sorted(glob.glob("/dev/video*"))
    return ", ".join(devices) if devices else "none found"
