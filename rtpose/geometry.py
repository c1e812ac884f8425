"""Box and keypoint geometry shared by the tracker, YOLO-pose decoding and the accuracy gate.

Boxes are ``x1, y1, x2, y2`` ("xyxy", pixels, x2 >= x1 for a valid box) unless a function says
``cxcywh`` (centre x, y, width, height). A box with x2 < x1 or y2 < y1 has area 0.

- :func:`box_iou`: intersection over union of every pair of two box sets.
- :func:`oks`: COCO's object keypoint similarity (Lin et al., "Microsoft COCO: Common Objects in
  Context", ECCV 2014; the formula of pycocotools' ``COCOeval.computeOks``)
  ``mean_k exp(-d_k^2 / (2 * area * (2 * sigma_k)^2))`` of matching instances.
- :func:`boxes_from_keypoints`, :func:`scale_boxes`, :func:`box_area` and the conversions
  :func:`xyxy_to_cxcywh` / :func:`cxcywh_to_xyxy`.

Everything is numpy and keeps the floating dtype it is given (float32 in, float32 out), so the
callers' results do not depend on which of them computes a quantity.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "box_area",
    "box_iou",
    "boxes_from_keypoints",
    "cxcywh_to_xyxy",
    "oks",
    "scale_boxes",
    "xyxy_to_cxcywh",
]

# Smallest box area OKS divides by (px^2): a box below one pixel has no meaningful scale, and the
# floor keeps a degenerate (zero-area) box from dividing by zero.
MIN_OKS_AREA = 1.0


def _floating(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes)
    return b if b.dtype.kind == "f" else b.astype(np.float64)


def _check_boxes(name: str, boxes: np.ndarray, *, ndim: int | None = 2) -> None:
    if boxes.shape[-1:] != (4,) or (ndim is not None and boxes.ndim != ndim):
        want = "(N, 4)" if ndim == 2 else "(..., 4)"
        raise ValueError(f"{name} must have shape {want}, got {boxes.shape}")


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) ``x1, y1, x2, y2`` -> (..., 4) ``cx, cy, w, h`` (a new array)."""
    b = _floating(boxes)
    _check_boxes("boxes", b, ndim=None)
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) ``cx, cy, w, h`` -> (..., 4) ``x1, y1, x2, y2`` (a new array)."""
    b = _floating(boxes)
    _check_boxes("boxes", b, ndim=None)
    centre, size = b[..., :2], b[..., 2:]
    return np.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) xyxy -> (...) areas; 0 for a box with x2 < x1 or y2 < y1."""
    b = _floating(boxes)
    _check_boxes("boxes", b, ndim=None)
    return np.clip(b[..., 2:] - b[..., :2], 0, None).prod(axis=-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy -> (N, M) intersection over union; 0 where the union is empty."""
    a, b = _floating(a), _floating(b)
    _check_boxes("a", a)
    _check_boxes("b", b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def scale_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """(N, 4) xyxy boxes with width and height multiplied by ``factor`` about their centres."""
    b = _floating(boxes)
    _check_boxes("boxes", b)
    centre = (b[:, :2] + b[:, 2:]) / 2
    half = (b[:, 2:] - b[:, :2]) * (factor / 2)
    return np.concatenate([centre - half, centre + half], axis=1)


def boxes_from_keypoints(keypoints: np.ndarray, *, min_score: float = 0.3) -> np.ndarray:
    """Boxes around the confident keypoints of each person.

    Args:
        keypoints: (N, K, 3) x, y, score.
        min_score: keypoints scoring below this (or with a non-finite x or y) are left out.

    Returns:
        (N, 4) float64 x1, y1, x2, y2; a row is NaN when the person has no keypoint scoring
        ``min_score`` or more.
    """
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim != 3 or kpts.shape[2] < 3:
        raise ValueError(
            f"boxes_from_keypoints: keypoints must have shape (N, K, 3), got {kpts.shape}"
        )
    ok = (kpts[..., 2] >= min_score) & np.isfinite(kpts[..., :2]).all(axis=-1)  # (N, K)
    x, y = kpts[..., 0], kpts[..., 1]
    with np.errstate(invalid="ignore"):
        boxes = np.stack(
            [
                np.where(ok, x, np.inf).min(axis=1),
                np.where(ok, y, np.inf).min(axis=1),
                np.where(ok, x, -np.inf).max(axis=1),
                np.where(ok, y, -np.inf).max(axis=1),
            ],
            axis=1,
        )
    boxes[~ok.any(axis=1)] = np.nan
    return boxes


def oks(
    a: np.ndarray,
    b: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray,
    *,
    min_score: float | None = None,
) -> np.ndarray:
    """Object keypoint similarity of M pairs of instances (COCO's formula).

    ``exp(-d^2 / (2 * area * (2 * sigma)^2))`` per keypoint, averaged over the keypoints of the
    pair. Areas below :data:`MIN_OKS_AREA` count as that floor.

    Args:
        a, b: (M, K, >=2) keypoints x, y[, score] of the two sides of each pair.
        areas: (M,) the scale of each pair, in px^2 (e.g. the reference instance's box area).
        sigmas: (K,) per-keypoint OKS sigmas (e.g. ``rtpose.skeletons.COCO17.sigmas``).
        min_score: when given, average only over the keypoints scoring at least this in both
            ``a`` and ``b`` (column 2); a pair with no such keypoint gets NaN. When None, every
            keypoint counts.

    Returns:
        (M,) float64 similarities in [0, 1] (NaN where a distance is not finite, or as above).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 3 or a.shape != b.shape or a.shape[2] < (2 if min_score is None else 3):
        cols = ">=2" if min_score is None else ">=3"
        raise ValueError(
            f"oks: a and b must both have shape (M, K, {cols}), got {a.shape} and {b.shape}"
        )
    d2 = ((a[..., :2] - b[..., :2]) ** 2).sum(axis=-1)  # (M, K)
    variances = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2  # (K,), as in pycocotools
    e = d2 / (variances * np.maximum(areas, MIN_OKS_AREA)[:, None] * 2.0)
    if min_score is None:
        return np.exp(-e).mean(axis=-1)
    valid = (a[..., 2] >= min_score) & (b[..., 2] >= min_score)  # (M, K)
    count = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(valid, np.exp(-e), 0.0).sum(axis=-1) / count
    return np.where(count > 0, sim, np.nan)
