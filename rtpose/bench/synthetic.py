"""Crowd scenes for benchmarks: real person crops tiled on a neutral background.

``rtpose bench`` measures how frame time scales with the number of people per frame, which needs
frames holding exactly 1, 5, 10 or 20 people that a detector finds. Nothing like that ships with
rtpose, so :func:`crowd_frames` builds them from the sample video: person crops cut from its real
frames (so the networks see real people, not noise) are scaled into the cells of a grid on a grey
background, and drift a little from frame to frame so that no two frames are identical.

The person boxes of the sample video (``demo.mp4``, 1768x994) are fixed: YOLO11n-pose (the default
weights, ``conf=0.25``) found them on frames 30-210, scores 0.72-0.91 (see ``DEMO_PERSON_BOXES``).
For another video the boxes come from YOLO11n-pose on a few evenly spaced frames.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from pathlib import Path

import numpy as np

from rtpose.errors import DecodeError

logger = logging.getLogger(__name__)

# (frame index, (x1, y1, x2, y2)) of every person YOLO11n-pose found with score >= 0.7 on frames
# 30, 60, ..., 210 of demo.mp4; ten crops of two people in different poses.
DEMO_PERSON_BOXES: tuple[tuple[int, tuple[int, int, int, int]], ...] = (
    (30, (469, 30, 801, 459)),
    (60, (1275, 540, 1504, 946)),
    (60, (518, 44, 729, 459)),
    (90, (569, 60, 709, 453)),
    (90, (1070, 517, 1185, 929)),
    (120, (717, 514, 953, 932)),
    (120, (649, 89, 777, 460)),
    (150, (393, 504, 611, 940)),
    (180, (127, 514, 283, 939)),
    (210, (1105, 620, 1413, 892)),
)
DEMO_SIZE = (1768, 994)  # (width, height) the boxes above refer to

BACKGROUND = (114, 114, 114)  # BGR; the grey YOLO letterboxes with
_PAD = 0.05  # crop margin around each box, as a fraction of its size
_FILL = 0.85  # a person's crop is this fraction of its cell's height (less if too wide)
_ASPECT = 0.6  # width / height of a typical standing-person crop, for the grid layout
_MAX_HEIGHT = 0.5  # ... and at most this fraction of the frame height (a single person)
_DRIFT = 0.04  # per-frame motion amplitude, as a fraction of the cell size
_PERIOD = 30.0  # frames per motion cycle


def crowd_frames(
    people: int,
    *,
    size: tuple[int, int] = (1920, 1080),
    frames: int = 30,
    seed: int = 0,
    source: str | os.PathLike | None = None,
) -> list[np.ndarray]:
    """Frames showing ``people`` real people each, for benchmarks.

    Args:
        people: persons per frame (>= 1).
        size: ``(width, height)`` of the frames.
        frames: how many frames.
        seed: picks which crop goes where, mirroring and the motion phases; the same arguments
            give the same pixels.
        source: video to cut the people from (default: the sample video ``demo.mp4``).

    Returns:
        ``frames`` arrays ``(height, width, 3)`` uint8 BGR. People sit in the cells of a grid
        (laid out to make them as large as possible), scaled so YOLO11n-pose at 640 px input finds
        them (at 1920x1080, 20 people are ~300 px tall), and drift by a few pixels per frame.
    """
    if isinstance(people, bool) or not isinstance(people, int) or people < 1:
        raise ValueError(f"people must be an int >= 1, got {people!r}")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")
    if len(size) != 2 or any(not isinstance(v, int) or v < 64 for v in size):
        raise ValueError(f"size must be (width, height), ints >= 64, got {size!r}")
    width, height = size
    crops = person_crops(source)
    rows, cols = grid_shape(people, size)
    cell_w, cell_h = width / cols, height / rows
    if min(cell_w, cell_h) < 32:
        raise ValueError(
            f"{people} people do not fit in a {width}x{height} frame (cells of "
            f"{cell_w:.0f}x{cell_h:.0f} px); use a larger size= or fewer people"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(max(people, len(crops)))[:people] % len(crops)
    flips = rng.random(people) < 0.5
    phases = rng.uniform(0, 2 * math.pi, size=(people, 2))
    # place only whole people: cells are filled row by row, the last row centred
    slots = _slots(people, rows, cols, cell_w, cell_h)
    sprites = []
    for p in range(people):
        crop = crops[order[p]]
        if flips[p]:
            crop = crop[:, ::-1]
        h, w = crop.shape[:2]
        scale = min(0.95 * cell_w / w, _FILL * cell_h / h, _MAX_HEIGHT * height / h)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        sprites.append(_resize(crop, (sw, sh)))

    out = []
    for t in range(frames):
        canvas = np.empty((height, width, 3), np.uint8)
        canvas[:] = BACKGROUND
        for p, sprite in enumerate(sprites):
            sh, sw = sprite.shape[:2]
            cx, cy = slots[p]
            angle = 2 * math.pi * t / _PERIOD
            dx = _DRIFT * cell_w * math.sin(angle + phases[p, 0])
            dy = _DRIFT * cell_h * math.sin(angle + phases[p, 1])
            x0 = min(max(round(cx - sw / 2 + dx), 0), width - sw)
            y0 = min(max(round(cy - sh / 2 + dy), 0), height - sh)
            canvas[y0 : y0 + sh, x0 : x0 + sw] = sprite
        out.append(canvas)
    return out


def grid_shape(people: int, size: tuple[int, int]) -> tuple[int, int]:
    """``(rows, cols)`` of the grid whose cells hold the tallest standing-person crop."""
    width, height = size
    best, best_rc = -1.0, (1, people)
    for rows in range(1, people + 1):
        cols = math.ceil(people / rows)
        person_h = min(height / rows, width / cols / _ASPECT)  # the height a cell allows
        if person_h > best:
            best, best_rc = person_h, (rows, cols)
    return best_rc


def _slots(people: int, rows: int, cols: int, cell_w: float, cell_h: float):
    slots = []
    for r in range(rows):
        n = min(cols, people - r * cols)
        if n <= 0:
            break
        offset = (cols - n) * cell_w / 2
        slots += [(offset + (c + 0.5) * cell_w, (r + 0.5) * cell_h) for c in range(n)]
    return slots


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    interp = cv2.INTER_AREA if size[0] < image.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=interp)


def person_crops(source: str | os.PathLike | None = None) -> list[np.ndarray]:
    """The person crops (BGR, each ``(h, w, 3)`` uint8) cut from ``source``; cached per file."""
    if source is None:
        from rtpose.assets import require_asset

        path = require_asset("demo.mp4")
        return list(_cached_crops(str(path), path.stat().st_mtime_ns, True))
    path = Path(source).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"source must be a video file, got a directory: {path}")
    if not path.is_file():
        raise FileNotFoundError(f"source video not found: {path}")
    return list(_cached_crops(str(path), path.stat().st_mtime_ns, False))


@functools.lru_cache(maxsize=4)
def _cached_crops(path: str, mtime_ns: int, demo: bool) -> tuple[np.ndarray, ...]:
    del mtime_ns  # part of the cache key only: an edited file is read again
    boxes = DEMO_PERSON_BOXES if demo else _detect_boxes(path)
    wanted = sorted({i for i, _ in boxes})
    images = _read_frames(path, wanted)
    if demo and images[wanted[0]].shape[:2] != DEMO_SIZE[::-1]:
        raise DecodeError(
            f"{path}: expected the {DEMO_SIZE[0]}x{DEMO_SIZE[1]} sample video, got frames of "
            f"{images[wanted[0]].shape[1]}x{images[wanted[0]].shape[0]}; run `rtpose fetch "
            f"--force` or pass source= a video of your own"
        )
    crops = []
    for index, (x1, y1, x2, y2) in boxes:
        image = images[index]
        h, w = image.shape[:2]
        px, py = _PAD * (x2 - x1), _PAD * (y2 - y1)
        xa, ya = max(0, round(x1 - px)), max(0, round(y1 - py))
        xb, yb = min(w, round(x2 + px)), min(h, round(y2 + py))
        crop = image[ya:yb, xa:xb].copy()
        crop.setflags(write=False)
        crops.append(crop)
    return tuple(crops)


def _read_frames(path: str, wanted: list[int]) -> dict[int, np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            raise DecodeError(f"{path}: OpenCV cannot open it as a video")
        out: dict[int, np.ndarray] = {}
        for i in range(max(wanted) + 1):
            ok, image = cap.read()
            if not ok:
                raise DecodeError(
                    f"{path}: decoding stopped at frame {i}; the person crops need frames up to "
                    f"{max(wanted)}"
                )
            if i in wanted:
                out[i] = image
        return out
    finally:
        cap.release()


def _detect_boxes(path: str, *, samples: int = 8) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Person boxes (score >= 0.6, at least 64 px tall) found by YOLO11n-pose on a few frames."""
    import cv2

    from rtpose.pipeline.stream import PoseEstimator

    cap = cv2.VideoCapture(path)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    if count <= 0:
        raise DecodeError(f"{path}: OpenCV reports no frames; pass a readable video as source=")
    indices = sorted({round(i * (count - 1) / max(1, samples - 1)) for i in range(samples)})
    images = _read_frames(path, indices)
    estimator = PoseEstimator("yolo11n-pose")
    boxes = []
    for i in indices:
        for person in estimator(images[i]):
            x1, y1, x2, y2 = (round(v) for v in person.box)
            if person.score >= 0.6 and y2 - y1 >= 64 and x2 > x1:
                boxes.append((i, (x1, y1, x2, y2)))
    if not boxes:
        raise ValueError(
            f"{path}: YOLO11n-pose found no person (score >= 0.6, >= 64 px tall) on {len(indices)} "
            "frames; pass a video with clearly visible people as source="
        )
    logger.info("crowd scenes: %d person crops from %s", len(boxes), path)
    return boxes
