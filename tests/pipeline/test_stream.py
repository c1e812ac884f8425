"""VideoPoseStream and PoseEstimator on the sample video, and their errors on bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import rtpose
from rtpose.errors import CheckpointError, DecodeError, UnknownModelError


@pytest.fixture(scope="module")
def estimator(sample_video):
    return rtpose.PoseEstimator()


def test_stream_yields_frames_in_order_with_people(sample_video):
    with rtpose.VideoPoseStream(sample_video, max_frames=6, return_images=True) as stream:
        assert stream.frame_count == 6
        frames = list(stream)
    assert [f.index for f in frames] == list(range(6))
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))
    assert set(frames[0].timings) == {"decode", "preprocess", "model", "postprocess", "latency"}
    for f in frames:
        assert f.image.shape == (994, 1768, 3)
        assert len(f.persons) >= 1
        for p in f.persons:
            assert isinstance(p, rtpose.Person) and p.track_id is None
            assert p.keypoints.shape == (17, 3) and p.keypoints.dtype == np.float32
            x1, y1, x2, y2 = p.box
            assert 0 <= x1 < x2 <= 1768 and 0 <= y1 < y2 <= 994
            assert 0.25 < p.score <= 1.0


def test_stream_matches_single_image_estimator(sample_video, estimator):
    with rtpose.VideoPoseStream(sample_video, max_frames=2, return_images=True) as stream:
        frames = list(stream)
    for f in frames:
        single = estimator(f.image)
        assert len(single) == len(f.persons)
        for a, b in zip(single, f.persons):
            np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-4)


def test_frames_without_images_by_default(sample_video):
    with rtpose.VideoPoseStream(sample_video, max_frames=1) as stream:
        (frame,) = list(stream)
    assert frame.image is None
    line = frame.to_dict()
    assert set(line) == {"frame", "pts", "persons", "timings_ms"}
    assert len(line["persons"][0]["keypoints"]) == 17


def test_stream_iterates_once(sample_video):
    stream = rtpose.VideoPoseStream(sample_video, max_frames=1)
    list(stream)
    with pytest.raises(RuntimeError, match="only once"):
        list(stream)


def test_estimator_reads_image_files(estimator, sample_video, tmp_path):
    import cv2

    cap = cv2.VideoCapture(str(sample_video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), frame)
    from_file = estimator(path)
    from_array = estimator(frame)
    assert len(from_file) == len(from_array) >= 1


# ------------------------------------------------------------------------------- bad input


def test_missing_video():
    with pytest.raises(FileNotFoundError):
        rtpose.VideoPoseStream("/nonexistent/clip.mp4")


def test_directory_instead_of_video(tmp_path):
    with pytest.raises(IsADirectoryError):
        rtpose.VideoPoseStream(tmp_path)


def test_non_video_file(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 100)
    with pytest.raises(DecodeError):
        rtpose.VideoPoseStream(bad)


def test_truncated_video_raises_after_the_good_frames(sample_video, tmp_path):
    data = sample_video.read_bytes()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: int(len(data) * 0.7)])  # the sample's index is at the front: it opens
    seen = []
    with rtpose.VideoPoseStream(bad) as stream, pytest.raises(DecodeError, match="truncated"):
        for f in stream:
            seen.append(f.index)
    assert seen == list(range(len(seen))) and 100 < len(seen) < 230


def test_unknown_model(sample_video):
    with pytest.raises(UnknownModelError, match=r"available models: .*yolo11n-pose"):
        rtpose.VideoPoseStream(sample_video, model="yolo99-pose")


def test_model_without_default_weights_needs_weights(sample_video):
    with pytest.raises(ValueError, match="pass weights=PATH"):
        rtpose.PoseEstimator("yolo11s-pose")


def test_corrupt_weights(tmp_path):
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(CheckpointError):
        rtpose.PoseEstimator(weights=bad)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        rtpose.PoseEstimator(backend="cuda")


def test_bad_image(estimator, tmp_path):
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        estimator(np.zeros((10, 10), np.uint8))
    bad = tmp_path / "x.png"
    bad.write_text("no")
    with pytest.raises(DecodeError, match="not a readable image"):
        estimator(bad)


def test_numpy_fallback_gives_the_same_poses(estimator, sample_video, monkeypatch, caplog):
    """Without the native extension the whole path still runs, on the numpy reference warp."""

    import cv2

    from rtpose._native import NativeLoader
    from rtpose.ops import affine

    cap = cv2.VideoCapture(str(sample_video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    native = estimator(frame)
    monkeypatch.setattr(
        affine, "_native", NativeLoader("affine_warp", affine.logger, force_missing=True)
    )
    fallback = estimator(frame)
    assert "numpy reference" in caplog.text
    assert len(native) == len(fallback) >= 1
    for a, b in zip(native, fallback):
        # float32 (C++) vs float64 (numpy) interpolation: ~1e-6 input differences
        np.testing.assert_allclose(a.keypoints[:, :2], b.keypoints[:, :2], atol=0.05)


def test_closing_the_stream_closes_its_backends(sample_video):
    """VideoPoseStream.close() releases the network's backend at once (not at garbage
    collection): a later run is refused with InferenceError."""
    from rtpose.errors import InferenceError

    with rtpose.VideoPoseStream(sample_video, max_frames=1, pipelined=False) as stream:
        assert len(list(stream)) == 1
    backend = stream.estimator._pose.backend
    with pytest.raises(InferenceError, match="closed"):
        backend.run({backend.input_names[0]: np.zeros((1, 3, 64, 64), np.float32)})
    stream.close()  # idempotent
