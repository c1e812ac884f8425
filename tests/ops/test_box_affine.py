"""rtpose.ops.box_affine: MMPose's top-down box -> crop geometry (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_support import HostCudaArray

from rtpose.ops.box_affine import box_to_affine


def _boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(-50, 1900, (n, 2))
    wh = rng.uniform(0.2, 600, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)  # (n, 4) x1, y1, x2, y2


def _mmpose_inverse(boxes: np.ndarray, input_hw, padding: float) -> np.ndarray:
    """MMPose 1.x written out independently: bbox_xyxy2cs, _fix_aspect_ratio, and the decode
    transform ``keypoints / input_size * scale + center - 0.5 * scale`` as a 2x3 map."""
    center = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    scale = (boxes[:, 2:] - boxes[:, :2]) * padding
    aspect = input_hw[1] / input_hw[0]
    w, h = scale[:, :1], scale[:, 1:]
    scale = np.where(w > h * aspect, np.hstack([w, w / aspect]), np.hstack([h * aspect, h]))
    inv = np.zeros((len(boxes), 2, 3))
    inv[:, 0, 0] = scale[:, 0] / input_hw[1]
    inv[:, 1, 1] = scale[:, 1] / input_hw[0]
    inv[:, :, 2] = center - 0.5 * scale
    return inv


def test_matches_mmpose_geometry():
    boxes = _boxes(np.random.default_rng(1), 200)
    got = box_to_affine(boxes, (256, 192))
    np.testing.assert_allclose(got.inverse, _mmpose_inverse(boxes, (256, 192), 1.25), rtol=1e-12)


def test_forward_and_inverse_are_inverse_and_frame_the_padded_box():
    boxes = _boxes(np.random.default_rng(2), 100)
    fwd, inv = box_to_affine(boxes, (256, 192))
    homogeneous = np.concatenate([fwd, np.tile([[[0, 0, 1.0]]], (100, 1, 1))], axis=1)
    homogeneous_inv = np.concatenate([inv, np.tile([[[0, 0, 1.0]]], (100, 1, 1))], axis=1)
    np.testing.assert_allclose(homogeneous @ homogeneous_inv, np.tile(np.eye(3), (100, 1, 1)),
                               atol=1e-9)  # fmt: skip
    # The box centre lands on the crop centre; the padded box fits, touching one pair of sides.
    centre = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, np.ones((100, 1))], axis=1)
    np.testing.assert_allclose(
        np.einsum("nij,nj->ni", fwd, centre), np.tile([96.0, 128.0], (100, 1))
    )
    pad = (boxes[:, 2:] - boxes[:, :2]) * 0.125  # 1.25 = 0.125 on each side
    corners = [boxes[:, :2] - pad, boxes[:, 2:] + pad]
    mapped = [
        np.einsum("nij,nj->ni", fwd, np.concatenate([c, np.ones((100, 1))], 1)) for c in corners
    ]
    assert (mapped[0] >= -1e-9).all() and (mapped[1] <= np.array([192, 256]) + 1e-9).all()
    touches = np.isclose(mapped[0], 0, atol=1e-6) & np.isclose(mapped[1], [192, 256], atol=1e-6)
    assert touches.any(axis=1).all()


def test_single_box_int_input_and_tiny_boxes():
    single = box_to_affine([10, 20, 110, 220], (256, 192))
    assert single.forward.shape == (2, 3) and single.inverse.shape == (2, 3)
    # A point box counts as a 1 x 1 pixel box, widened to the aspect ratio: invertible.
    tiny = box_to_affine(np.array([[5.0, 5.0, 5.0, 5.0]]), (256, 192))
    # 0 x 0 -> 1 x 1 px, widened to 3:4 -> 1 x 4/3 px, spread over 192 x 256 crop pixels.
    assert tiny.inverse[0, 0, 0] == pytest.approx(1 / 192)
    assert tiny.inverse[0, 1, 1] == pytest.approx(1 / 192)
    assert np.isfinite(tiny.forward).all()
    empty = box_to_affine(np.zeros((0, 4)), (256, 192))
    assert empty.forward.shape == (0, 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(boxes=np.zeros((3, 5))), ValueError, r"boxes must be a float array of shape"),
        (dict(boxes=np.zeros((3, 4), bool)), TypeError, r"boxes must be .*got bool \(3, 4\)"),
        (dict(boxes=[[0, 0, np.nan, 1]]), ValueError, r"boxes\[0\] is not finite"),
        (dict(padding=0.0), ValueError, r"padding must be positive and finite, got 0.0"),
        (dict(padding="big"), TypeError, r"padding must be a number"),
        (dict(input_size=(256,)), ValueError, r"input_size must be a pair of integers"),
        (dict(input_size=(0, 192)), ValueError, r"input_size must be \(height, width\) >= 1"),
    ],
)  # fmt: skip
def test_rejects_bad_arguments(kwargs, error, match):
    args = dict(boxes=np.zeros((3, 4)), input_size=(256, 192)) | kwargs
    with pytest.raises(error, match=r"^box_to_affine: " + match):
        box_to_affine(args.pop("boxes"), args.pop("input_size"), **args)


def test_refuses_gpu_boxes():
    with pytest.raises(TypeError, match=r"^box_to_affine: boxes must be a host array"):
        box_to_affine(HostCudaArray(np.zeros((2, 4))), (256, 192))
