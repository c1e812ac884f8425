"""Calibration frames from videos and image folders, and calibration batches
(rtpose.deploy.calibration)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from rtpose.deploy.calibration import calibration_batches, calibration_frames  # noqa: E402


def _write_video(path: Path, n: int) -> None:
    """MJPEG clip whose frame i is filled with grey level 5 * i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 32))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((32, 48, 3), 5 * i, np.uint8))
    writer.release()


def test_calibration_frames_from_video_evenly_spaced(tmp_path, sample_video):
    path = tmp_path / "ramp.avi"
    _write_video(path, 41)
    frames = calibration_frames(path, count=5)
    assert [f.shape for f in frames] == [(32, 48, 3)] * 5 and frames[0].dtype == np.uint8
    levels = [round(float(f.mean()) / 5) for f in frames]  # MJPEG is lossy, levels are not
    assert levels == [0, 10, 20, 30, 40]

    real = calibration_frames(sample_video, count=3)
    assert [f.shape for f in real] == [(994, 1768, 3)] * 3
    assert not np.array_equal(real[0], real[2])


def test_calibration_frames_from_image_folder(tmp_path, caplog):
    for i in range(10):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((8, 6, 3), i, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    frames = calibration_frames(tmp_path, count=4)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 3, 6, 9]
    assert frames[0].shape == (8, 6, 3) and frames[0].dtype == np.uint8
    assert len(calibration_frames(tmp_path / "05.png", count=1)) == 1
    with caplog.at_level(logging.WARNING, logger="rtpose.deploy.calibration"):
        assert len(calibration_frames(tmp_path, count=50)) == 10
    assert "only 10 frames" in caplog.text


def test_calibration_frames_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        calibration_frames(tmp_path / "nowhere", count=2)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images")
    with pytest.raises(ValueError, match=r"calibration source .*empty has no frames"):
        calibration_frames(empty, count=2)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(ValueError, match=r"calibration source .*broken.mp4 has no frames"):
        calibration_frames(broken, count=2)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="count must be an integer >= 1"):
            calibration_frames(empty, count=bad)


def test_calibration_batches_shapes_and_crops():
    frames = [np.full((20, 30, 3), i, np.uint8) for i in range(5)]
    originals = [f.copy() for f in frames]

    def crops(frame):  # a top-down model: frame i shows i % 3 persons
        n = int(frame[0, 0, 0]) % 3
        return np.full((n, 3, 16, 12), frame[0, 0, 0], np.float32)

    batches = calibration_batches(frames, crops, batch=3)  # 0+1+2+0+1 = 4 crops
    assert [b.shape for b in batches] == [(3, 3, 16, 12), (1, 3, 16, 12)]
    assert [int(b[i, 0, 0, 0]) for b in batches for i in range(len(b))] == [1, 2, 2, 4]
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in batches)
    for f, o in zip(frames, originals):
        np.testing.assert_array_equal(f, o)

    with pytest.raises(ValueError, match="batch must be an integer >= 1"):
        calibration_batches(frames, crops, batch=0)
    with pytest.raises(ValueError, match=r"float32 array; for frame 0 it returned float64"):
        calibration_batches(frames, lambda f: np.zeros((1, 3, 4, 4)), batch=2)
    with pytest.raises(ValueError, match="no samples"):
        calibration_batches(frames, lambda f: np.zeros((0, 3, 4, 4), np.float32), batch=2)
    sizes = iter([(1, 3, 4, 4), (1, 3, 8, 8)])
    with pytest.raises(ValueError, match="one input size"):
        calibration_batches(frames[:2], lambda f: np.zeros(next(sizes), np.float32), batch=2)
