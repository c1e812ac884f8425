"""YOLO-pose post-processing in numpy: confidence filter, non-maximum suppression, un-letterbox.

The network graph already decodes boxes and keypoints into input pixels (see
:class:`rtpose.models.yolo.Pose`); what remains per image is the part that depends on the number of
detections, which stays on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtpose.geometry import box_iou, cxcywh_to_xyxy


@dataclass(frozen=True)
class Detections:
    """Detections of one image, sorted by score (highest first)."""

    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    scores: np.ndarray  # (N,) float32
    keypoints: np.ndarray  # (N, K, 3) float32 x, y, score

    def __len__(self) -> int:
        return len(self.scores)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Returns the indices of the kept boxes, highest score first. A box is suppressed when its IoU
    with an already kept box is strictly greater than ``iou_threshold`` (torchvision's rule).
    Ties in score keep the lower index first (stable sort).
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[i : i + 1], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode_yolo_pose(
    preds: np.ndarray,
    *,
    num_keypoints: int = 17,
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.7,
    max_detections: int = 300,
    max_candidates: int = 30000,
) -> list[Detections]:
    """Filter and suppress decoded YOLO-pose predictions.

    Args:
        preds: (B, 4 + nc + K*3, A) network output: cx, cy, w, h | class scores | keypoints, all in
            network-input pixels. With several classes the best one is the person score.
        conf_threshold: keep anchors whose best class score is strictly greater than this.
        iou_threshold: NMS overlap above which the lower-scored box is dropped.
        max_detections: at most this many persons per image.
        max_candidates: at most this many anchors (highest scores) enter NMS.

    Returns:
        One :class:`Detections` per image, in network-input pixels.
    """
    if preds.ndim != 3:
        raise ValueError(f"preds must be (B, C, A), got shape {preds.shape}")
    nk = num_keypoints * 3
    nc = preds.shape[1] - 4 - nk
    if nc < 1:
        raise ValueError(
            f"preds has {preds.shape[1]} channels; expected 4 + nc + {nk} for {num_keypoints} "
            "keypoints with at least one class"
        )
    results = []
    for p in preds:  # (C, A)
        scores = p[4 : 4 + nc].max(0)  # (A,)
        idx = np.flatnonzero(scores > conf_threshold)
        if idx.size > max_candidates:
            idx = idx[np.argsort(-scores[idx], kind="stable")[:max_candidates]]
        cand = p[:, idx].T.astype(np.float32)  # (n, C)
        boxes = cxcywh_to_xyxy(cand[:, 0:4])
        keep = nms(boxes, scores[idx], iou_threshold)[:max_detections]
        results.append(
            Detections(
                boxes=boxes[keep],
                scores=scores[idx][keep].astype(np.float32),
                keypoints=cand[keep, 4 + nc :].reshape(-1, num_keypoints, 3),
            )
        )
    return results
