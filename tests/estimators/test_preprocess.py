"""The one place network inputs are built: the estimators and rtpose-build's calibration and
accuracy gate must feed a network the same tensor for the same frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtpose.backends.base import TensorSpec
from rtpose.estimators.one_stage import OneStagePose
from rtpose.estimators.preprocess import (
    PAD_VALUE,
    crop_batch,
    letterbox_batch,
    warp_channel_order,
    yolo_letterbox,
)
from rtpose.models.zoo import UNIT_RGB, get_model_info
from rtpose.ops import affine_warp, box_to_affine


@pytest.fixture
def frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(2)]


def test_letterbox_batch_is_one_warp_of_every_frame(frames):
    lb = yolo_letterbox((120, 160), (64, 64), fixed=True)
    x = letterbox_batch(frames, lb, UNIT_RGB)
    assert x.shape == (2, 3, 64, 64) and x.dtype == np.float32
    for i, frame in enumerate(frames):
        one = affine_warp(frame, lb.matrix, (64, 64), mean=(0, 0, 0), std=(255, 255, 255),
                          channel_order="rgb", border_value=PAD_VALUE)  # fmt: skip
        np.testing.assert_array_equal(x[i], one.reshape(3, 64, 64))
    # RGB frames (DALI) give the same input as their BGR twins
    rgb = letterbox_batch([f[..., ::-1].copy() for f in frames], lb, UNIT_RGB, image_order="rgb")
    np.testing.assert_array_equal(rgb, x)


def test_crop_batch_splits_boxes_by_frame(frames):
    boxes = [np.array([[10.0, 10, 60, 100, 0.9]]), np.array([[20.0, 5, 90, 110, 0.8],
                                                              [0.0, 0, 40, 40, 0.5]])]  # fmt: skip
    info = get_model_info("rsn18")
    norm = info.normalisation
    crops, inverse = crop_batch(frames, boxes, info.input_size, norm)
    assert crops.shape == (3, 3, *info.input_size) and inverse.shape == (3, 2, 3)
    for row, (f, b) in enumerate([(0, boxes[0][0]), (1, boxes[1][0]), (1, boxes[1][1])]):
        maps = box_to_affine(b[None, :4], info.input_size, padding=1.25)
        one = affine_warp(frames[f], maps.forward, info.input_size, mean=norm.mean, std=norm.std,
                          channel_order=norm.channel_order)  # fmt: skip
        np.testing.assert_array_equal(crops[row], one[0])
        np.testing.assert_allclose(inverse[row], maps.inverse[0])


def test_warp_channel_order():
    assert warp_channel_order("rgb", "bgr") == "rgb"
    assert warp_channel_order("rgb", "rgb") == "bgr"
    assert warp_channel_order("bgr", "rgb") == "rgb"


class _Recorder:
    """A stand-in for a fixed-size engine (or, with ``size=-1``, a dynamic-size ONNX): records
    its input, returns no detections."""

    name = "recorder"
    input_names, output_names = ["images"], ["preds"]
    batch_range = None
    stream_handle = None

    def __init__(self, size: int = 640):
        self.inputs = {"images": TensorSpec("images", (-1, 3, size, size), "float32")}
        self.seen = []

    def run(self, inputs):
        x = inputs["images"]
        self.seen.append(np.array(x))
        return {"preds": np.zeros((len(x), 56, 10), np.float32)}

    def close(self):
        pass


@pytest.mark.parametrize("fixed", [True, False])
def test_the_build_calibrates_on_what_the_estimator_feeds_the_network(frames, fixed):
    """rtpose-build's calibration/gate inputs for YOLO equal the one-stage estimator's input
    for the same frame: to an engine of one fixed size (TensorRT) or to the dynamic-size ONNX
    the CPU backends run (the CPU target: the rectangular letterbox)."""
    from rtpose.deploy.subject import Subject

    info = get_model_info("yolo11n-pose")
    recorder = _Recorder(640 if fixed else -1)
    OneStagePose(info, recorder)(frames[0])
    subject = Subject(info, Path("unused.onnx"), "", info.normalisation, "images", fixed)
    (built,) = subject.frames_to_inputs([frames[0]])
    assert (built.shape[2:] == (640, 640)) is fixed
    np.testing.assert_array_equal(built, recorder.seen[0])
