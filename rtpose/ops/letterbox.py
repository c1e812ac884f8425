"""YOLO letterbox geometry (ultralytics ``LetterBox``) as an affine map for ``affine_warp``."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

from rtpose.ops._checks import pair as _pair


@dataclass(frozen=True)
class Letterbox:
    """Geometry of a YOLO letterbox: resize keeping the aspect ratio, then pad.

    Reproduces ultralytics' ``LetterBox`` (centred padding, cv2.resize INTER_LINEAR).

    Attributes:
        scale: (sx, sy) = (new_w / w, new_h / h), the per-axis resize factors.
        pad: (left, top) padding in output pixels.
        out_hw: (out_h, out_w) of the letterboxed image.
    """

    scale: tuple[float, float]
    pad: tuple[int, int]
    out_hw: tuple[int, int]

    def __post_init__(self) -> None:
        if not all(s > 0 and math.isfinite(s) for s in self.scale):
            raise ValueError(f"Letterbox: scale must be positive and finite, got {self.scale}")
        if min(self.out_hw) < 1:
            raise ValueError(f"Letterbox: out_hw must be >= 1, got {self.out_hw}")

    @property
    def matrix(self) -> np.ndarray:
        """(2, 3) float64 forward map, source pixel -> letterbox pixel (pixel-centre convention).

        cv2.resize samples with half-pixel centres, so a source pixel centre x maps to
        sx * (x + 0.5) - 0.5, then the padding shifts it by ``left``.
        """
        (sx, sy), (left, top) = self.scale, self.pad
        return np.array(
            [[sx, 0.0, 0.5 * sx - 0.5 + left], [0.0, sy, 0.5 * sy - 0.5 + top]], dtype=np.float64
        )

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """Maps (..., 2+) x, y in letterbox continuous coordinates to source-image coordinates.

        Continuous means pixel i covers [i, i + 1) (what detectors predict), so the map is
        u_src = (u_dst - left) / sx. Columns after the first two (scores, ...) are copied as is.
        Returns a new array (float64 unless ``points`` is already floating).
        """
        points = np.asarray(points)
        if points.ndim < 1 or points.shape[-1] < 2:
            raise ValueError(
                f"Letterbox.to_source: points must have shape (..., 2+), got {points.shape}"
            )
        dtype = points.dtype if np.issubdtype(points.dtype, np.floating) else np.float64
        result = points.astype(dtype, copy=True)
        (sx, sy), (left, top) = self.scale, self.pad
        result[..., 0] = (points[..., 0] - left) / sx
        result[..., 1] = (points[..., 1] - top) / sy
        return result

    def boxes_to_source(self, boxes: np.ndarray) -> np.ndarray:
        """Maps (N, 4) x1, y1, x2, y2 boxes from letterbox to source-image coordinates."""
        boxes = np.asarray(boxes)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"Letterbox.boxes_to_source: boxes must be (N, 4), got {boxes.shape}")
        return self.to_source(boxes.reshape(-1, 2, 2)).reshape(boxes.shape)


def letterbox_matrix(
    src_hw: tuple[int, int],
    dst_hw: int | tuple[int, int],
    *,
    auto: bool = False,
    stride: int = 32,
    scaleup: bool = True,
) -> Letterbox:
    """Letterbox geometry of ultralytics' ``LetterBox`` for a (h, w) image.

    Args:
        src_hw: (h, w) of the source frame.
        dst_hw: target (h, w), or one int for a square target.
        auto: pad only up to the next multiple of ``stride`` (minimal rectangle) instead of to
            ``dst_hw``.
        stride: the network stride used by ``auto``.
        scaleup: allow enlarging; if False small images are only padded.

    Returns:
        A :class:`Letterbox`; ``affine_warp(frame, lb.matrix, lb.out_hw, border_value=114)`` is
        ultralytics' image (they resize the uint8 frame, so theirs is rounded: within 1 pixel
        value). When downscaling the two agree everywhere; when upscaling by s they differ within
        about s / 2 pixels of the image's edge, where cv2.resize replicates edge pixels and the
        warp blends them with the border.
    """
    h, w = _pair("letterbox_matrix: src_hw", src_hw)
    if isinstance(dst_hw, int | np.integer):
        dst_h = dst_w = operator.index(dst_hw)
    else:
        dst_h, dst_w = _pair("letterbox_matrix: dst_hw", dst_hw)
    if min(h, w, dst_h, dst_w) < 1 or stride < 1:
        raise ValueError(
            f"letterbox_matrix: sizes and stride must be >= 1, got src_hw={src_hw}, "
            f"dst_hw={dst_hw}, stride={stride}"
        )
    r = min(dst_h / h, dst_w / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = round(w * r), round(h * r)
    dw, dh = dst_w - new_w, dst_h - new_h
    if auto:
        dw, dh = dw % stride, dh % stride
    out_hw = (new_h + dh, new_w + dw)
    # ultralytics splits odd padding as round(d / 2 - 0.1) before, the rest after.
    left, top = round(dw / 2 - 0.1), round(dh / 2 - 0.1)
    return Letterbox(scale=(new_w / w, new_h / h), pad=(left, top), out_hw=out_hw)
