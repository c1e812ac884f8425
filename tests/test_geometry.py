"""rtpose.geometry against small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtpose.geometry import (
    box_area,
    box_iou,
    boxes_from_keypoints,
    cxcywh_to_xyxy,
    oks,
    scale_boxes,
    xyxy_to_cxcywh,
)


def test_box_format_conversions_round_trip():
    xyxy = np.array([[0.0, 0.0, 10.0, 20.0], [4.0, 6.0, 8.0, 7.0]])
    cxcywh = np.array([[5.0, 10.0, 10.0, 20.0], [6.0, 6.5, 4.0, 1.0]])
    np.testing.assert_array_equal(xyxy_to_cxcywh(xyxy), cxcywh)
    np.testing.assert_array_equal(cxcywh_to_xyxy(cxcywh), xyxy)
    np.testing.assert_array_equal(cxcywh_to_xyxy(cxcywh[0]), xyxy[0])  # one (4,) box
    assert cxcywh_to_xyxy(cxcywh.astype(np.float32)).dtype == np.float32
    assert xyxy_to_cxcywh([[0, 0, 2, 2]]).dtype == np.float64  # ints become float
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\), got \(3,\)"):
        xyxy_to_cxcywh(np.zeros(3))


def test_box_area_is_zero_for_inverted_boxes():
    boxes = np.array([[0, 0, 10, 20], [5, 5, 5, 9], [10, 0, 0, 10], [10, 10, 0, 0]], float)
    np.testing.assert_array_equal(box_area(boxes), [200.0, 0.0, 0.0, 0.0])


def test_box_iou_pairs():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0], [1, 1, 3, 3]])
    want = [
        [1.0, 50 / 150, 0.0, 0.0, 4 / 100],  # [1,1,3,3] lies inside [0,0,10,10]
        [4 / 100, 0.0, 0.0, 0.0, 1 / 7],  # [0,0,2,2] vs [1,1,3,3]: 1 / (4 + 4 - 1)
    ]
    np.testing.assert_allclose(box_iou(a, b), want)
    assert box_iou(a, np.zeros((0, 4))).shape == (2, 0)
    zero = np.zeros((1, 4))
    assert box_iou(zero, zero)[0, 0] == 0.0  # empty union: 0, not NaN
    with pytest.raises(ValueError, match=r"b must have shape \(N, 4\)"):
        box_iou(a, np.zeros(4))


def test_scale_boxes_about_the_centre():
    boxes = np.array([[10.0, 20.0, 14.0, 30.0]])  # centre (12, 25), size 4 x 10
    np.testing.assert_array_equal(scale_boxes(boxes, 2.0), [[8.0, 15.0, 16.0, 35.0]])
    np.testing.assert_array_equal(scale_boxes(boxes, 0.5), [[11.0, 22.5, 13.0, 27.5]])


def test_boxes_from_keypoints_skip_unconfident_and_non_finite_points():
    kpts = np.array(
        [
            [[1, 2, 0.9], [5, 1, 0.5], [100, 100, 0.1], [np.nan, 0, 0.9]],
            [[0, 0, 0.1], [1, 1, 0.2], [2, 2, 0.0], [3, 3, 0.29]],  # nothing confident
        ]
    )
    boxes = boxes_from_keypoints(kpts, min_score=0.3)
    np.testing.assert_array_equal(boxes[0], [1.0, 1.0, 5.0, 2.0])
    assert np.isnan(boxes[1]).all()
    with pytest.raises(ValueError, match=r"\(N, K, 3\)"):
        boxes_from_keypoints(np.zeros((4, 3)))


def test_oks_follows_the_coco_formula():
    sigmas = np.array([0.1, 0.2])
    a = np.array([[[0, 0, 1.0], [10, 10, 1.0]]])
    b = np.array([[[3, 4, 1.0], [10, 10, 1.0]]])  # first keypoint 5 px off
    area = np.array([100.0])
    # exp(-d^2 / (2 * area * (2 sigma)^2)) = exp(-25 / (2 * 100 * 0.04)) = exp(-3.125)
    want = (math.exp(-3.125) + 1.0) / 2
    assert oks(a, b, area, sigmas)[0] == pytest.approx(want, rel=1e-12)
    assert oks(a, a, area, sigmas)[0] == 1.0
    # areas below 1 px^2 count as 1 px^2 (no division by zero)
    tiny = oks(a, b, np.array([0.0]), sigmas)[0]
    assert tiny == pytest.approx((math.exp(-25 / (2 * 1.0 * 0.04)) + 1.0) / 2, rel=1e-12)


def test_oks_with_min_score_averages_over_keypoints_confident_in_both():
    sigmas = np.array([0.1, 0.2])
    a = np.array([[[0, 0, 1.0], [10, 10, 1.0]], [[0, 0, 0.1], [0, 0, 1.0]]])
    b = np.array([[[3, 4, 1.0], [90, 90, 0.2]], [[0, 0, 1.0], [0, 0, 0.2]]])
    got = oks(a, b, np.array([100.0, 100.0]), sigmas, min_score=0.3)
    assert got[0] == pytest.approx(math.exp(-3.125), rel=1e-12)  # only keypoint 0 counts
    assert np.isnan(got[1])  # no keypoint confident in both
    with pytest.raises(ValueError, match=r"\(M, K, >=3\)"):
        oks(a[..., :2], b[..., :2], np.array([1.0, 1.0]), sigmas, min_score=0.3)
