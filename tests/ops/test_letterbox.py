"""rtpose.ops.letterbox: ultralytics' LetterBox geometry as an affine map, checked by warping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rtpose.ops import affine_warp, letterbox_matrix


def _frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# --- letterbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src_hw", "dst", "kwargs", "out_hw", "pad"),
    [
        ((994, 1768), 640, dict(auto=True), (384, 640), (0, 12)),
        ((994, 1768), 640, {}, (640, 640), (0, 140)),
        ((1080, 1920), (384, 640), {}, (384, 640), (0, 12)),
        ((100, 200), 640, dict(scaleup=False), (640, 640), (220, 270)),
        ((101, 203), 640, dict(auto=True, stride=32), (320, 640), (0, 1)),
    ],
)
def test_letterbox_geometry(src_hw, dst, kwargs, out_hw, pad):
    """Golden values worked out by hand from ultralytics' LetterBox formula."""
    lb = letterbox_matrix(src_hw, dst, **kwargs)
    assert lb.out_hw == out_hw and lb.pad == pad


def test_letterbox_1768x994_auto():
    lb = letterbox_matrix((994, 1768), 640, auto=True)
    assert lb.out_hw == (384, 640) and lb.pad == (0, 12)
    assert lb.scale == (640 / 1768, 360 / 994)  # new size 640x360: per-axis factors differ


@pytest.mark.parametrize("src_hw", [(994, 1768), (1080, 1920), (300, 301), (37, 53)])
def test_letterbox_warp_matches_resize_and_pad(src_hw):
    """The warp equals cv2.resize(INTER_LINEAR) + copyMakeBorder(114), away from the image edge.

    cv2.resize replicates edge pixels, while the warp blends neighbours outside the frame with the
    border value. When downscaling no sample falls outside the frame, so the two agree everywhere;
    when upscaling by s they differ within about s / 2 pixels of the resized area's edge, on both
    sides of it. That band is excluded; everything else is compared strictly.
    """
    frame = _frame(np.random.default_rng(11), *src_hw)
    lb = letterbox_matrix(src_hw, 640)
    (sx, sy), (left, top) = lb.scale, lb.pad
    new_w, new_h = round(src_hw[1] * sx), round(src_hw[0] * sy)
    got = affine_warp(frame, lb.matrix, lb.out_hw, channel_order="bgr", border_value=114)
    got = got[0].transpose(1, 2, 0)  # (h, w, 3) BGR, raw pixel values

    resized = cv2.resize(frame.astype(np.float32), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    bottom, right = lb.out_hw[0] - new_h - top, lb.out_hw[1] - new_w - left
    want = cv2.copyMakeBorder(
        resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114)
    )
    band = int(np.ceil(max(sx, sy, 1.0) / 2)) + 1
    ys, xs = np.mgrid[0 : lb.out_hw[0], 0 : lb.out_hw[1]]
    near_edge = np.zeros(lb.out_hw, bool)
    for edge in (left, left + new_w):
        near_edge |= np.abs(xs - edge) < band
    for edge in (top, top + new_h):
        near_edge |= np.abs(ys - edge) < band
    near_edge &= (xs >= left - band) & (xs < left + new_w + band)
    near_edge &= (ys >= top - band) & (ys < top + new_h + band)
    # cv2.resize computes its float32 result with float weights: 1e-3 of a pixel value.
    np.testing.assert_allclose(got[~near_edge], want[~near_edge], rtol=0, atol=1e-3)
    if max(sx, sy) <= 1.0:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)


def test_letterbox_matches_uint8_resize_within_rounding():
    """ultralytics resizes the uint8 frame: cv2 rounds to uint8 (0.5) with 11-bit fixed-point
    weights, so its image is within 1 pixel value of the exact warp."""
    frame = _frame(np.random.default_rng(12), 994, 1768)
    lb = letterbox_matrix(frame.shape[:2], 640, auto=True)
    (left, top), (out_h, out_w) = lb.pad, lb.out_hw
    resized = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_LINEAR)
    want = cv2.copyMakeBorder(
        resized,
        top,
        out_h - 360 - top,
        left,
        out_w - 640 - left,
        cv2.BORDER_CONSTANT,
        value=(114, 114, 114),
    )
    got = affine_warp(frame, lb.matrix, lb.out_hw, channel_order="bgr", border_value=114)
    np.testing.assert_allclose(got[0].transpose(1, 2, 0), want, rtol=0, atol=1.0)


def test_letterbox_to_source_inverts_matrix():
    lb = letterbox_matrix((994, 1768), 640, auto=True)
    rng = np.random.default_rng(13)
    src = rng.uniform(-50, 1800, (100, 2))  # (N, 2) pixel-centre coordinates in the frame
    dst = src @ lb.matrix[:, :2].T + lb.matrix[:, 2]  # pixel centres in the letterbox
    points = np.concatenate([dst + 0.5, rng.uniform(size=(100, 1))], axis=1)  # continuous + score
    before = points.copy()
    back = lb.to_source(points)
    np.testing.assert_allclose(back[:, :2] - 0.5, src, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(back[:, 2], points[:, 2])  # extra columns untouched
    np.testing.assert_array_equal(points, before)  # input not modified
    assert back is not points


def test_letterbox_boxes_to_source():
    lb = letterbox_matrix((994, 1768), 640, auto=True)
    boxes = np.array([[0.0, 12.0, 640.0, 372.0], [320.0, 192.0, 330.0, 202.0]])  # letterbox xyxy
    got = lb.boxes_to_source(boxes)
    np.testing.assert_allclose(got[0], [0, 0, 1768, 994], atol=1e-9)  # the image's extent
    np.testing.assert_allclose(got[1], lb.to_source(boxes[1].reshape(2, 2)).ravel())


def test_letterbox_rejects_bad_sizes():
    with pytest.raises(ValueError, match="sizes and stride must be >= 1"):
        letterbox_matrix((0, 10), 640)
    with pytest.raises(ValueError, match="pair of integers"):
        letterbox_matrix((10, 10, 3), 640)
