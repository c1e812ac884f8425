"""The top-down chain without trained weights: real frames, real detections, a stand-in network.

The stand-in network checks that every crop it receives is the MMPose crop of its person box
(computed here independently with cv2.warpAffine), then emits the codec's own target heatmaps for
keypoints planted at known crop coordinates. The pipeline's crop -> decode -> inverse-transform
chain must return those keypoints in frame pixels: within 0.5 px, for every codec.

Planted points lie where each codec is exact (MSRA: whole heatmap pixels; Megvii: heatmap pixel
centres, its "+0.5" convention; DARK and UDP: anywhere, they refine to sub-pixel), so the 0.5 px
bound tests the chain, not the codecs' quantisation (that is tests/codecs' business).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import cv2
import numpy as np
import pytest

from rtpose.estimators.top_down import TopDownConfig, TopDownPose, YoloPersonDetector
from rtpose.models.zoo import CodecSpec, get_model_info
from rtpose.pipeline.loading import load_one_stage
from rtpose.skeletons import get_skeleton

CODECS = {
    "msra": CodecSpec("msra", sigma=2.0, flip_shift=True),
    "megvii": CodecSpec("megvii", kernel_sizes=(11, 9, 7, 5), decode_kernel=5),
    "dark": CodecSpec("dark", sigma=2.0, decode_kernel=11, flip_shift=True),
    "udp": CodecSpec("udp", sigma=2.0, decode_kernel=11),
}


def mmpose_crop_matrix(box, input_hw, padding=1.25):
    """Frame -> crop map of MMPose's top-down pipeline (bbox_xyxy2cs, _fix_aspect_ratio,
    get_warp_matrix without rotation), written out independently of rtpose.ops."""
    x1, y1, x2, y2 = box[:4]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = (x2 - x1) * padding, (y2 - y1) * padding
    in_h, in_w = input_hw
    aspect = in_w / in_h
    if w > h * aspect:
        h = w / aspect
    else:
        w = h * aspect
    s = in_w / w
    forward = np.array([[s, 0, in_w / 2 - s * cx], [0, s, in_h / 2 - s * cy]])
    return forward, (cx, cy, w, h)


def crop_to_frame(points, box, input_hw):
    """MMPose's ``keypoints / input_size * scale + center - 0.5 * scale``."""
    _, (cx, cy, w, h) = mmpose_crop_matrix(box, input_hw)
    in_h, in_w = input_hw
    out = np.empty_like(points)
    out[..., 0] = points[..., 0] / in_w * w + cx - 0.5 * w
    out[..., 1] = points[..., 1] / in_h * h + cy - 0.5 * h
    return out


class StandInNetwork:
    """Emits the codec's target heatmaps of planted crop keypoints; checks the crops it gets."""

    name = "stand-in"
    batch_range = None  # the rest of the Backend protocol: any batch, no stream
    inputs = MappingProxyType({})
    stream_handle = None

    def close(self):
        pass

    def __init__(self, info, codec, flip_index):
        self.input_names, self.output_names = ["crops"], ["heatmaps"]
        self.info, self.codec, self.flip_index = info, codec, np.asarray(flip_index)
        self.frame = self.boxes = self.planted = None
        self.flip = False
        self.calls = 0

    def expect(self, frame, boxes, planted, *, flip=False):
        self.frame, self.boxes, self.planted, self.flip = frame, boxes, planted, flip

    def _targets(self, points):
        heatmaps = self.codec.encode(points).heatmaps
        return heatmaps[-1] if heatmaps.ndim == 5 else heatmaps  # Megvii: the finest level

    def run(self, inputs):
        self.calls += 1
        crops = inputs["crops"]
        n = len(self.boxes)
        assert crops.shape == ((2 * n if self.flip else n), 3, *self.info.input_size)
        assert crops.dtype == np.float32
        in_h, in_w = self.info.input_size
        rgb = self.frame[..., ::-1].astype(np.float32)
        mean, std = (
            np.float32(self.info.normalisation.mean),
            np.float32(self.info.normalisation.std),
        )
        for i, box in enumerate(self.boxes):
            forward, _ = mmpose_crop_matrix(box, self.info.input_size)
            want = cv2.warpAffine(rgb, forward, (in_w, in_h), flags=cv2.INTER_LINEAR)
            want = ((want - mean) / std).transpose(2, 0, 1)
            inner = (slice(None), slice(2, -2), slice(2, -2))  # cv2 and rtpose differ at borders
            np.testing.assert_allclose(crops[i][inner], want[inner], atol=2e-2)
            if self.flip:
                np.testing.assert_array_equal(crops[n + i], crops[i][..., ::-1])
        maps = self._targets(self.planted)  # (N, K, h, w)
        if self.flip:
            mirrored = self.planted.copy()
            mirrored[..., 0] = in_w - 1 - mirrored[..., 0]  # mirror of the crop's pixel grid
            mirrored = mirrored[:, self.flip_index]  # left <-> right channels
            maps = np.concatenate([maps, self._targets(mirrored)])
        return {"heatmaps": maps.astype(np.float32)}


def plant(kind, rng, n, k, info):
    """(N, K, 2) crop coordinates where codec ``kind`` is exact, inside the map's interior."""
    hm_h, hm_w = info.heatmap_size
    if kind in ("msra", "megvii"):
        cells = np.stack(
            [rng.integers(3, hm_w - 3, (n, k)), rng.integers(3, hm_h - 3, (n, k))], axis=-1
        ).astype(np.float64)
        offset = 0.5 if kind == "megvii" else 0.0  # Megvii decodes pixel centres (x + 0.5)
        return (cells + offset) * info.stride
    lo = 5.0 * info.stride  # DARK's 5x5 stencil and blur stay clear of the border
    return np.stack(
        [rng.uniform(lo, info.input_size[1] - lo, (n, k)),
         rng.uniform(lo, info.input_size[0] - lo, (n, k))], axis=-1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def frames(sample_video):
    cap = cv2.VideoCapture(str(sample_video))
    out = []
    for index in range(40):
        ok, frame = cap.read()
        assert ok
        if index % 13 == 0:
            out.append(frame)
    cap.release()
    return out  # frames 0, 13, 26, 39


@pytest.fixture(scope="module")
def detector(default_weights):
    return YoloPersonDetector(load_one_stage("yolo11n-pose", backend="onnxruntime"))


def make_pose(kind, detector, *, flip=False):
    info = dataclasses.replace(get_model_info("rsn18"), codec=CODECS[kind])
    skeleton = get_skeleton(info.skeleton)
    net = StandInNetwork(info, info.codec.build(info.input_size, info.heatmap_size),
                         skeleton.flip_index)  # fmt: skip
    pose = TopDownPose(info, net, info.normalisation, detector, TopDownConfig(flip_test=flip))
    return pose, net


@pytest.mark.parametrize("kind", sorted(CODECS))
def test_chain_returns_planted_keypoints(kind, frames, detector):
    pose, net = make_pose(kind, detector)
    rng = np.random.default_rng(len(kind))
    checked = 0
    for frame in frames:
        boxes = pose.detect(frame)
        assert len(boxes) >= 1, "the sample video shows people in every frame"
        planted = plant(kind, rng, len(boxes), 17, pose.info)
        net.expect(frame, boxes, planted)
        persons = pose(frame)
        assert len(persons) == len(boxes)
        want = np.stack([crop_to_frame(p, b, pose.info.input_size) for p, b in zip(planted, boxes)])
        got = np.stack([p.keypoints for p in persons])
        err = np.abs(got[..., :2] - want).max()
        assert err < 0.5, f"{kind}: max error {err:.3f} px"
        assert np.all(got[..., 2] > 0.5)  # target peaks: 1 (Gaussian) or 255 / 255 + 0.5
        for p, b in zip(persons, boxes):
            np.testing.assert_allclose(p.box, b[:4])
            assert p.score == pytest.approx(b[4])
        checked += len(boxes)
    assert checked >= 4 and net.calls == len(frames)


@pytest.mark.parametrize("kind", ["megvii", "msra", "udp"])
def test_flip_test_keeps_planted_keypoints(kind, frames, detector):
    """The mirrored crops ride in the same batch; on each codec's exact grid the flipped-back
    targets land on the originals (MSRA: rounding + the 1 px shift; Megvii: truncation; UDP:
    the (size - 1) scaling), so the flip-tested chain keeps the 0.5 px bound."""
    pose, net = make_pose(kind, detector, flip=True)
    frame = frames[1]
    boxes = pose.detect(frame)
    planted = plant(kind, np.random.default_rng(7), len(boxes), 17, pose.info)
    net.expect(frame, boxes, planted, flip=True)
    got = np.stack([p.keypoints[:, :2] for p in pose(frame)])
    want = np.stack([crop_to_frame(p, b, pose.info.input_size) for p, b in zip(planted, boxes)])
    assert np.abs(got - want).max() < 0.5


def test_dark_flip_error_stays_within_its_bound(frames, detector):
    """DARK (MSRA convention, shifted flip): the flipped-back map sits 0.75 heatmap px left of
    the original, the 1 px shift puts it 0.25 px right, so the merged peak is off by about
    0.125 heatmap px; asserted: at most 0.25 heatmap px, in frame pixels."""
    pose, net = make_pose("dark", detector, flip=True)
    frame = frames[2]
    boxes = pose.detect(frame)
    planted = plant("dark", np.random.default_rng(3), len(boxes), 17, pose.info)
    net.expect(frame, boxes, planted, flip=True)
    got = np.stack([p.keypoints[:, :2] for p in pose(frame)])
    for g, p, b in zip(got, planted, boxes):
        _, (_, _, w, _) = mmpose_crop_matrix(b, pose.info.input_size)
        frame_px_per_input_px = w / pose.info.input_size[1]
        err = np.abs(g - crop_to_frame(p, b, pose.info.input_size)).max()
        assert err <= 0.25 * pose.info.stride * frame_px_per_input_px


def test_frame_without_people_skips_the_network(frames):
    info = get_model_info("rsn18")
    net = StandInNetwork(info, info.codec.build(info.input_size, info.heatmap_size), range(17))
    pose = TopDownPose(info, net, info.normalisation, lambda im: np.zeros((0, 5)))
    timings = {}
    assert pose(frames[0], timings) == []
    assert net.calls == 0
    assert set(timings) == {"detect", "crop", "pose", "postprocess"}
