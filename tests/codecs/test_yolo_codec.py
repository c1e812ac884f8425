"""Confidence filtering and NMS of YOLO-pose predictions."""

from __future__ import annotations

import numpy as np
import pytest

from rtpose.codecs.yolo import decode_yolo_pose, nms
from rtpose.geometry import box_iou


def _brute_force_nms(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(box_iou(boxes[j : j + 1], boxes[i : i + 1])[0, 0] <= thr for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_nms_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (60, 2))
    wh = rng.uniform(5, 40, (60, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = rng.uniform(0, 1, 60)
    scores[10] = scores[11]  # a tie: lower index first
    for thr in (0.3, 0.5, 0.7):
        assert nms(boxes, scores, thr).tolist() == _brute_force_nms(boxes, scores, thr)


def test_iou_values():
    box = np.array([0.0, 0.0, 10.0, 10.0])
    others = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], float)
    np.testing.assert_allclose(box_iou(box[None], others)[0], [1.0, 50 / 150, 0.0, 0.0])


def _preds(cx, cy, w, h, score, kpt_value=1.0, k=17):
    """One image of predictions (1, 5 + 3k, A) from per-anchor lists."""
    a = len(cx)
    p = np.zeros((1, 5 + 3 * k, a), np.float32)
    p[0, 0], p[0, 1], p[0, 2], p[0, 3], p[0, 4] = cx, cy, w, h, score
    p[0, 5:] = kpt_value
    return p


def test_decode_filters_suppresses_and_sorts():
    preds = _preds(
        cx=[50, 52, 200, 300], cy=[50, 50, 200, 300], w=[40, 40, 30, 30], h=[80, 80, 60, 60],
        score=[0.6, 0.9, 0.25, 0.8],
    )  # fmt: skip
    (det,) = decode_yolo_pose(preds, conf_threshold=0.25, iou_threshold=0.7)
    # anchor 2 is at the threshold (strictly greater is required); anchor 0 overlaps anchor 1
    np.testing.assert_allclose(det.scores, [0.9, 0.8])
    np.testing.assert_allclose(det.boxes[0], [32, 10, 72, 90])
    assert det.keypoints.shape == (2, 17, 3)


def test_decode_respects_max_detections_and_empty_input():
    preds = _preds(
        cx=[10, 100, 200], cy=[10, 100, 200], w=[5] * 3, h=[5] * 3, score=[0.9, 0.8, 0.7]
    )
    (det,) = decode_yolo_pose(preds, max_detections=2)
    assert len(det) == 2
    (empty,) = decode_yolo_pose(preds, conf_threshold=0.95)
    assert len(empty) == 0 and empty.keypoints.shape == (0, 17, 3)


def test_decode_rejects_wrong_layout():
    with pytest.raises(ValueError, match="expected 4 \\+ nc \\+ 51"):
        decode_yolo_pose(np.zeros((1, 30, 10), np.float32))
    with pytest.raises(ValueError, match="must be \\(B, C, A\\)"):
        decode_yolo_pose(np.zeros((30, 10), np.float32))
