"""Frame sources: video files, cameras and streams, decoded into :class:`Frame` objects.

- :class:`DALISource`: files decoded by NVIDIA DALI, on the GPU (NVDEC: H.264, HEVC, VP8, VP9,
  AV1, MJPEG, MPEG-4) into GPU memory, or on the CPU (VP8, VP9, MJPEG).
- :class:`OpenCVSource`: files, cameras and streams decoded by OpenCV (FFmpeg, V4L2) on the CPU.
- :class:`ArraySource`: images already in memory.

:func:`open_source` picks one; see its docstring for the rules.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Literal

from rtpose.errors import BackendUnavailableError, DecodeError
from rtpose.video.dali import CPU_CODECS, GPU_CODECS, DALISource
from rtpose.video.frames import Frame, FrameSource
from rtpose.video.memory import ArraySource
from rtpose.video.opencv import OpenCVSource, _check_video_file
from rtpose.video.probe import VideoProbe, probe_video

__all__ = [
    "CPU_DECODER_MS",
    "ArraySource",
    "DALISource",
    "Frame",
    "FrameSource",
    "OpenCVSource",
    "VideoProbe",
    "fastest_cpu_decoder",
    "open_source",
    "probe_video",
]

logger = logging.getLogger(__name__)

Device = Literal["cpu", "gpu", "auto"]
Decoder = Literal["auto", "dali", "opencv"]
_DEVICES = ("cpu", "gpu", "auto")
_DECODERS = ("auto", "dali", "opencv")
_DALI_INSTALL = "pip install 'rtpose[dali]' (nvidia-dali-cuda130 and av)"

# Decoding every frame of the sample video (1768x994, 230 frames) and of its H.264 and MJPEG
# re-encodes on a 2-core AMD EPYC, ms per frame (median of 3 alternating rounds;
# benchmarks/results/2026-12-03-cpu2-decoders.json, made by benchmarks/bench_decoders.py).
# DALI's CPU decoder has no H.264. OpenCV (FFmpeg) wins for every codec by 3.5-4x, so on the
# CPU open_source() decodes with OpenCV unless decoder="dali" is asked for.
# tests/video/test_decoder_choice.py holds this table to the committed measurement.
CPU_DECODER_MS: dict[str, dict[str, float]] = {
    "vp9": {"OpenCV": 4.55, "DALI-CPU": 16.29},
    "h264": {"OpenCV": 3.80},
    "mjpeg": {"OpenCV": 4.17, "DALI-CPU": 15.55},
}


def open_source(
    uri: str | os.PathLike[str] | int,
    *,
    device: Device = "auto",
    live: bool | None = None,
    decoder: Decoder = "auto",
) -> FrameSource:
    """Open a video file, camera or stream, choosing the decoder.

    Rules (each choice is logged at INFO level with its reason):

    - Cameras and stream URLs: OpenCV on the CPU. ``device="gpu"`` is refused: GPU decoding of
      live sources would need PyNvVideoCodec, which rtpose does not support yet.
    - Files with ``live=True`` (real-time playback, paced by the frames' timestamps): OpenCV,
      as DALISource has no live mode.
    - Files, ``device="gpu"``: DALI with NVDEC. Needs DALI, PyAV and cupy, and a GPU.
    - Files, ``device="cpu"``: the fastest CPU decoder by the measurement in
      :data:`CPU_DECODER_MS`: OpenCV (FFmpeg), 3.5-4x faster than DALI's CPU decoder on VP9 and
      MJPEG here (DALI-CPU has no H.264). DALI-CPU only with ``decoder="dali"``.
    - Files, ``device="auto"``: DALI on the GPU when DALI, PyAV, cupy and a GPU are there and
      NVDEC decodes the codec; otherwise the ``device="cpu"`` rule.
    - ``decoder="opencv"`` or ``"dali"`` forces that decoder (``"dali"`` on the GPU when
      ``device`` is ``"gpu"``, or ``"auto"`` with a GPU).

    DALI frames are RGB (``Frame.channel_order == "rgb"``), OpenCV frames BGR.

    Args:
        uri: file path, camera index (``0``, ``"0"``, ``"/dev/video0"``) or stream URL.
        device: where to decode: ``"cpu"``, ``"gpu"``, or ``"auto"``.
        live: see :class:`OpenCVSource`; ``None`` decides from ``uri``.
        decoder: ``"auto"``, ``"dali"`` or ``"opencv"``.

    Returns:
        An open source; use it as a context manager and iterate it for :class:`Frame` objects.

    Raises:
        ValueError: unknown ``device`` or ``decoder``; ``decoder="dali"`` with a camera, a
            stream or ``live=True``.
        BackendUnavailableError: the requested device or decoder cannot decode this source here
            (no GPU, DALI missing, codec not supported); the message names the alternatives.
        ImportError: ``decoder="dali"`` without DALI or PyAV installed.
        FileNotFoundError, IsADirectoryError, DecodeError: see :class:`OpenCVSource` and
            :class:`DALISource`.
    """
    if device not in _DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, _DEVICES))}, got {device!r}")
    if decoder not in _DECODERS:
        raise ValueError(
            f"decoder must be one of {', '.join(map(repr, _DECODERS))}, got {decoder!r}"
        )
    kind = _kind(uri)
    if kind != "file":
        return _open_live_uri(uri, kind, device=device, live=live, decoder=decoder)
    path = os.fspath(uri)  # type: ignore[arg-type]  # _kind: str or PathLike

    if decoder == "opencv":
        if device == "gpu":
            raise BackendUnavailableError(
                "decoder='opencv' decodes on the CPU only, but device='gpu' was asked for; use "
                "device='cpu' (or 'auto') with OpenCV, or decoder='dali' (or 'auto') to decode "
                "on the GPU"
            )
        logger.info("decoding '%s' with OpenCV on the CPU (decoder='opencv')", path)
        return OpenCVSource(path, live=live)
    if live:
        if decoder == "dali":
            raise ValueError(
                "live=True plays a file in real time, which DALISource does not do; use "
                "decoder='opencv' (or 'auto') for live playback, or live=None to decode with DALI"
            )
        if device == "gpu":
            raise BackendUnavailableError(
                "live=True plays a file in real time through OpenCV, which decodes on the CPU, "
                "but device='gpu' was asked for; use device='cpu' (or 'auto') for live playback, "
                "or live=None to decode the file on the GPU with DALI"
            )
        logger.info("decoding '%s' with OpenCV on the CPU: live=True plays files with OpenCV", path)
        return OpenCVSource(path, live=True)

    if device == "gpu":
        _require_gpu_decoding(path)
        logger.info("decoding '%s' with DALI on the GPU (device='gpu')", path)
        return DALISource(path, device="gpu")
    if decoder == "dali":
        on_gpu = device == "auto" and _dali_installed() and _gpu_available()
        where = "gpu" if on_gpu else "cpu"
        logger.info(
            "decoding '%s' with DALI on the %s (decoder='dali', device=%r)", path, where, device
        )
        return DALISource(path, device=where)

    # decoder="auto", device "cpu" or "auto", not live.
    if device == "auto" and _dali_installed() and _gpu_available():
        probe = _probe(path)
        if probe is None:
            return OpenCVSource(path, live=live)
        if probe.frame_count > 0 and probe.codec in GPU_CODECS:
            logger.info("decoding '%s' (%s) with DALI on the GPU", path, probe.codec_name)
            return DALISource(path, device="gpu", probe=probe)
    if fastest_cpu_decoder() == "OpenCV":  # no probe needed: OpenCV for every codec
        logger.info("decoding '%s' with OpenCV on the CPU: %s", path, _cpu_reason())
        return OpenCVSource(path, live=live)
    return _per_codec_cpu_choice(path, live)


def _probe(path: str) -> VideoProbe | None:
    """The file's probe, or None (logged) where PyAV cannot read it: OpenCV then tries, and
    reports unreadable files in its own words or reads what PyAV can't."""
    _check_video_file(path)
    try:
        return probe_video(path)
    except DecodeError as exc:
        logger.info("decoding '%s' with OpenCV: PyAV could not probe it (%s)", path, exc)
        return None


def _per_codec_cpu_choice(path: str, live: bool | None) -> FrameSource:
    """The CPU decoder for this file's codec, where the measurement differs by codec."""
    if not _dali_installed():
        logger.info("decoding '%s' with OpenCV on the CPU: DALI/PyAV are not installed", path)
        return OpenCVSource(path, live=live)
    probe = _probe(path)
    if probe is None:
        return OpenCVSource(path, live=live)
    dali_wins = probe.codec in CPU_DECODER_MS and fastest_cpu_decoder(probe.codec) == "DALI-CPU"
    if dali_wins and probe.codec in CPU_CODECS and probe.frame_count > 0:
        logger.info("decoding '%s' (%s) with DALI on the CPU: %s", path, probe.codec_name,
                    _cpu_reason())  # fmt: skip
        return DALISource(path, device="cpu", probe=probe)
    logger.info("decoding '%s' (%s) with OpenCV on the CPU: %s", path, probe.codec_name,
                _cpu_reason())  # fmt: skip
    return OpenCVSource(path, live=live)


def fastest_cpu_decoder(codec: str | None = None) -> str | None:
    """The CPU decoder with the lowest measured ms/frame for ``codec``, from
    :data:`CPU_DECODER_MS`; with ``codec=None`` the decoder that is fastest for every codec
    measured, or None when that differs by codec."""
    if codec is not None:
        by_decoder = CPU_DECODER_MS[codec]
        return min(by_decoder, key=by_decoder.__getitem__)
    winners = {fastest_cpu_decoder(c) for c in CPU_DECODER_MS}
    return winners.pop() if len(winners) == 1 else None


def _cpu_reason() -> str:
    parts = []
    for codec, by_decoder in CPU_DECODER_MS.items():
        cells = ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(by_decoder.items()))
        parts.append(f"{codec} {cells}")
    return (
        "the fastest CPU decoder for every codec measured (ms/frame: "
        + "; ".join(parts)
        + "; benchmarks/bench_decoders.py); decoder='dali' decodes VP8/VP9/MJPEG with DALI's "
        "CPU decoder instead"
    )


def _kind(uri: object) -> Literal["camera", "url", "file", "invalid"]:
    """Classify ``uri`` without touching the file system (OpenCVSource does the full checks)."""
    if isinstance(uri, bool) or not isinstance(uri, (int, str, os.PathLike)):
        return "invalid"
    if isinstance(uri, int):
        return "camera"
    if isinstance(uri, str) and uri.isascii() and uri.isdigit():
        return "camera"
    path = os.fspath(uri)
    if not isinstance(path, str):
        return "invalid"
    if "://" in path:
        return "url"
    if path.startswith("/dev/"):
        return "camera"
    return "file"


def _open_live_uri(
    uri: str | os.PathLike[str] | int, kind: str, *, device: str, live: bool | None, decoder: str
) -> FrameSource:
    if kind == "invalid":
        return OpenCVSource(uri, live=live)  # raises the TypeError that names what was given
    what = "a camera" if kind == "camera" else "a stream URL"
    if decoder == "dali":
        raise ValueError(
            f"DALI decodes video files only, and {uri!r} is {what}; use decoder='opencv' or "
            "'auto' (OpenCV reads cameras and streams)"
        )
    if device == "gpu":
        raise BackendUnavailableError(
            f"{uri!r} is {what}: GPU decoding of cameras and streams would need PyNvVideoCodec, "
            "which rtpose does not support yet. Use device='cpu' or 'auto': OpenCV decodes it on "
            "the CPU and the pipeline uploads each frame to the GPU."
        )
    logger.info("reading %s %r with OpenCV on the CPU", what, uri)
    return OpenCVSource(uri, live=live)


def _dali_installed() -> bool:
    """DALI and PyAV (for probing) are importable; checked without importing them."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("nvidia.dali", "av"))
    except (ImportError, ValueError):  # find_spec imports the parent package "nvidia"
        return False


def _gpu_available() -> bool:
    """A CUDA GPU that DALI can decode into and cupy can hold the frames of: the one GPU probe
    (:func:`rtpose.cuda.probe.gpu_status`) finds a device, and cupy is importable, since DALI
    frames are handed on as cupy arrays (checked without importing cupy)."""
    from rtpose.cuda import probe

    try:
        has_cupy = importlib.util.find_spec("cupy") is not None
    except (ImportError, ValueError):
        has_cupy = False
    return has_cupy and probe.gpu_status().available


def _require_gpu_decoding(path: str) -> None:
    """Raise BackendUnavailableError naming the alternatives when DALI cannot decode on a GPU."""
    alternatives = (
        "Decode on the CPU instead: device='cpu' (DALI for VP8/VP9/MJPEG, OpenCV for the rest) "
        "or device='auto'."
    )
    if not _dali_installed():
        raise BackendUnavailableError(
            f"device='gpu' decodes '{path}' with NVIDIA DALI, which is not installed (with PyAV): "
            f"{_DALI_INSTALL}. {alternatives}"
        )
    if not _gpu_available():
        raise BackendUnavailableError(
            f"device='gpu' asks for GPU decoding of '{path}', but no CUDA GPU is usable here "
            "(DALI needs one, and cupy (pip install cupy-cuda13x) to hold the frames). "
            f"{alternatives}"
        )
