"""The top-down path end to end (real detector, exported network), and its errors on bad input.

The network has random weights (no trained top-down checkpoint can be downloaded here): these
tests check plumbing and parity between backends, tests/estimators/test_top_down_chain.py checks
the coordinates.
"""

from __future__ import annotations

import json
from types import MappingProxyType

import cv2
import numpy as np
import pytest

import rtpose
from rtpose.estimators.top_down import TopDownConfig, TopDownPose

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def rsn18_weights(tmp_path_factory):
    from rtpose.models import create_model

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "rsn18-random.pth"
    torch.save({"state_dict": create_model("rsn18").state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def frame(sample_video):
    cap = cv2.VideoCapture(str(sample_video))
    ok, image = cap.read()
    cap.release()
    assert ok
    return image


@pytest.mark.slow
def test_onnxruntime_and_torch_backends_agree(rsn18_weights, frame, default_weights):
    ort = rtpose.PoseEstimator("rsn18", weights=rsn18_weights, backend="onnxruntime")
    pt = rtpose.PoseEstimator("rsn18", weights=rsn18_weights, backend="torch")
    assert ort.backend_name == "onnxruntime" and pt.backend_name == "torch"
    a, b = ort(frame), pt(frame)
    assert len(a) == len(b) >= 1
    for p, q in zip(a, b):
        assert p.keypoints.shape == (17, 3) and p.keypoints.dtype == np.float32
        assert np.isfinite(p.keypoints).all()
        np.testing.assert_allclose(p.box, q.box, atol=1e-3)
        # random weights give nearly flat maps: compare where the peaks are clearly decided
        np.testing.assert_allclose(p.keypoints[:, 2], q.keypoints[:, 2], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_stream_with_a_top_down_model(rsn18_weights, sample_video, default_weights):
    with rtpose.VideoPoseStream(
        sample_video, model="rsn18", weights=rsn18_weights, max_frames=2, flip_test=True
    ) as stream:
        assert stream.estimator._pose.top_down.flip_test
        frames = list(stream)
    assert len(frames) == 2
    for f in frames:
        assert set(f.timings) == {"decode", "detect", "crop", "pose", "postprocess", "latency"}
        assert len(f.persons) >= 1
        assert all(p.keypoints.shape == (17, 3) for p in f.persons)
        line = f.to_dict()
        assert len(line["persons"][0]["keypoints"]) == 17


# ------------------------------------------------------------------------------- bad input


def test_top_down_model_without_weights(default_weights):
    with pytest.raises(ValueError, match=r"rsn18 is a top-down model without bundled weights.*"
                       r"weights=PATH.*td-hm_rsn18"):  # fmt: skip
        rtpose.PoseEstimator("rsn18")


def test_top_down_input_size_the_model_does_not_take(rsn18_weights, default_weights):
    with pytest.raises(ValueError, match="does not take input size 250x192"):
        rtpose.PoseEstimator("rsn18", weights=rsn18_weights, input_size=(250, 192))


def test_top_down_options_on_a_one_stage_model(default_weights):
    with pytest.raises(ValueError, match="flip_test only apply to top-down models"):
        rtpose.PoseEstimator("yolo11n-pose", flip_test=True)
    with pytest.raises(ValueError, match="detector only apply"):
        rtpose.PoseEstimator("yolo11n-pose", detector="yolo11s-pose")


def test_detector_must_be_one_stage(rsn18_weights):
    with pytest.raises(ValueError, match="detector must be a one-stage"):
        rtpose.PoseEstimator("rsn18", weights=rsn18_weights, detector="mspn50")


class _WrongKeypoints:
    name = "wrong"
    batch_range = None  # the rest of the Backend protocol: any batch, no stream
    inputs = MappingProxyType({})
    stream_handle = None

    def close(self):
        pass

    def __init__(self, k):
        self.k = k
        self.input_names, self.output_names = ["crops"], ["heatmaps"]

    def run(self, inputs):
        return {"heatmaps": np.zeros((len(inputs["crops"]), self.k, 64, 48), np.float32)}


def test_network_with_another_keypoint_count_is_refused(frame):
    from rtpose.models import get_model_info

    info = get_model_info("rsn18")
    pose = TopDownPose(
        info, _WrongKeypoints(16), info.normalisation, lambda im: np.array([[10, 10, 90, 190, 0.9]])
    )
    with pytest.raises(ValueError, match=r"heatmaps of shape \(1, 16, 64, 48\), expected "
                       r"\(1, 17, 64, 48\) \(17 keypoints of the coco17"):  # fmt: skip
        pose(frame)


def test_detector_returning_a_bad_shape(frame):
    from rtpose.models import get_model_info

    info = get_model_info("rsn18")
    pose = TopDownPose(info, _WrongKeypoints(17), info.normalisation, lambda im: np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(N, 5\) array"):
        pose(frame)


def test_top_down_config_validation():
    with pytest.raises(ValueError, match="padding"):
        TopDownConfig(padding=0)
    with pytest.raises(ValueError, match="max_batch"):
        TopDownConfig(max_batch=0)


def test_max_batch_splits_network_calls(frame):
    from rtpose.models import get_model_info

    calls = []

    class Net(_WrongKeypoints):
        def run(self, inputs):
            calls.append(len(inputs["crops"]))
            return super().run(inputs)

    info = get_model_info("rsn18")
    boxes = np.array([[10 + 20 * i, 10, 90 + 20 * i, 190, 0.9] for i in range(5)])
    pose = TopDownPose(
        info, Net(17), info.normalisation, lambda im: boxes, TopDownConfig(max_batch=2,
                                                                            flip_test=True)
    )  # fmt: skip
    persons = pose(frame)
    assert len(persons) == 5 and calls == [4, 4, 2]


@pytest.mark.slow
def test_onnx_cache_sidecar_and_damaged_exports(rsn18_weights):
    from rtpose.assets import rtpose_home, sha256_of
    from rtpose.errors import CheckpointError
    from rtpose.models import get_model_info
    from rtpose.pipeline.loading import load_pose_backend

    info = get_model_info("rsn18")
    backend, norm = load_pose_backend(info, weights=rsn18_weights, backend="onnxruntime")
    assert backend.input_names == ["crops"] and norm == info.normalisation
    digest = sha256_of(rsn18_weights)[:16]  # other tests cache other rsn18 weights
    (onnx_path,) = (rtpose_home() / "onnx").glob(f"rsn18-256x192-{digest}-*.onnx")
    sidecar = onnx_path.with_suffix(".json")
    sidecar.write_text("{not json")  # unreadable sidecar: exported again, not trusted
    _, again = load_pose_backend(info, weights=rsn18_weights, backend="onnxruntime")
    assert again == norm
    assert json.loads(sidecar.read_text())["order"] == "rgb"  # rewritten
    onnx_path.write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=r"cached ONNX model .*rsn18-256x192.* delete it"):
        load_pose_backend(info, weights=rsn18_weights, backend="onnxruntime")
    onnx_path.unlink()  # deleting the damaged file is the documented fix
    load_pose_backend(info, weights=rsn18_weights, backend="onnxruntime")
