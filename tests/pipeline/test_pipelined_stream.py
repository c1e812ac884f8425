"""The pipelined VideoPoseStream: same results as the synchronous mode, several sources batched
together, live sources with latest-frame semantics, errors and shutdown, tracking options.

Frames are the sample video's first frames at 640x360 in an ArraySource (real people, small
frames: each YOLO11n-pose call takes ~40 ms on the CI CPU).
"""

from __future__ import annotations

import threading
import time
import traceback

import cv2
import numpy as np
import pytest

import rtpose
from rtpose.errors import BackendUnavailableError
from rtpose.video import ArraySource


@pytest.fixture(scope="module")
def small_frames(sample_video):
    cap = cv2.VideoCapture(str(sample_video))
    frames = []
    while len(frames) < 24:
        ok, image = cap.read()
        assert ok
        frames.append(cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def _poses(frames):
    return [(f.source, f.index, [(p.box, p.keypoints.tobytes(), p.track_id) for p in f.persons])
            for f in frames]  # fmt: skip


def _pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rtpose-")]


def test_pipelined_and_synchronous_modes_give_identical_results(small_frames, default_weights):
    results = {}
    for pipelined in (True, False):
        with rtpose.VideoPoseStream(
            ArraySource(small_frames[:8]), pipelined=pipelined, track=True, smooth=True
        ) as stream:
            results[pipelined] = list(stream)
    assert [f.index for f in results[True]] == list(range(8))
    assert sum(len(f.persons) for f in results[True]) >= 8
    # bit-identical boxes, keypoints and track ids
    assert _poses(results[True]) == _poses(results[False])
    assert all(p.track_id is not None for f in results[True] for p in f.persons)
    assert not _pipeline_threads()


def test_several_sources_are_batched_and_match_single_source_runs(small_frames, default_weights):
    a, b = small_frames[:5], small_frames[10:13]  # different lengths: source 1 ends first
    with rtpose.VideoPoseStream([ArraySource(a), ArraySource(b)], pipelined=True) as stream:
        both = list(stream)
    assert [(f.source, f.index) for f in both] == [
        (0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2), (0, 3), (0, 4)
    ]  # fmt: skip
    assert stream.stats.frames == 8
    for src, frames in ((0, a), (1, b)):
        with rtpose.VideoPoseStream(ArraySource(frames)) as single:
            alone = list(single)
        mine = [f for f in both if f.source == src]
        assert len(mine) == len(alone)
        for x, y in zip(mine, alone):
            assert len(x.persons) == len(y.persons)
            for p, q in zip(x.persons, y.persons):
                # batch 2 vs batch 1 may change float rounding inside ONNX Runtime, not results
                np.testing.assert_allclose(p.keypoints[:, :2], q.keypoints[:, :2], atol=0.05)
                np.testing.assert_allclose(p.box, q.box, atol=0.05)


@pytest.mark.slow
def test_live_source_drops_stale_frames_and_latency_stays_bounded(small_frames, default_weights):
    # 120 frames at 100 fps = 1.2 s of video; the network needs ~40 ms per frame here, so most
    # frames must be dropped; without dropping, the last frame would wait ~3.6 s.
    source = ArraySource(small_frames, fps=100.0, live=True, repeat=5)
    with rtpose.VideoPoseStream(source) as stream:
        frames = list(stream)
        stats = stream.stats
    assert stream.is_live
    assert stats.dropped > 0
    assert stats.frames + stats.dropped == 120  # every frame is either processed or dropped
    indices = [f.index for f in frames]
    assert indices == sorted(indices) and indices[-1] == 119  # newest frames, in order
    latency = [f.timings["latency"] for f in frames]
    # bounded by the frames in flight (a couple of network calls), not by the video length
    assert max(latency) < 1000.0, latency
    assert (
        np.median(latency[len(latency) // 2 :]) < 3 * np.median(latency[: len(latency) // 2]) + 200
    )


class _Broken:
    """A live-or-file frame source whose decoder fails after ``n`` frames."""

    fps, frame_count, size, is_live = 30.0, None, (640, 360), False

    def __init__(self, frames, n):
        self.frames, self.n, self.closed = frames, n, False

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        return self._decode()

    def _decode(self):
        for i, image in enumerate(self.frames):
            if i == self.n:
                raise_decoder_failure()
            yield rtpose.video.Frame(i, i / 30, image)


def raise_decoder_failure():
    raise RuntimeError("decoder exploded")


@pytest.mark.parametrize("pipelined", [True, False])
def test_an_error_in_a_source_reaches_the_caller_with_its_traceback(
    small_frames, default_weights, pipelined
):
    source = _Broken(small_frames[:6], 3)
    got = []
    with (
        pytest.raises(RuntimeError, match="decoder exploded") as info,
        rtpose.VideoPoseStream(source, pipelined=pipelined) as stream,
    ):
        for f in stream:
            got.append(f.index)
    assert got == [0, 1, 2]
    frames = [entry.name for entry in traceback.extract_tb(info.value.__traceback__)]
    assert "raise_decoder_failure" in frames  # the original frame, not a re-raise
    assert source.closed
    assert not _pipeline_threads()


def test_an_error_in_a_stage_stops_the_pipeline(small_frames, default_weights, monkeypatch):
    from rtpose.pipeline import steps

    calls = []

    def failing_follow(self, source, frame, persons):
        calls.append(frame.index)
        if frame.index == 2:
            raise ValueError("tracker failed on frame 2")
        return persons

    monkeypatch.setattr(steps.Followers, "follow", failing_follow)
    got = []
    with (
        pytest.raises(ValueError, match="tracker failed on frame 2"),
        rtpose.VideoPoseStream(ArraySource(small_frames[:10]), pipelined=True) as stream,
    ):
        for f in stream:
            got.append(f.index)
    assert calls[:3] == [0, 1, 2]
    assert got == [0, 1]
    assert not _pipeline_threads()


def test_leaving_early_stops_every_thread(small_frames, default_weights):
    with rtpose.VideoPoseStream(ArraySource(small_frames, repeat=10), pipelined=True) as stream:
        frames = iter(stream)
        assert [next(frames).index, next(frames).index] == [0, 1]
        assert _pipeline_threads()  # still running while the stream is open
    deadline = time.monotonic() + 5
    while _pipeline_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pipeline_threads()


def test_track_ids_are_stable_on_the_sample(small_frames, default_weights):
    with rtpose.VideoPoseStream(ArraySource(small_frames[:12]), track=True) as stream:
        frames = list(stream)
    ids = [sorted(p.track_id for p in f.persons) for f in frames]
    assert ids[0] and all(i is not None for frame_ids in ids for i in frame_ids)
    # the same people throughout: the IDs of the first frame recur in (nearly) every frame
    assert sum(set(ids[0]) <= set(frame_ids) for frame_ids in ids) >= len(ids) - 1


def test_smoothing_reduces_jitter_on_the_sample(small_frames, default_weights):
    def acceleration(frames):
        tracks = {}
        for f in frames:
            for p in f.persons:
                tracks.setdefault(p.track_id, []).append(p.keypoints[:, :2])
        values = [np.abs(np.diff(np.stack(t), n=2, axis=0)).mean() for t in tracks.values()
                  if len(t) >= 6]  # fmt: skip
        return float(np.mean(values))

    runs = {}
    for smooth in (False, True):
        with rtpose.VideoPoseStream(
            ArraySource(small_frames[:16]), track=True, smooth=smooth, pipelined=False
        ) as stream:
            runs[smooth] = list(stream)
    assert acceleration(runs[True]) < acceleration(runs[False])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"smooth": True}, "needs track=True"),
        ({"detect_every": 3, "track": True}, "only applies to top-down models"),
        ({"detect_every": 0}, "detect_every must be an int >= 1"),
        ({"precision": "fp16", "backend": "onnxruntime"}, "fp16 is not faster than fp32"),
        ({"precision": "int8", "backend": "torch"}, "does not apply to backend='torch'"),
        ({"device": "tpu"}, "device must be"),
        ({"max_frames": 0}, "max_frames must be >= 1"),
        ({"tracker": rtpose.TrackerConfig()}, "pass track=True"),
    ],
)
def test_bad_options(small_frames, kwargs, message):
    with pytest.raises(ValueError, match=message):
        rtpose.VideoPoseStream(ArraySource(small_frames[:2]), **kwargs)


def test_empty_source_list():
    with pytest.raises(ValueError, match="empty list"):
        rtpose.VideoPoseStream([])


def test_tensorrt_backend_without_a_gpu_names_the_alternatives(small_frames, default_weights):
    from rtpose.cuda.probe import gpu_status

    if gpu_status().available:
        pytest.skip("a GPU is present")
    with pytest.raises(BackendUnavailableError, match="backend='onnxruntime'"):
        rtpose.VideoPoseStream(ArraySource(small_frames[:2]), backend="tensorrt")


@pytest.fixture(scope="module")
def rsn18_weights(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from rtpose.models import create_model

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "rsn18-random.pth"
    torch.save({"state_dict": create_model("rsn18").state_dict()}, path)
    return path


def _peaked_heatmaps(self, crops):
    """A stand-in network: one confident peak per keypoint, spread over the crop, so the
    decoded keypoints outline the person box (random weights give flat, unconfident maps)."""
    k, (h, w) = 17, self.info.heatmap_size
    maps = np.zeros((len(crops), k, h, w), np.float32)
    for j in range(k):
        y = int(h * (0.15 + 0.7 * (j // 4) / 4))
        x = int(w * (0.2 + 0.6 * (j % 4) / 3))
        maps[:, j, y, x] = 1.0
    return maps


@pytest.mark.slow
def test_top_down_detects_every_n_frames_and_tracks_in_between(
    small_frames, rsn18_weights, default_weights, monkeypatch
):
    from rtpose.estimators.top_down import TopDownPose

    yolo = rtpose.PoseEstimator()
    boxes = {}

    def detector(image):
        key = image.tobytes()[:4096]
        if key not in boxes:
            boxes[key] = np.array([(*p.box, p.score) for p in yolo(image)])
        calls.append(1)
        return boxes[key]

    monkeypatch.setattr(TopDownPose, "infer", _peaked_heatmaps)
    runs = {}
    for every in (1, 4):
        calls = []
        with rtpose.VideoPoseStream(
            ArraySource(small_frames[:8]), "rsn18", weights=rsn18_weights, detector=detector,
            track=True, detect_every=every, flip_test=False,
        ) as stream:  # fmt: skip
            runs[every] = list(stream)
        assert len(calls) == (8 if every == 1 else 2)  # frames 0 and 4 only
    for every, frames in runs.items():
        assert [f.index for f in frames] == list(range(8))
        assert all(len(f.persons) == len(runs[1][0].persons) >= 1 for f in frames), every
        ids = {tuple(sorted(p.track_id for p in f.persons)) for f in frames}
        assert len(ids) == 1, f"detect_every={every}: track ids changed: {ids}"
    # between detections the people are followed: keypoints stay near the detected ones
    for f1, f4 in zip(runs[1], runs[4]):
        for p, q in zip(
            sorted(f1.persons, key=lambda p: p.box[0]), sorted(f4.persons, key=lambda p: p.box[0])
        ):
            assert np.abs(p.keypoints[:, :2] - q.keypoints[:, :2]).mean() < 25.0


def test_closing_a_live_file_mid_stream_stops_cleanly(sample_video, default_weights):
    # the reader thread is inside OpenCV's read() or its pacing sleep when the stream closes:
    # the decoder must be released only after that read (else libavcodec aborts the process)
    with rtpose.VideoPoseStream(sample_video, live=True) as stream:
        frames = iter(stream)
        first = next(frames)
        assert first.index == 0 and stream.is_live
    assert not _pipeline_threads()
    assert all(s._cap is None for s in stream.sources)  # OpenCV released the decoder
