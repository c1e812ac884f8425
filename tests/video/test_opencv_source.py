"""OpenCVSource / open_source: frame order, timestamps, and one clear error per kind of bad input.

Observed with opencv-python-headless 5.0 (FFmpeg backend) on the sample (VP9 in MP4, 'moov' atom
before 'mdat'): CAP_PROP_FRAME_COUNT is 230 for the intact file and also for every truncated or
damaged copy (the index survives at the front), read() simply returns False early (83 frames for
the first 40% of the bytes, 154 for the first 70%, ~120 for random bytes over the middle), and
keeps returning False. Random bytes at 70% of the file decode all 230 frames, with visibly damaged
pixels from frame 154 on: the VP9 decoder conceals that damage, so it cannot be detected.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtpose.errors import BackendUnavailableError, DecodeError
from rtpose.video import Frame, FrameSource, OpenCVSource, open_source

SAMPLE_FRAMES = 230
SAMPLE_SIZE = (1768, 994)


def _colour(i: int) -> tuple[int, int, int]:
    return (i * 23 % 256, 255 - i * 23 % 256, i * 67 % 256)


def _write_clip(path: Path, n: int = 10, size: tuple[int, int] = (64, 48), fps: float = 10.0):
    """Write ``n`` frames, frame i filled with _colour(i) and its index drawn in; return them."""
    fourcc = {".avi": "MJPG", ".mp4": "mp4v"}[path.suffix]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"cv2.VideoWriter could not open {path}"
    frames = []
    for i in range(n):
        img = np.empty((size[1], size[0], 3), np.uint8)
        img[:] = _colour(i)
        cv2.putText(img, str(i), (4, size[1] - 8), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
        writer.write(img)
        frames.append(img)
    writer.release()
    return frames


def _read_all(source: OpenCVSource) -> tuple[list[int], list[float]]:
    """Drain a source keeping only indices and pts (full sample frames are 5 MB each)."""
    indices, pts = [], []
    for frame in source:
        indices.append(frame.index)
        pts.append(frame.pts)
    return indices, pts


def _write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    out = tmp_path / name
    out.write_bytes(data)
    return out


# -- good input ------------------------------------------------------------------------------


def test_sample_reads_all_frames_in_order(sample_video):
    with OpenCVSource(sample_video) as src:
        assert isinstance(src, FrameSource)
        assert src.fps == pytest.approx(30.0)
        assert src.frame_count == SAMPLE_FRAMES
        assert src.size == SAMPLE_SIZE
        assert not src.is_live
        first = next(src)
        assert first.index == 0 and first.pts == 0.0
        assert first.image.shape == (SAMPLE_SIZE[1], SAMPLE_SIZE[0], 3)
        assert first.image.dtype == np.uint8 and first.hw == SAMPLE_SIZE[::-1]
        indices, pts = _read_all(src)
    assert [0, *indices] == list(range(SAMPLE_FRAMES))
    pts = [first.pts, *pts]
    assert all(b > a for a, b in itertools.pairwise(pts)), "pts must increase"
    assert pts[-1] == pytest.approx((SAMPLE_FRAMES - 1) / 30.0, abs=1e-3)


@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_written_clip_round_trips_in_order(tmp_path, ext):
    path = tmp_path / f"clip{ext}"
    written = _write_clip(path, n=10, fps=10.0)
    # decoder="opencv": with DALI installed, device="cpu" alone decodes MJPEG with DALI.
    with open_source(path, device="cpu", decoder="opencv") as src:
        assert isinstance(src, OpenCVSource)
        assert src.size == (64, 48) and src.fps == pytest.approx(10.0)
        assert src.frame_count == 10
        frames = list(src)
    assert [f.index for f in frames] == list(range(10))
    assert [f.pts for f in frames] == pytest.approx([i / 10.0 for i in range(10)], abs=1e-6)
    for f in frames:
        # Lossy codecs: identify each decoded frame by its nearest written frame.
        errors = [np.abs(f.image.astype(int) - w).mean() for w in written]
        assert int(np.argmin(errors)) == f.index
        assert errors[f.index] < 12.0


def test_iteration_after_close_and_after_end(tmp_path):
    path = tmp_path / "clip.avi"
    _write_clip(path, n=3)
    src = OpenCVSource(path)
    assert len(list(src)) == 3
    assert list(src) == []  # exhausted: a single-pass iterator, like a file
    src.close()
    src.close()  # idempotent

    src = OpenCVSource(path)
    src.close()
    with pytest.raises(ValueError, match="closed"):
        next(src)


def test_live_flag_on_a_file_hides_the_frame_count(tmp_path):
    path = tmp_path / "clip.avi"
    _write_clip(path, n=3)
    with OpenCVSource(path, live=True) as src:
        assert src.is_live and src.frame_count is None
        assert [f.pts for f in src] == [0.0, pytest.approx(0.1), pytest.approx(0.2)]


def test_frame_validates_its_image():
    frame = Frame(index=0, pts=0.0, image=np.zeros((48, 64, 3), np.uint8))
    assert frame.hw == (48, 64)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        Frame(index=0, pts=0.0, image=np.zeros((48, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        Frame(index=0, pts=0.0, image=np.zeros((48, 64, 3), np.float32))


# -- open_source ------------------------------------------------------------------------------


def test_open_source_gpu_is_not_available_yet(tmp_path):
    with pytest.raises(BackendUnavailableError, match="device='cpu'"):
        open_source(tmp_path / "clip.mp4", device="gpu")


def test_open_source_rejects_unknown_device(tmp_path):
    with pytest.raises(ValueError, match="'cpu', 'gpu', 'auto'"):
        open_source(tmp_path / "clip.mp4", device="cuda")  # type: ignore[arg-type]


# -- bad input: each fails in the constructor with its own exception --------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        OpenCVSource(path)
    assert str(path) in str(info.value)


def test_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory") as info:
        OpenCVSource(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(DecodeError, match="text file") as info:
        OpenCVSource(path)
    message = str(info.value)
    assert str(path) in message and "as a video" in message and "MP4" in message


@pytest.mark.parametrize("name", ["still.png", "still.mp4"])
def test_still_image_is_not_a_video(tmp_path, name):
    png = tmp_path / "made.png"
    assert cv2.imwrite(str(png), np.zeros((48, 64, 3), np.uint8))
    path = tmp_path / name
    shutil.move(png, path)
    with pytest.raises(DecodeError, match="still image") as info:
        OpenCVSource(path)
    assert str(path) in str(info.value) and "PoseEstimator" in str(info.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(DecodeError, match=r"empty \(0 bytes\)") as info:
        OpenCVSource(path)
    assert str(path) in str(info.value)


def test_zero_frame_avi(tmp_path):
    path = tmp_path / "zero.avi"
    _write_clip(path, n=0)
    assert path.stat().st_size > 0  # a valid container holding no frames
    with pytest.raises(DecodeError, match="contains no frames") as info:
        OpenCVSource(path)
    assert str(path) in str(info.value)


def test_zero_frame_mp4(tmp_path):
    # mp4v with no frames: FFmpeg cannot even open it (no usable index), a clear error all the same.
    path = tmp_path / "zero.mp4"
    _write_clip(path, n=0)
    with pytest.raises(DecodeError, match="no readable video stream") as info:
        OpenCVSource(path)
    assert str(path) in str(info.value)


def test_mp4_truncated_before_its_index_fails_to_open(tmp_path):
    # OpenCV's mp4v writer puts the 'moov' index at the end: cutting the file loses it.
    path = tmp_path / "clip.mp4"
    _write_clip(path, n=10)
    data = path.read_bytes()
    cut = _write_bytes(tmp_path, "cut.mp4", data[: len(data) * 7 // 10])
    with pytest.raises(DecodeError, match="moov"):
        OpenCVSource(cut)


def test_camera_that_does_not_exist():
    with pytest.raises(DecodeError, match="cannot open camera 99"):
        OpenCVSource(99)
    with pytest.raises(DecodeError, match="cannot open camera 99"):
        OpenCVSource("99")
    with pytest.raises(FileNotFoundError, match="/dev/video99"):
        OpenCVSource("/dev/video99")


def test_bad_uri_types():
    with pytest.raises(ValueError, match=">= 0"):
        OpenCVSource(-1)
    with pytest.raises(TypeError, match="bool"):
        OpenCVSource(True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        OpenCVSource(1.5)  # type: ignore[arg-type]


# -- truncated and corrupt files: good frames first, then DecodeError --------------------------


def _decode_until_error(path: Path) -> tuple[int, DecodeError]:
    """Iterate ``path``; return how many frames came out before the DecodeError."""
    n = 0
    with OpenCVSource(path) as src, pytest.raises(DecodeError) as info:
        for frame in src:
            assert frame.index == n
            n += 1
    return n, info.value


@pytest.mark.parametrize("keep", [0.4, 0.7], ids=["first-40pct", "minus-last-30pct"])
def test_truncated_sample(tmp_path, sample_video, keep):
    data = sample_video.read_bytes()
    path = _write_bytes(tmp_path, "cut.mp4", data[: int(len(data) * keep)])
    with OpenCVSource(path) as src:
        # The index is at the front of this file, so the container still claims every frame.
        assert src.frame_count == SAMPLE_FRAMES
    n, error = _decode_until_error(path)
    assert 0 < n < SAMPLE_FRAMES * keep
    message = str(error)
    assert f"ended after {n} of the {SAMPLE_FRAMES} frames" in message
    assert str(path) in message and "truncated or corrupt" in message


def test_truncated_avi(tmp_path):
    path = tmp_path / "clip.avi"
    _write_clip(path, n=30)
    data = path.read_bytes()
    cut = _write_bytes(tmp_path, "cut.avi", data[: len(data) // 2])
    n, error = _decode_until_error(cut)
    assert 0 < n < 20
    assert "of the 30 frames" in str(error)


def test_random_bytes_over_the_middle(tmp_path, sample_video):
    data = bytearray(sample_video.read_bytes())
    start = len(data) // 2
    data[start : start + 65536] = np.random.default_rng(0).bytes(65536)
    path = _write_bytes(tmp_path, "damaged.mp4", bytes(data))
    n, error = _decode_until_error(path)
    assert 0 < n < SAMPLE_FRAMES
    assert "truncated or corrupt" in str(error)


@pytest.mark.slow
@pytest.mark.parametrize("where", [0.3, 0.5, 0.7, 0.9])
def test_damage_is_reported_or_all_frames_come_out(tmp_path, sample_video, where):
    """Never a silently short result: either every frame decodes (the damage was concealed by
    the decoder, as at 70% of the sample) or iteration ends with DecodeError."""
    data = bytearray(sample_video.read_bytes())
    start = int(len(data) * where)
    data[start : start + 16] = np.random.default_rng(1).bytes(16)
    path = _write_bytes(tmp_path, "damaged.mp4", bytes(data))
    n = 0
    try:
        with OpenCVSource(path) as src:
            for _ in src:
                n += 1
    except DecodeError:
        assert n < SAMPLE_FRAMES - 2
    else:
        assert n == SAMPLE_FRAMES


# -- the truncation rule and live timestamps, on a scripted capture ----------------------------


class _ScriptedCapture:
    """Stands in for cv2.VideoCapture: reports ``count``/``fps`` and yields ``len(msec)`` frames
    whose CAP_PROP_POS_MSEC values are ``msec``."""

    def __init__(self, count: float, fps: float, msec: list[float]):
        self.props = {cv2.CAP_PROP_FRAME_COUNT: count, cv2.CAP_PROP_FPS: fps}
        self.msec = msec
        self.i = 0

    def __call__(self, target, *args):
        return self

    # cv2's method names.
    def isOpened(self):
        return True

    def getBackendName(self):
        return "SCRIPTED"

    def get(self, prop):
        if prop == cv2.CAP_PROP_POS_MSEC:
            return self.msec[self.i - 1] if self.i else 0.0
        return self.props.get(prop, 0.0)

    def read(self):
        if self.i >= len(self.msec):
            return False, None
        self.i += 1
        return True, np.zeros((4, 6, 3), np.uint8)

    def release(self):
        pass


def _fake_file(tmp_path: Path) -> Path:
    path = tmp_path / "fake.mkv"
    path.write_bytes(b"\x1aE\xdf\xa3" + bytes(64))  # Matroska magic, never decoded here
    return path


@pytest.mark.parametrize(
    ("count", "fps", "n", "truncated"),
    [
        (100, 30.0, 98, False),  # 2 missing: within tolerance (duration-estimated counts)
        (100, 30.0, 97, True),  # 3 missing, and the frames end 0.1 s early
        (1000, 30.0, 990, False),  # 1% of a long file
        (1000, 30.0, 989, True),
    ],
)
def test_truncation_rule_on_frame_count(tmp_path, monkeypatch, count, fps, n, truncated):
    fake = _ScriptedCapture(count, fps, [1000.0 * i / fps for i in range(n)])
    monkeypatch.setattr(cv2, "VideoCapture", fake)
    src = OpenCVSource(_fake_file(tmp_path))
    if truncated:
        with pytest.raises(DecodeError, match=f"ended after {n} of the {count} frames"):
            list(src)
    else:
        assert len(list(src)) == n


def test_truncation_rule_trusts_timestamps_over_an_overstated_count(tmp_path, monkeypatch):
    # Variable frame rate: nominal 60 fps, so 120 frames are claimed for 2 s, but the 60 frames
    # actually present cover the full 2 s. Not truncated.
    fake = _ScriptedCapture(120, 60.0, [1000.0 * i / 30.0 for i in range(60)])
    monkeypatch.setattr(cv2, "VideoCapture", fake)
    assert len(list(OpenCVSource(_fake_file(tmp_path)))) == 60


def test_live_pts_start_at_zero(monkeypatch):
    # Cameras report driver timestamps (here: ms since boot); pts are relative to the first frame.
    fake = _ScriptedCapture(-1, 30.0, [5_000_000.0, 5_000_040.0, 5_000_070.0])
    monkeypatch.setattr(cv2, "VideoCapture", fake)
    with OpenCVSource(0) as src:
        assert src.is_live and src.frame_count is None
        assert [f.pts for f in src] == pytest.approx([0.0, 0.04, 0.07])


def test_gif_is_left_to_ffmpeg(tmp_path):
    # GIFs can be animated, so they are read as video rather than rejected as still images.
    path = tmp_path / "clip.gif"
    if not cv2.imwrite(str(path), np.zeros((48, 64, 3), np.uint8)):
        pytest.skip("this OpenCV build cannot write GIF")
    with OpenCVSource(path) as src:
        assert [f.hw for f in src] == [(48, 64)]


def test_a_file_opened_live_is_played_in_real_time(tmp_path):
    import time

    path = tmp_path / "clip.avi"
    _write_clip(path, n=6, fps=20.0)  # 0.25 s of video
    with OpenCVSource(path, live=True) as src:
        assert src.is_live and src.frame_count is None
        start = time.perf_counter()
        frames = list(src)
        elapsed = time.perf_counter() - start
    assert [f.index for f in frames] == list(range(6))
    # released at their timestamps: the last one 5/20 s after the first
    assert elapsed >= 0.24
    arrivals = np.array([f.arrival for f in frames]) - frames[0].arrival
    np.testing.assert_allclose(arrivals, [f.pts - frames[0].pts for f in frames], atol=0.03)
