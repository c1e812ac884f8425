"""open_source: which decoder each (source, device, decoder, live) gets, and the refusals.

"GPU available" and "DALI installed" are monkeypatched (rtpose.video._gpu_available /
_dali_installed); where the GPU path would be taken, DALISource is replaced by a recorder, since
DALI cannot decode on the GPU here.
"""

from __future__ import annotations

import fractions
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import rtpose.video as video
from rtpose.errors import BackendUnavailableError
from rtpose.video import DALISource, OpenCVSource, open_source

pytest.importorskip("nvidia.dali")
av = pytest.importorskip("av")


def _image(i: int) -> np.ndarray:  # (48, 64, 3) BGR
    return np.full((48, 64, 3), (i * 40 % 256, 255 - i * 40 % 256, 90), np.uint8)


def write_cv_clip(path: Path, fourcc: str, n: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 48))
    assert writer.isOpened(), f"cv2.VideoWriter cannot write {fourcc}"
    for i in range(n):
        writer.write(_image(i))
    writer.release()


def write_av_clip(path: Path, codec: str, n: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height = 64, 48
        stream.time_base = fractions.Fraction(1, 10)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_image(i), format="bgr24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


class _Recorder:
    """Stands in for DALISource: records the arguments instead of decoding."""

    def __init__(self, path, *, device="cpu", sequence_length=8, device_id=0, probe=None):
        self.path, self.device, self.probe = str(path), device, probe

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("open-source")
    out = {"vp9": root / "clip.webm", "mjpeg": root / "clip.avi", "mpeg4": root / "clip.mp4"}
    write_cv_clip(out["vp9"], "VP90", n=3)
    write_cv_clip(out["mjpeg"], "MJPG", n=3)
    write_cv_clip(out["mpeg4"], "mp4v", n=3)
    out["ffv1"] = root / "ffv1.mkv"  # a codec NVDEC does not decode
    write_av_clip(out["ffv1"], "ffv1", 3)
    return out


@pytest.fixture
def machine(monkeypatch):
    """Set what open_source sees: machine(gpu=..., dali=...); DALISource records GPU opens."""

    def set_(*, gpu: bool, dali: bool = True) -> None:
        monkeypatch.setattr(video, "_gpu_available", lambda: gpu)
        monkeypatch.setattr(video, "_dali_installed", lambda: dali)
        if gpu:
            monkeypatch.setattr(video, "DALISource", _Recorder)

    return set_


def _decoder(src) -> str:
    if isinstance(src, _Recorder):
        return f"dali-{src.device}"
    if isinstance(src, DALISource):
        src.close()
        return f"dali-{src.device}"
    assert isinstance(src, OpenCVSource), type(src)
    src.close()
    return "opencv"


# (codec, device, gpu present, DALI installed) -> decoder chosen
MATRIX = [
    # on the CPU, OpenCV is the measured fastest decoder for every codec (CPU_DECODER_MS)
    ("vp9", "cpu", False, True, "opencv"),
    ("mjpeg", "cpu", False, True, "opencv"),
    ("mpeg4", "cpu", False, True, "opencv"),
    ("vp9", "cpu", False, False, "opencv"),
    ("vp9", "cpu", True, True, "opencv"),  # device='cpu' stays on the CPU
    ("vp9", "auto", False, True, "opencv"),
    ("mpeg4", "auto", False, True, "opencv"),
    ("vp9", "auto", False, False, "opencv"),
    ("vp9", "auto", True, True, "dali-gpu"),
    ("mpeg4", "auto", True, True, "dali-gpu"),
    ("ffv1", "auto", True, True, "opencv"),  # neither DALI decoder: the CPU rule
    ("vp9", "auto", True, False, "opencv"),
    ("vp9", "gpu", True, True, "dali-gpu"),
    ("mpeg4", "gpu", True, True, "dali-gpu"),
]


@pytest.mark.parametrize(("codec", "device", "gpu", "dali", "chosen"), MATRIX)
def test_dispatch_matrix(files, machine, codec, device, gpu, dali, chosen):
    machine(gpu=gpu, dali=dali)
    assert _decoder(open_source(files[codec], device=device)) == chosen


def test_auto_probes_once_and_hands_the_probe_over(files, machine):
    machine(gpu=True)
    src = open_source(files["vp9"], device="auto")
    assert src.probe is not None and src.probe.codec == "vp9" and src.path == str(files["vp9"])


def test_the_choice_is_logged_with_its_reason(files, machine, caplog):
    machine(gpu=False)
    with caplog.at_level(logging.INFO, logger="rtpose.video"):
        _decoder(open_source(files["mpeg4"], device="cpu"))
        _decoder(open_source(files["vp9"], device="auto"))
    text = caplog.text
    assert "with OpenCV on the CPU: the fastest CPU decoder for every codec measured" in text
    assert "vp9 DALI-CPU 16.3, OpenCV 4.5" in text  # the numbers come from CPU_DECODER_MS


@pytest.mark.parametrize(("codec", "chosen"), [("vp9", "dali-cpu"), ("mjpeg", "opencv"),
                                               ("mpeg4", "opencv")])  # fmt: skip
def test_a_per_codec_measurement_picks_per_codec(files, machine, monkeypatch, codec, chosen):
    """Where the table says DALI-CPU is faster for one codec, that codec (and only it) is
    decoded with DALI on the CPU; codecs DALI-CPU cannot decode stay with OpenCV."""
    import rtpose.video as video

    machine(gpu=False)
    monkeypatch.setattr(video, "CPU_DECODER_MS", {
        "vp9": {"OpenCV": 9.0, "DALI-CPU": 3.0}, "mjpeg": {"OpenCV": 3.0, "DALI-CPU": 9.0},
    })  # fmt: skip
    assert _decoder(open_source(files[codec], device="cpu")) == chosen


def test_forced_decoders(files, machine):
    machine(gpu=False)
    assert _decoder(open_source(files["vp9"], decoder="opencv")) == "opencv"
    assert _decoder(open_source(files["vp9"], decoder="dali")) == "dali-cpu"
    with pytest.raises(BackendUnavailableError, match="only on the GPU"):
        open_source(files["mpeg4"], decoder="dali")
    with pytest.raises(BackendUnavailableError, match="decodes on the CPU only") as info:
        open_source(files["vp9"], device="gpu", decoder="opencv")
    assert "device='cpu'" in str(info.value) and "decoder='dali'" in str(info.value)
    machine(gpu=True)
    assert _decoder(open_source(files["vp9"], decoder="dali")) == "dali-gpu"


def test_gpu_refused_without_gpu_or_dali(files, machine):
    machine(gpu=False)
    with pytest.raises(BackendUnavailableError, match="no CUDA GPU is usable") as info:
        open_source(files["vp9"], device="gpu")
    assert "device='cpu'" in str(info.value) and str(files["vp9"]) in str(info.value)
    machine(gpu=True, dali=False)
    with pytest.raises(BackendUnavailableError, match=r"rtpose\[dali\]") as info:
        open_source(files["vp9"], device="gpu")
    assert "device='cpu'" in str(info.value)


def test_dali_missing_with_decoder_dali_is_an_import_error(files, machine, monkeypatch):
    machine(gpu=False)
    monkeypatch.setitem(sys.modules, "nvidia.dali", None)  # makes `import nvidia.dali` fail
    with pytest.raises(ImportError, match=r"nvidia\.dali") as info:
        open_source(files["vp9"], decoder="dali")
    assert "rtpose[dali]" in str(info.value)


def test_live_files_play_through_opencv(files, machine):
    machine(gpu=True)
    src = open_source(files["vp9"], live=True)
    assert isinstance(src, OpenCVSource) and src.is_live
    src.close()
    with pytest.raises(ValueError, match="decoder='opencv'"):
        open_source(files["vp9"], live=True, decoder="dali")
    with pytest.raises(BackendUnavailableError, match="live=None"):
        open_source(files["vp9"], live=True, device="gpu")


def test_cameras_and_streams(machine):
    machine(gpu=True)
    with pytest.raises(BackendUnavailableError, match="PyNvVideoCodec") as info:
        open_source(0, device="gpu")
    assert "device='cpu'" in str(info.value)
    with pytest.raises(ValueError, match="DALI decodes video files only"):
        open_source("rtsp://example.invalid/stream", decoder="dali")
    with pytest.raises(ValueError, match="decoder='opencv'"):
        open_source("/dev/video0", decoder="dali")


def test_bad_arguments(files):
    with pytest.raises(ValueError, match="'auto', 'dali', 'opencv'"):
        open_source(files["vp9"], decoder="ffmpeg")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        open_source(1.5)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        open_source(files["vp9"].with_name("missing.webm"), device="cpu")
