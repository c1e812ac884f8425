"""Calibration data for the int8 pass: frames of real footage, and batches of the network inputs
built from them as at run time.

Static (post-training) quantization fixes each activation's int8 scale from the range it takes on
calibration inputs (MinMax or percentile ranges, see :mod:`rtpose.deploy.int8`), so the inputs
must look like what the deployed network sees: real frames, spread over the whole clip rather than
its first seconds, preprocessed as at run time (the letterboxed frame for a bottom-up model, every
person crop for a top-down one). :func:`calibration_frames` picks evenly spaced frames from a
video or an image folder; :func:`calibration_batches` packs the network inputs that the caller's
preprocessing callable builds from them into batches, so this module knows no model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rtpose._deps import require
from rtpose.errors import DecodeError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")


def calibration_frames(source: str | os.PathLike, *, count: int) -> list[np.ndarray]:
    """``count`` frames evenly spaced through a video file or a folder of images.

    A folder contributes its ``*.jpg/*.jpeg/*.png/*.bmp`` files in sorted name order. A source
    with fewer than ``count`` frames yields all of them (with a warning).

    Returns:
        frames, each (H, W, 3) uint8 BGR.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"calibration source not found: {source}")
    if source.is_dir():
        frames = _folder_frames(source, count)
    elif source.suffix.lower() in IMAGE_SUFFIXES:
        frames = _folder_frames(source, count, files=[source])
    else:
        frames = _video_frames(source, count)
    if len(frames) < count:
        log.warning("calibration source %s has only %d frames (asked for %d)", source,
                    len(frames), count)  # fmt: skip
    return frames


def _spaced(total: int, count: int) -> list[int]:
    """Indices of ``count`` evenly spaced items out of ``total`` (first and last included)."""
    if total <= count:
        return list(range(total))
    return np.linspace(0, total - 1, count).round().astype(int).tolist()


def _folder_frames(folder: Path, count: int, files: list[Path] | None = None) -> list[np.ndarray]:
    cv2 = require("cv2", purpose="reading calibration images")
    if files is None:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(
            f"calibration source {folder} has no frames: no {'/'.join(IMAGE_SUFFIXES)} files in it"
        )
    frames = []
    for i in _spaced(len(files), count):
        image = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
        if image is None:
            raise DecodeError(f"calibration image {files[i]} could not be decoded")
        frames.append(image)
    return frames


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    cv2 = require("cv2", purpose="reading calibration frames from a video")
    # the container's frame count can be wrong (or 0); once a pass has counted the frames, a
    # second pass picks the right ones
    total = _reported_count(cv2, path)
    if total <= 0:
        total = _video_pass(cv2, path, set())[0]
    n, frames = _video_pass(cv2, path, set(_spaced(total, count)))
    if n != total:
        n, frames = _video_pass(cv2, path, set(_spaced(n, count)))
    if n == 0:
        raise ValueError(
            f"calibration source {path} has no frames (not a video OpenCV can decode?)"
        )
    return frames


def _reported_count(cv2, path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


def _video_pass(cv2, path: Path, wanted: set[int]) -> tuple[int, list[np.ndarray]]:
    """Decode the whole video; return the number of frames and those whose index is wanted."""
    cap = cv2.VideoCapture(str(path))
    frames, n = [], 0
    try:
        while cap.isOpened() and cap.grab():
            if n in wanted:
                ok, frame = cap.retrieve()
                if not ok:
                    raise DecodeError(f"frame {n} of {path} could not be decoded")
                frames.append(frame)
            n += 1
    finally:
        cap.release()
    return n, frames


def calibration_batches(
    frames: Sequence[np.ndarray],
    preprocess: Callable[[np.ndarray], np.ndarray],
    *,
    batch: int,
) -> list[np.ndarray]:
    """Preprocess frames as the model does at run time and pack the samples into batches.

    Args:
        frames: (H, W, 3) uint8 BGR frames (see :func:`calibration_frames`).
        preprocess: one frame -> (n, 3, h, w) float32 network inputs: the whole frame for a
            bottom-up model (n = 1), every person crop for a top-down one (n >= 0).
        batch: samples per batch; the last batch may be smaller.

    Returns:
        batches, each (<= batch, 3, h, w) float32.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    samples = []
    for i, frame in enumerate(frames):
        x = preprocess(frame)
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype != np.float32:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"preprocess must return an (n, 3, h, w) float32 array; for frame {i} "
                             f"it returned {got}")  # fmt: skip
        if samples and len(x) and x.shape[1:] != samples[0].shape[1:]:
            raise ValueError(
                f"preprocess returned samples of shape {x.shape[1:]} for frame {i} and "
                f"{samples[0].shape[1:]} before: calibration needs one input size"
            )
        if len(x):
            samples.append(x)
    if not samples:
        raise ValueError(f"preprocess produced no samples from {len(frames)} frames (no persons "
                         "found in any frame?): calibrate on frames that show people")  # fmt: skip
    stacked = np.concatenate(samples)  # (S, 3, h, w)
    return [np.ascontiguousarray(stacked[i : i + batch]) for i in range(0, len(stacked), batch)]
