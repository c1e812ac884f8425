"""Drawing poses on frames and writing annotated video.

Colours follow the usual convention of pose visualisers: left-side limbs and keypoints in one
colour, right-side in another, centre-line ones (nose, spine, head) in a third; boxes are coloured
by track id so that one person keeps one colour across frames.
"""

from __future__ import annotations

import logging
import math
import os
import weakref
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol

import cv2
import numpy as np

from rtpose._io import commit, discard, temp_sibling
from rtpose.errors import RtposeError
from rtpose.skeletons import COCO17, Skeleton

logger = logging.getLogger(__name__)

# BGR colours.
_LEFT = (0, 200, 0)  # green
_RIGHT = (0, 128, 255)  # orange
_CENTRE = (255, 153, 51)  # blue
_UNTRACKED_BOX = (200, 200, 200)
# Distinct colours for track ids (BGR), cycled.
_TRACK_PALETTE = (
    (75, 25, 230),
    (75, 180, 60),
    (25, 225, 255),
    (200, 130, 0),
    (48, 130, 245),
    (180, 30, 145),
    (240, 240, 70),
    (230, 50, 240),
    (60, 245, 210),
    (212, 190, 250),
)
# cv2 drawing takes int32 pixel coordinates; clamp wild values so they cannot overflow.
_COORD_LIMIT = 1 << 15


class PersonLike(Protocol):
    """What :func:`draw_poses` reads from each person (``rtpose.Person`` satisfies it)."""

    box: Sequence[float]  # (x1, y1, x2, y2) in pixels
    score: float | None
    keypoints: np.ndarray  # (K, 3): x, y, score in pixels
    track_id: int | None


def _side(name: str) -> tuple[int, int, int]:
    lowered = name.lower()
    if lowered.startswith(("left_", "l_")):
        return _LEFT
    if lowered.startswith(("right_", "r_")):
        return _RIGHT
    return _CENTRE


def _point(x: float, y: float) -> tuple[int, int]:
    return (
        round(min(max(float(x), -_COORD_LIMIT), _COORD_LIMIT)),
        round(min(max(float(y), -_COORD_LIMIT), _COORD_LIMIT)),
    )


def draw_poses(
    image: np.ndarray,
    persons: Iterable[PersonLike],
    skeleton: Skeleton = COCO17,
    *,
    kpt_threshold: float = 0.5,
    copy: bool = True,
) -> np.ndarray:
    """Draw boxes, limbs, keypoints and labels for every person.

    Args:
        image: ``(H, W, 3)`` uint8 BGR frame.
        persons: objects with ``box`` (x1, y1, x2, y2), ``score``, ``keypoints`` ``(K, 3)``
            (x, y, score) and ``track_id`` (int or None), all in ``image`` pixels.
        skeleton: keypoint set the keypoints follow; ``K`` must equal its ``num_keypoints``.
        kpt_threshold: keypoints scoring below this are not drawn, nor are limbs touching them.
        copy: draw on a copy (default) or, if False, on ``image`` itself.

    Returns:
        The annotated image: a new array if ``copy``, else ``image``.

    The label is ``"id N"`` for tracked persons and the detection score otherwise.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        got = f"shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an (H, W, 3) BGR array, got {got}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must have dtype uint8, got {image.dtype}")
    if copy:
        canvas = image.copy()
    else:
        if not (image.flags.c_contiguous and image.flags.writeable):
            raise ValueError(
                "copy=False needs a writeable C-contiguous image to draw in place; pass "
                "np.ascontiguousarray(image) or use copy=True"
            )
        canvas = image

    h, w = canvas.shape[:2]
    thickness = max(1, round(min(h, w) / 360))
    radius = thickness + 2
    font_scale = 0.4 * thickness + 0.1
    point_colours = [_side(n) for n in skeleton.keypoints]
    edge_colours = [
        point_colours[i] if point_colours[i] == point_colours[j] else _CENTRE
        for i, j in skeleton.edges
    ]

    for n, person in enumerate(persons):
        kpts = np.asarray(person.keypoints, dtype=np.float64)  # (K, 3)
        if kpts.shape != (skeleton.num_keypoints, 3):
            raise ValueError(
                f"persons[{n}].keypoints must have shape ({skeleton.num_keypoints}, 3) for "
                f"skeleton {skeleton.name!r}, got {kpts.shape}; pass the matching skeleton="
            )
        visible = np.isfinite(kpts).all(axis=1) & (kpts[:, 2] >= kpt_threshold)  # (K,)

        track_id = person.track_id
        box_colour = (
            _UNTRACKED_BOX if track_id is None else _TRACK_PALETTE[track_id % len(_TRACK_PALETTE)]
        )
        x1, y1, x2, y2 = (float(v) for v in person.box)
        if all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            p1, p2 = _point(x1, y1), _point(x2, y2)
            cv2.rectangle(canvas, p1, p2, box_colour, thickness, cv2.LINE_AA)
            label = _label(person.score, track_id)
            if label:
                _draw_label(canvas, label, p1, box_colour, font_scale, thickness)

        for (i, j), colour in zip(skeleton.edges, edge_colours, strict=True):
            if visible[i] and visible[j]:
                cv2.line(
                    canvas,
                    _point(kpts[i, 0], kpts[i, 1]),
                    _point(kpts[j, 0], kpts[j, 1]),
                    colour,
                    thickness + 1,
                    cv2.LINE_AA,
                )
        for k in np.flatnonzero(visible):
            cv2.circle(
                canvas, _point(kpts[k, 0], kpts[k, 1]), radius, point_colours[k], -1, cv2.LINE_AA
            )
    return canvas


def _label(score: float | None, track_id: int | None) -> str:
    if track_id is not None:
        return f"id {track_id}"
    if score is None:
        return ""
    return f"{float(score):.2f}"


def _draw_label(
    canvas: np.ndarray,
    text: str,
    corner: tuple[int, int],
    colour: tuple[int, int, int],
    font_scale: float,
    thickness: int,
) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    x, y = corner
    # Put the label above the box, or inside it when the box touches the top edge.
    top = y - th - baseline - 2 if y - th - baseline - 2 >= 0 else y
    cv2.rectangle(canvas, (x, top), (x + tw + 2, top + th + baseline + 2), colour, -1)
    cv2.putText(
        canvas,
        text,
        (x + 1, top + th + 1),
        font,
        font_scale,
        (0, 0, 0),
        thickness,
        cv2.LINE_AA,
    )


# -- annotated video --------------------------------------------------------------------------

_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


def _discard(writer: Any, tmp_path: str) -> None:
    """Release ``writer`` and delete the temporary file (also run by the finaliser)."""
    if writer is not None:
        writer.release()
    discard(tmp_path)


class AnnotatedVideoWriter:
    """Write frames to a video file that appears under its final name only when complete.

    Frames go to a hidden temporary file in the destination directory; :meth:`close` (or a clean
    exit from the ``with`` block) renames it to ``path``, replacing any file there. An exception
    inside the ``with`` block, :meth:`abort`, or garbage collection of an unclosed writer deletes
    the temporary file instead, so a partial video never appears under ``path``.

    Args:
        path: output file; ``.mp4`` is written with the ``mp4v`` codec, ``.avi`` with ``MJPG``.
        fps: frame rate stored in the file (> 0).
        size: ``(width, height)`` of every frame; both must be even (both codecs store 4:2:0
            chroma, and OpenCV would silently crop odd sizes).

    Example::

        with AnnotatedVideoWriter("out.mp4", src.fps or 30.0, src.size) as out:
            for frame in src:
                out.write(draw_poses(frame.image, persons))
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int]) -> None:
        self._writer: cv2.VideoWriter | None = None
        self._frames = 0
        self._path = os.fspath(path)
        ext = os.path.splitext(self._path)[1].lower()
        if ext not in _CODECS:
            raise ValueError(
                f"cannot write video '{self._path}': unsupported extension {ext or '(none)'!r}; "
                f"supported: {', '.join(f'{e} ({c})' for e, c in _CODECS.items())}"
            )
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < math.inf:
            raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
        if (
            len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
            or min(size) <= 0
        ):
            raise ValueError(f"size must be (width, height) with positive ints, got {size!r}")
        width, height = int(size[0]), int(size[1])
        if width % 2 or height % 2:
            raise ValueError(
                f"size must have even width and height for {ext} video, got {width}x{height}; "
                "crop or pad the frames by one pixel"
            )
        directory = os.path.dirname(os.path.abspath(self._path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"cannot write video '{self._path}': directory '{directory}' does not exist"
            )
        if os.path.isdir(self._path):
            raise IsADirectoryError(f"cannot write video to '{self._path}': it is a directory")
        self._size = (width, height)
        self._fps = float(fps)

        # A hidden sibling renamed over the path by close(). Keep the extension last:
        # OpenCV/FFmpeg picks the container from it.
        self._tmp = os.fspath(temp_sibling(os.path.abspath(self._path), suffix=f".part{ext}"))
        fourcc = _CODECS[ext]
        writer = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*fourcc), self._fps, self._size)
        if not writer.isOpened():
            _discard(writer, self._tmp)
            raise RtposeError(
                f"OpenCV could not open a {fourcc} video writer for '{self._path}' "
                f"({width}x{height} at {self._fps:g} fps); this OpenCV build may lack the encoder. "
                f"Try another extension ({', '.join(_CODECS)}) or check that opencv-python's "
                "FFmpeg backend is present (cv2.getBuildInformation())."
            )
        self._writer = writer
        self._finalizer = weakref.finalize(self, _discard, writer, self._tmp)
        logger.debug("writing %s via temporary file %s", self._path, self._tmp)

    @property
    def path(self) -> str:
        """Final output path."""
        return self._path

    @property
    def frames_written(self) -> int:
        """Number of frames written so far."""
        return self._frames

    def write(self, image: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 BGR frame of the writer's ``size``."""
        if self._writer is None:
            raise ValueError(f"cannot write to '{self._path}': the writer is closed")
        w, h = self._size
        if not isinstance(image, np.ndarray) or image.shape != (h, w, 3):
            got = f"shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            # cv2.VideoWriter would silently drop such a frame.
            raise ValueError(f"frame must have shape ({h}, {w}, 3) to match size, got {got}")
        if image.dtype != np.uint8:
            raise ValueError(f"frame must have dtype uint8, got {image.dtype}")
        self._writer.write(image)
        self._frames += 1

    def close(self) -> None:
        """Finish the file and move it to ``path``. Safe to call more than once.

        Raises:
            RtposeError: no frame was written (an empty video cannot be read back); nothing is
                left on disk.
        """
        writer, self._writer = self._writer, None
        if writer is None:
            return
        self._finalizer.detach()
        if self._frames == 0:
            _discard(writer, self._tmp)
            raise RtposeError(
                f"no frames were written, so no video was saved to '{self._path}' "
                "(a zero-frame video cannot be read back)"
            )
        writer.release()
        commit(self._tmp, self._path)  # deletes the temporary file if the rename fails
        logger.debug("wrote %d frames to %s", self._frames, self._path)

    def abort(self) -> None:
        """Stop writing and delete the partial file; nothing appears under ``path``."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        self._finalizer.detach()
        _discard(writer, self._tmp)

    def __enter__(self) -> AnnotatedVideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
