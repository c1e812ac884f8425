"""Container probing with PyAV: codec, size, frame rate and per-frame timestamps, without decoding.

DALI's ``fn.experimental.inputs.video`` yields pixels only: no timestamps, and no way to ask how
many frames are left (running it past the end invalidates the pipeline). So before decoding, the
file is demultiplexed once with PyAV (FFmpeg): every video packet is read, none is decoded, which
takes milliseconds even for long files. One packet carries one displayed frame for the codecs DALI
decodes (VP9 superframes bundle hidden frames with the shown one; packets flagged "discard" are
skipped), so the sorted packet timestamps are the presentation times of the decoded frames, also
for variable-frame-rate files.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

from rtpose._deps import require
from rtpose.errors import DecodeError

logger = logging.getLogger(__name__)

# FFmpeg codec name -> the name users know.
CODEC_NAMES: dict[str, str] = {
    "h264": "H.264",
    "hevc": "HEVC",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
    "mjpeg": "MJPEG",
    "mpeg4": "MPEG-4",
}

AV_PURPOSE = "probing video files for DALI decoding; pip install 'rtpose[dali]' installs it"


@dataclass(frozen=True)
class VideoProbe:
    """What the container says about the first video stream of a file.

    Attributes:
        path: the file.
        container: FFmpeg's name of the container format, e.g. ``"matroska,webm"``.
        codec: FFmpeg's codec name, e.g. ``"vp9"``, ``"h264"``, ``"mjpeg"``.
        width: frame width in pixels.
        height: frame height in pixels.
        fps: nominal (average) frame rate, or None when the container gives none.
        pts: presentation time in seconds of every frame, in presentation order, the first at 0.
        reported_frames: frame count stored in the container's index (MP4, AVI), or None.
        covered: seconds the packets found span: the end of the last frame (its pts plus its
            packet duration, ``1 / fps`` where the container stores none), from the first at 0.
        duration: length of the video in seconds from the container, or None. For a file with
            other streams (audio) only the video stream's own duration is used.
    """

    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: float | None
    pts: tuple[float, ...]
    reported_frames: int | None
    covered: float
    duration: float | None

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"VideoProbe size must be positive, got {self.width}x{self.height}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"VideoProbe.fps must be > 0 or None, got {self.fps}")

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.width, self.height

    @property
    def frame_count(self) -> int:
        """Frames whose packets are in the file (what a complete decode yields)."""
        return len(self.pts)

    @property
    def expected_frames(self) -> int:
        """Frames the file should hold: the larger of the packets found and the index's count.

        They differ when the file is cut short after its index was written (an MP4 with its
        ``moov`` atom at the front, an AVI header): the index still counts every frame.
        """
        return max(self.frame_count, self.reported_frames or 0)

    @property
    def codec_name(self) -> str:
        """The codec as users know it: ``"H.264"``, ``"VP9"``, ...."""
        return CODEC_NAMES.get(self.codec, self.codec)


def probe_video(path: str | os.PathLike[str]) -> VideoProbe:
    """Read the container of ``path`` and every video packet's timestamp, decoding nothing.

    Raises:
        ImportError: PyAV is not installed.
        DecodeError: FFmpeg cannot open the file or it has no video stream.
    """
    av = require("av", purpose=AV_PURPOSE)
    name = os.fspath(path)
    try:
        container = av.open(name)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise DecodeError(
            f"cannot open '{name}' as a video: FFmpeg (PyAV) could not read its container "
            f"({exc}). It is not a video or it is damaged; files that work: MP4, MKV, WebM, AVI "
            "or MOV."
        ) from exc
    with container:
        if not container.streams.video:
            raise DecodeError(
                f"'{name}' has no video stream (FFmpeg found {len(container.streams)} other "
                "streams); give a file that contains video"
            )
        stream = container.streams.video[0]
        ctx = stream.codec_context
        time_base = stream.time_base
        raw: list[float] = []
        spans: list[float] = []  # duration of each packet in seconds, 0 where not stored
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue  # the flush packet at the end; frames the decoder must drop
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is None or time_base is None:
                    raw.append(math.nan)
                    continue
                raw.append(float(ts * time_base))
                spans.append(float(packet.duration * time_base) if packet.duration else 0.0)
        except av.error.FFmpegError as exc:
            # A damaged file: keep the packets read so far; the decoder will report the rest.
            logger.debug("%s: demuxing stopped after %d packets: %s", name, len(raw), exc)
        fps = _fps(stream)
        pts = _presentation_times(raw, fps)
        covered = _covered(raw, spans, fps)
        reported = int(stream.frames) if stream.frames and stream.frames > 0 else None
        duration = _duration(container, stream)
        if not (ctx.width and ctx.height):
            raise DecodeError(
                f"'{name}': its {CODEC_NAMES.get(ctx.name, ctx.name)} video stream reports no "
                "frame size; the file is damaged or not a video"
            )
        probe = VideoProbe(
            path=name,
            container=container.format.name,
            codec=ctx.name,
            width=int(ctx.width),
            height=int(ctx.height),
            fps=fps,
            pts=pts,
            reported_frames=reported,
            covered=covered,
            duration=duration,
        )
    logger.debug(
        "probed %s: %s in %s, %dx%d, fps=%s, %d packets, index count %s, duration %s",
        name,
        probe.codec_name,
        probe.container,
        probe.width,
        probe.height,
        probe.fps,
        probe.frame_count,
        probe.reported_frames,
        probe.duration,
    )
    return probe


def _fps(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if math.isfinite(value) and 0.0 < value < 10_000.0:
                return value
    return None


def _presentation_times(raw: list[float], fps: float | None) -> tuple[float, ...]:
    """Packet times -> frame times: sorted (packets come in decode order), first at 0.

    Packets without any timestamp (rare: raw streams) fall back to ``index / fps`` for all.
    """
    if not raw:
        return ()
    if any(math.isnan(t) for t in raw):
        step = 1.0 / fps if fps else 0.0
        return tuple(i * step for i in range(len(raw)))
    ordered = sorted(raw)
    origin = ordered[0]
    return tuple(t - origin for t in ordered)


def _covered(raw: list[float], spans: list[float], fps: float | None) -> float:
    """End of the latest frame: pts + duration (``1 / fps`` if none is stored), first pts at 0."""
    if not raw or any(math.isnan(t) for t in raw):
        return len(raw) / fps if fps else 0.0
    step = 1.0 / fps if fps else 0.0
    return max(t + (d or step) for t, d in zip(raw, spans)) - min(raw)


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    # The container's duration covers every stream: trust it only when video is alone.
    if len(container.streams) == 1 and container.duration and container.duration > 0:
        return container.duration / 1_000_000.0  # av.time_base: microseconds
    return None
