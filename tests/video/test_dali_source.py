"""DALISource: DALI's CPU decoder against OpenCV, timestamps from the probe, the end of stream.

Measured with nvidia-dali-cuda130 2.4.0, PyAV 18.1 and opencv-python-headless 5.0 on the 64x48
clips below (a flat colour per frame, white digits drawn in the lower half): DALI and OpenCV
(FFmpeg/swscale) differ by at most 2 per channel on flat areas (YUV -> RGB rounding) and by up
to 60 next to the digits' edges (4:2:0 chroma upsampling differs), 2.7 on average per frame.
Tolerances below: flat area max <= 3, mean over the frame <= 4.
"""

from __future__ import annotations

import dataclasses
import fractions
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("nvidia.dali")
av = pytest.importorskip("av")

from rtpose.errors import BackendUnavailableError, DecodeError  # noqa: E402
from rtpose.video import DALISource, FrameSource, OpenCVSource, probe_video  # noqa: E402

SIZE = (64, 48)
FOURCC = {"vp9": ("VP90", ".webm"), "vp8": ("VP80", ".webm"), "mjpeg": ("MJPG", ".avi")}


def _colour(i: int) -> tuple[int, int, int]:
    return (i * 23 % 256, 255 - i * 23 % 256, i * 67 % 256)


def _image(i: int) -> np.ndarray:
    img = np.empty((SIZE[1], SIZE[0], 3), np.uint8)
    img[:] = _colour(i)
    cv2.putText(img, str(i), (4, SIZE[1] - 8), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
    return img


def write_cv_clip(path: Path, fourcc: str, n: int = 11, fps: float = 10.0) -> list[np.ndarray]:
    """Write ``n`` BGR frames with OpenCV; return them."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, SIZE)
    assert writer.isOpened(), f"cv2.VideoWriter cannot write {fourcc} to {path}"
    frames = [_image(i) for i in range(n)]
    for img in frames:
        writer.write(img)
    writer.release()
    return frames


def write_av_clip(
    path: Path, codec: str, pts_ms: list[int], *, options: dict[str, str] | None = None
) -> None:
    """Write frames with PyAV at the given timestamps (ms): variable frame rate if uneven."""
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for i, t in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(_image(i)[..., ::-1].copy(), format="rgb24")
            frame.pts, frame.time_base = t, fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """11-frame 10 fps clips written by OpenCV, one per codec DALI decodes on the CPU."""
    root = tmp_path_factory.mktemp("dali-clips")
    out = {}
    for codec, (fourcc, ext) in FOURCC.items():
        out[codec] = root / f"{codec}{ext}"
        write_cv_clip(out[codec], fourcc)
    return out


# -- pixels, order, count, pts ---------------------------------------------------------------


@pytest.mark.parametrize("codec", list(FOURCC))
def test_cpu_frames_match_opencv(clips, codec):
    path = clips[codec]
    with DALISource(path, device="cpu", sequence_length=4) as src:
        assert isinstance(src, FrameSource)
        assert (src.size, src.fps, src.frame_count, src.is_live) == (SIZE, 10.0, 11, False)
        frames = list(src)
    with OpenCVSource(path) as ref:
        expected = [f.image[..., ::-1] for f in ref]  # BGR -> RGB
    assert [f.index for f in frames] == list(range(11))
    assert [f.pts for f in frames] == pytest.approx([i / 10 for i in range(11)], abs=1e-9)
    for f, want in zip(frames, expected, strict=True):
        assert f.channel_order == "rgb" and not f.on_gpu
        assert f.image.shape == (SIZE[1], SIZE[0], 3) and f.image.dtype == np.uint8
        diff = np.abs(f.image.astype(int) - want)
        assert diff[:12].max() <= 3, "flat area (above the digits): YUV->RGB rounding only"
        assert diff.mean() <= 4.0
        # and it is this frame, not a neighbour: nearest written frame by mean error
        errors = [np.abs(f.to_host_bgr().astype(int) - _image(i)).mean() for i in range(11)]
        assert int(np.argmin(errors)) == f.index


@pytest.mark.parametrize("sequence_length", [1, 3, 4, 11, 16])
def test_chunk_boundaries_give_the_same_frames(clips, sequence_length):
    with DALISource(clips["vp9"], sequence_length=4) as src:
        reference = [f.image for f in src]
    with DALISource(clips["vp9"], sequence_length=sequence_length) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(11))
    for f, ref in zip(frames, reference, strict=True):
        np.testing.assert_array_equal(f.image, ref)  # same decoder, only chunking differs


def test_frames_stay_valid_after_later_chunks(clips):
    with DALISource(clips["vp9"], sequence_length=2) as src:
        first = next(src)
        snapshot = first.image.copy()
        rest = list(src)
    assert len(rest) == 10
    np.testing.assert_array_equal(first.image, snapshot)  # not overwritten by DALI's buffers
    assert not any(np.shares_memory(first.image, f.image) for f in rest[1:])


def test_variable_frame_rate_pts_are_the_written_ones(tmp_path):
    pts_ms = [0, 33, 66, 150, 166, 400, 433, 900, 1000, 1010, 1500]
    path = tmp_path / "vfr.webm"
    write_av_clip(path, "libvpx-vp9", pts_ms)
    with DALISource(path, sequence_length=4) as src:
        frames = list(src)
    assert [f.pts for f in frames] == pytest.approx([t / 1000 for t in pts_ms], abs=1e-9)
    errors = [np.abs(frames[5].to_host_bgr().astype(int) - _image(i)).mean() for i in range(11)]
    assert int(np.argmin(errors)) == 5  # frames are not resampled to a constant rate


@pytest.mark.slow
def test_sample_video_matches_opencv(sample_video):
    """~6 s: both decoders read all 230 frames of 1768x994."""
    with OpenCVSource(sample_video) as ref:
        ref_pts = [f.pts for f in ref]
    with DALISource(sample_video) as src:
        assert src.size == (1768, 994) and src.frame_count == 230 and src.fps == 30.0
        pts, n = [], 0
        for f in src:
            assert f.index == n and f.hw == (994, 1768)
            pts.append(f.pts)
            n += 1
    assert n == 230
    assert pts == pytest.approx(ref_pts, abs=1e-6)
    assert all(b > a for a, b in itertools.pairwise(pts))


# -- lifecycle ---------------------------------------------------------------------------------


def test_early_close_stops_cleanly(clips):
    src = DALISource(clips["vp9"], sequence_length=4)
    taken = [next(src) for _ in range(5)]  # into the second chunk
    src.close()
    src.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        next(src)
    assert [f.index for f in taken] == list(range(5))
    with DALISource(clips["vp9"]) as src:
        next(src)
    # leaving the with-block mid-stream closed it
    with pytest.raises(ValueError, match="closed"):
        next(src)


def test_exhausted_source_stays_empty(clips):
    src = DALISource(clips["mjpeg"], sequence_length=11)  # the end falls on a chunk boundary
    assert len(list(src)) == 11
    assert list(src) == []


# -- the end of the stream ---------------------------------------------------------------------


def test_truncated_file_raises_after_the_decodable_frames(tmp_path):
    # MP4 with its index at the front ('faststart'): cut in half, the index still claims 30.
    path = tmp_path / "full.mp4"
    write_av_clip(
        path, "libvpx-vp9", [100 * i for i in range(30)], options={"movflags": "faststart"}
    )
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    n = 0
    with DALISource(cut, sequence_length=4) as src, pytest.raises(DecodeError) as info:
        for f in src:
            assert f.index == n
            n += 1
    assert 0 < n < 30 and n % 4 == 0  # whole chunks: the failing one is lost
    message = str(info.value)
    assert f"ended after {n} of the 30 frames" in message
    assert str(cut) in message and "truncated or corrupt" in message and "DALI:" in message


def test_truncated_webm_is_caught_by_its_duration(tmp_path):
    # WebM has no frame index: the frames found end long before the stored duration.
    path = tmp_path / "clip.webm"
    write_cv_clip(path, "VP90", n=30)
    data = path.read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) // 2])
    n = 0
    with DALISource(cut) as src, pytest.raises(DecodeError, match="truncated or corrupt"):
        for _ in src:
            n += 1
    assert 0 < n < 25


@pytest.mark.parametrize(
    ("claimed", "raises"),
    [(12, False), (13, False), (14, True)],  # tolerance max(2, N // 100) = 2 frames
)
def test_count_tolerance(clips, claimed, raises):
    probe = dataclasses.replace(probe_video(clips["mjpeg"]), reported_frames=claimed)
    src = DALISource(clips["mjpeg"], sequence_length=4, probe=probe)
    if raises:
        with pytest.raises(DecodeError, match=f"ended after 11 of the {claimed} frames"):
            list(src)
    else:
        assert len(list(src)) == 11


def test_frames_beyond_the_probe_get_extrapolated_pts(clips):
    # A probe that undercounts by one: the extra frame still comes out, pts continuing at 1/fps.
    probe = probe_video(clips["vp9"])
    probe = dataclasses.replace(probe, pts=probe.pts[:-1], covered=1.0)
    with DALISource(clips["vp9"], sequence_length=4, probe=probe) as src:
        pts = [f.pts for f in src]
    assert pts == pytest.approx([i / 10 for i in range(11)], abs=1e-9)


# -- errors up front ---------------------------------------------------------------------------


def test_h264_on_the_cpu_names_the_alternatives(tmp_path):
    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV build has no H.264 encoder")
    path = tmp_path / "clip.mp4"
    write_av_clip(path, "libx264", [33 * i for i in range(5)])
    with pytest.raises(BackendUnavailableError) as info:
        DALISource(path, device="cpu")
    message = str(info.value)
    assert "DALI decodes H.264 only on the GPU" in message
    assert "on the CPU it decodes VP8, VP9 and MJPEG" in message
    assert "device='gpu'" in message and "decoder='opencv'" in message and str(path) in message


def test_mpeg4_on_the_cpu_is_refused(tmp_path):
    path = tmp_path / "clip.mp4"
    write_cv_clip(path, "mp4v", n=3)
    with pytest.raises(BackendUnavailableError, match="MPEG-4 only on the GPU"):
        DALISource(path)


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DALISource(tmp_path / "nope.webm")
    with pytest.raises(IsADirectoryError):
        DALISource(tmp_path)
    text = tmp_path / "clip.webm"
    text.write_text("not a video\n" * 20)
    with pytest.raises(DecodeError, match="cannot open") as info:
        DALISource(text)
    assert str(text) in str(info.value)
    empty = tmp_path / "empty.webm"
    empty.touch()
    with pytest.raises(DecodeError, match="empty"):
        DALISource(empty)
    zero = tmp_path / "zero.avi"
    write_cv_clip(zero, "MJPG", n=0)
    with pytest.raises(DecodeError, match="contains no frames"):
        DALISource(zero)


def test_bad_arguments(clips):
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu'"):
        DALISource(clips["vp9"], device="cuda")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sequence_length must be an int >= 1"):
        DALISource(clips["vp9"], sequence_length=0)
    with pytest.raises(TypeError, match="OpenCVSource"):
        DALISource(0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not streams"):
        DALISource("rtsp://camera/stream")
    other = dataclasses.replace(probe_video(clips["vp8"]))
    with pytest.raises(ValueError, match="probe is of"):
        DALISource(clips["vp9"], probe=other)


# -- GPU (NVDEC) -------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("codec", ["vp9", "mjpeg"])
def test_gpu_frames_match_cpu_frames(clips, codec, cupy):
    with DALISource(clips[codec], device="cpu", sequence_length=4) as src:
        cpu = [f.image for f in src]
    with DALISource(clips[codec], device="gpu", sequence_length=4) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(11))
    for f, ref in zip(frames, cpu, strict=True):
        assert f.on_gpu and isinstance(f.image, cupy.ndarray) and f.channel_order == "rgb"
        diff = np.abs(cupy.asnumpy(f.image).astype(int) - ref)
        # NVDEC and DALI's CPU path convert YUV -> RGB separately: same bounds as vs OpenCV.
        assert diff[:12].max() <= 3 and diff.mean() <= 4.0


@pytest.mark.gpu
def test_gpu_h264_and_ring_validity(tmp_path, cupy):
    path = tmp_path / "clip.mp4"
    write_av_clip(path, "libx264", [33 * i for i in range(11)])
    with DALISource(path, device="gpu", sequence_length=2) as src:
        frames = []
        for f in src:
            frames.append((f, cupy.asnumpy(f.image)))
            # the frame 2 * sequence_length back must still hold its pixels
            if len(frames) > 4:
                old, snapshot = frames[-5]
                np.testing.assert_array_equal(cupy.asnumpy(old.image), snapshot)
    assert len(frames) == 11
    for f, host in frames:
        errors = [np.abs(host[..., ::-1].astype(int) - _image(i)).mean() for i in range(11)]
        assert int(np.argmin(errors)) == f.index
