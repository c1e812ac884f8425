"""Frame source backed by NVIDIA DALI: NVDEC decoding into GPU memory, or DALI's CPU decoder.

The encoded file is held in memory and streamed through ``fn.experimental.inputs.video``, which
decodes ``sequence_length`` frames per pipeline run, so memory stays bounded on long videos.
That operator gives no timestamps and fails (invalidating the pipeline) when run past the end of
the clip; both are handled with a PyAV probe of the container made before decoding
(:mod:`rtpose.video.probe`): it gives every frame's pts (exact on variable-frame-rate files) and
the number of frames to expect.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Literal

import numpy as np

from rtpose._deps import require
from rtpose.errors import BackendUnavailableError, DecodeError
from rtpose.video.frames import Frame
from rtpose.video.opencv import _check_video_file, _tolerated_missing
from rtpose.video.probe import CODEC_NAMES, VideoProbe, probe_video

__all__ = ["CPU_CODECS", "GPU_CODECS", "DALISource", "check_codec"]

logger = logging.getLogger(__name__)

# FFmpeg codec names each DALI decoder accepts (DALI 2.4: frames_decoder_cpu / frames_decoder_gpu;
# NVDEC may still refuse a profile, e.g. 4:4:4 or 10-bit, on a given GPU).
CPU_CODECS = ("vp8", "vp9", "mjpeg")
GPU_CODECS = ("h264", "hevc", "vp8", "vp9", "av1", "mjpeg", "mpeg4")

# Chunks of decoded GPU frames kept alive; see DALISource.
_GPU_RING_CHUNKS = 3
_DALI_PURPOSE = "decoding video with NVIDIA DALI; pip install 'rtpose[dali]' installs it"
_CUPY_PURPOSE = "GPU frames from DALI; install the cupy build for your CUDA, e.g. cupy-cuda13x"


def _names(codecs: tuple[str, ...]) -> str:
    names = [CODEC_NAMES.get(c, c) for c in codecs]
    return ", ".join(names[:-1]) + " and " + names[-1]


def check_codec(probe: VideoProbe, device: Literal["cpu", "gpu"]) -> None:
    """Raise BackendUnavailableError when DALI cannot decode ``probe.codec`` on ``device``.

    The file is fine, the decoder is not able: hence BackendUnavailableError (an RtposeError),
    with a message naming the devices and decoders that can.
    """
    codec, name = probe.codec, probe.codec_name
    if device == "cpu" and codec not in CPU_CODECS:
        gpu = (
            "Use device='gpu' on a machine with an NVIDIA GPU, or OpenCV"
            if codec in GPU_CODECS
            else "Use OpenCV"
        )
        only = "only on the GPU" if codec in GPU_CODECS else "on neither the CPU nor the GPU"
        raise BackendUnavailableError(
            f"'{probe.path}' is {name} video: DALI decodes {name} {only}; on the CPU it decodes "
            f"{_names(CPU_CODECS)}. {gpu}: open_source(path, device='cpu', decoder='opencv'), "
            "or re-encode the file to VP9."
        )
    if device == "gpu" and codec not in GPU_CODECS:
        raise BackendUnavailableError(
            f"'{probe.path}' is {name} video, which DALI cannot decode on the GPU (NVDEC decodes "
            f"{_names(GPU_CODECS)}). Decode it on the CPU with OpenCV: open_source(path, "
            "device='cpu', decoder='opencv'), or re-encode the file to H.264."
        )


class DALISource:
    """Decode a video file with NVIDIA DALI, yielding RGB :class:`Frame` objects.

    Args:
        path: a video file (DALI reads no cameras or streams: use :class:`OpenCVSource`).
        device: ``"gpu"`` decodes with NVDEC (DALI's ``"mixed"`` operator) into GPU memory and
            yields cupy arrays; ``"cpu"`` decodes with DALI's CPU decoder (VP8, VP9, MJPEG only)
            and yields numpy arrays.
        sequence_length: frames decoded per DALI run (a chunk); larger chunks amortise the
            per-run overhead, smaller ones lower the latency of the first frame and the memory.
        device_id: CUDA device for ``device="gpu"``.
        probe: a :func:`~rtpose.video.probe.probe_video` result for this ``path`` made earlier
            (by :func:`open_source`), to skip probing the file again.

    Frames: ``Frame(index, pts, image (H, W, 3) uint8 RGB, channel_order="rgb")``. ``pts`` comes
    from the container (sorted packet timestamps, first frame at 0), not from ``index / fps``.
    CPU images are numpy arrays owned by the frame (copied out of DALI's buffers). GPU images are
    views into a ring of ``3`` preallocated chunks of ``sequence_length`` frames: a frame's image
    stays valid while at most ``2 * sequence_length`` further frames have been taken from the
    source (copy it, ``image.copy()``, to keep it longer). The copy into the ring is synchronised
    before the frame is yielded, so any CUDA stream may read it.

    Errors up front, before any decoding: ``FileNotFoundError``, ``IsADirectoryError``,
    :class:`DecodeError` (empty file, still image, not a video, no frames),
    :class:`BackendUnavailableError` (codec not decodable on ``device``, no usable GPU),
    ``ImportError`` (DALI, PyAV or, for the GPU, cupy missing).

    End of stream: the probe gives ``N`` = the larger of the packets found and the index's count,
    and the frames should cover the container's duration. Decoding stops when DALI returns a
    short chunk (the end of the clip) or ``N`` frames came out; DALI failing earlier ends the
    chunk it was decoding (its frames are lost). With ``n`` frames decoded and
    ``tol = max(2, N // 100)``: iteration raises :class:`DecodeError`, after the ``n`` frames were
    yielded, when ``N - n > tol`` or when the decoded frames end more than ``tol`` frame
    intervals before the container's duration. A shortfall within ``tol`` is logged (debug), not
    raised: DALI's own frame count can differ from the packet count by a frame or two (it
    builds its own index), and an error after the last expected frame is taken as the end. Extra
    frames beyond the probe's count are yielded with pts extrapolated at ``1 / fps``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        device: Literal["cpu", "gpu"] = "cpu",
        sequence_length: int = 8,
        device_id: int = 0,
        probe: VideoProbe | None = None,
    ) -> None:
        self._pipe: Any = None
        self._exhausted = False
        self._chunk: list[Any] = []
        self._pos = 0
        self._decoded = 0  # frames taken out of DALI so far
        self._done = False
        self._error: DecodeError | None = None
        self._ring: _GpuRing | None = None

        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        for arg, value, low in (
            ("sequence_length", sequence_length, 1),
            ("device_id", device_id, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{arg} must be an int >= {low}, got {value!r}")
        if isinstance(path, int) or not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                "DALISource reads video files: path must be a str or os.PathLike, got "
                f"{type(path).__name__} (cameras and streams: use OpenCVSource / open_source)"
            )
        name = os.fspath(path)
        if not isinstance(name, str):
            raise TypeError(f"path must be a str path, got {type(name).__name__}")
        if "://" in name:
            raise ValueError(
                f"DALI decodes files, not streams: got {name!r}; open streams with OpenCVSource "
                "or open_source(uri)"
            )
        _check_video_file(name)
        self._name = f"'{name}'"
        self._device = device
        self._seq = sequence_length
        if probe is None:
            probe = probe_video(name)
        elif probe.path != name:
            raise ValueError(f"probe is of '{probe.path}', not of the path given, '{name}'")
        self._probe = probe
        if probe.frame_count == 0:
            found = (
                f"; its index claims {probe.reported_frames} frames, so the file is damaged"
                if probe.reported_frames
                else ""
            )
            raise DecodeError(
                f"video {self._name} contains no frames (no video packets found{found}); there is "
                "nothing to decode"
            )
        check_codec(probe, device)

        dali = require("nvidia.dali", purpose=_DALI_PURPOSE)
        if device == "gpu":
            cupy = require("cupy", purpose=_CUPY_PURPOSE)
            self._ring = _GpuRing(cupy, device_id)
        self._pipe = _build_pipeline(dali, device, sequence_length, device_id)
        # DALI copies the buffer (no_copy=False), so the file's bytes need not outlive this call.
        self._pipe.feed_input("enc", [np.fromfile(name, dtype=np.uint8)])
        logger.debug(
            "opened %s with DALI (%s decoder): %s %dx%d, fps=%s, %d frames expected",
            self._name,
            "NVDEC" if device == "gpu" else "CPU",
            probe.codec_name,
            *probe.size,
            probe.fps,
            probe.expected_frames,
        )

    # -- properties -------------------------------------------------------------------------

    @property
    def fps(self) -> float | None:
        """Nominal (average) frame rate from the container, or None."""
        return self._probe.fps

    @property
    def frame_count(self) -> int:
        """Frames the file holds (packets found by the probe)."""
        return self._probe.frame_count

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames."""
        return self._probe.size

    @property
    def is_live(self) -> bool:
        """Always False: DALI decodes files."""
        return False

    @property
    def device(self) -> Literal["cpu", "gpu"]:
        """Where frames are decoded and live."""
        return self._device

    @property
    def probe(self) -> VideoProbe:
        """The container probe (codec, pts of every frame, ...)."""
        return self._probe

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Release the DALI pipeline. Safe to call more than once; frames already yielded on the
        CPU stay valid, GPU frames stay valid until the ring is freed with the source."""
        pipe, self._pipe = self._pipe, None
        self._chunk, self._pos = [], 0
        del pipe  # DALI stops its worker threads when the pipeline is collected

    def __enter__(self) -> DALISource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._pipe is None else "open"
        return (
            f"DALISource({self._name}, {self._probe.codec_name}, device={self._device!r}, "
            f"{self.size[0]}x{self.size[1]}, fps={self.fps}, frame_count={self.frame_count}, "
            f"{state})"
        )

    # -- iteration --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._pos >= len(self._chunk):
            if self._pipe is None:
                if self._exhausted:
                    raise StopIteration
                raise ValueError(f"cannot read from {self._name}: the source is closed")
            if not self._done:
                self._decode_chunk()
            if self._pos >= len(self._chunk):
                self._exhausted = True
                self.close()
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopIteration
        index = self._decoded - len(self._chunk) + self._pos
        image = self._chunk[self._pos]
        self._pos += 1
        return Frame(index, self._pts(index), image, channel_order="rgb")

    def _decode_chunk(self) -> None:
        """Run DALI once: fill ``_chunk`` with up to ``sequence_length`` frames, or finish."""
        self._chunk, self._pos = [], 0
        if self._decoded >= self._probe.expected_frames:
            self._finish(None)  # the probe's count is reached: running again would fail
            return
        try:
            (out,) = self._pipe.run()
        except RuntimeError as exc:  # DALI reports every decoding failure as RuntimeError
            self._finish(_dali_reason(exc))
            return
        if self._device == "gpu":
            assert self._ring is not None
            frames = self._ring.store(out[0])
        else:
            chunk = np.array(out[0], copy=True)  # (F, H, W, 3) uint8 RGB; DALI reuses its buffer
            frames = list(chunk)
        self._chunk = frames
        self._decoded += len(frames)
        if len(frames) < self._seq:
            self._finish(None)  # last_sequence_policy="partial": a short chunk ends the clip

    def _finish(self, dali_reason: str | None) -> None:
        self._done = True
        self._error = self._end_error(self._decoded, dali_reason)

    def _pts(self, index: int) -> float:
        pts = self._probe.pts
        if index < len(pts):
            return pts[index]
        step = 1.0 / self._probe.fps if self._probe.fps else 0.0
        return pts[-1] + (index - len(pts) + 1) * step

    def _end_error(self, n: int, dali_reason: str | None) -> DecodeError | None:
        """The DecodeError to raise after ``n`` frames, or None when the clip is complete."""
        probe = self._probe
        expected = probe.expected_frames
        tol = _tolerated_missing(expected)
        fps = probe.fps
        # Where the decoded frames end: the start of the first missing one, or the packets' end.
        end = probe.covered if n >= probe.frame_count else probe.pts[n]
        short_time = (
            probe.duration is not None and fps is not None and probe.duration - end > tol / fps
        )
        if expected - n <= tol and not short_time:
            if n != expected or dali_reason:
                logger.debug(
                    "%s: DALI decoded %d frames, the probe expected %d%s; within tolerance %d",
                    self._name,
                    n,
                    expected,
                    f" (DALI then stopped: {dali_reason})" if dali_reason else "",
                    tol,
                )
            return None
        last = f"; the last decoded frame is at {self._pts(n - 1):.3f} s" if n else ""
        if expected - n > tol:
            length = f" ({probe.duration:.2f} s)" if probe.duration else ""
            what = f"ended after {n} of the {expected} frames its container holds{length}{last}"
        else:
            what = (
                f"ended after {n} frames, at {end:.3f} s, but its container says the video lasts "
                f"{probe.duration:.2f} s"
            )
        cause = f" DALI: {dali_reason}." if dali_reason else ""
        return DecodeError(
            f"video {self._name} {what}. The file is truncated or corrupt: the {n} frames already "
            f"returned are all that could be decoded.{cause} Re-download or re-encode the file to "
            "process all of it."
        )


class _GpuRing:
    """Preallocated GPU chunks that decoded frames are copied into, reused round-robin.

    DALI reuses its output buffers on the next run; copying each chunk into one of
    ``_GPU_RING_CHUNKS`` buffers of our own lets a frame outlive that, for a bounded number of
    frames (see DALISource), without allocating per chunk.
    """

    def __init__(self, cupy: Any, device_id: int) -> None:
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError as exc:
            raise BackendUnavailableError(
                f"DALISource(device='gpu') needs an NVIDIA GPU, but CUDA reports none ({exc}). "
                "Decode on the CPU: device='cpu' (DALI: VP8, VP9, MJPEG) or "
                "open_source(path, device='cpu', decoder='opencv')"
            ) from exc
        if device_id >= count:
            raise BackendUnavailableError(
                f"device_id={device_id}, but CUDA sees {count} GPU(s) (ids 0..{count - 1}); "
                "pass an existing device_id or device='cpu'"
            )
        self._cupy = cupy
        self._device = cupy.cuda.Device(device_id)
        with self._device:
            self._stream = cupy.cuda.Stream(non_blocking=True)
        self._buffers: list[Any] = []
        self._next = 0

    def store(self, tensor: Any) -> list[Any]:
        """Copy a DALI ``(F, H, W, 3)`` TensorGPU into the next ring slot; return its frames."""
        cp = self._cupy
        with self._device, self._stream:
            # DLPack with the stream protocol: our stream waits for DALI's decode to finish.
            view = cp.from_dlpack(tensor)  # (F, H, W, 3) uint8, DALI's memory
            frames = int(view.shape[0])
            if len(self._buffers) < _GPU_RING_CHUNKS:
                self._buffers.append(cp.empty(view.shape, dtype=cp.uint8))
            slot = self._next % _GPU_RING_CHUNKS
            self._next += 1
            buffer = self._buffers[slot]
            if buffer.shape[1:] != view.shape[1:] or buffer.shape[0] < frames:
                buffer = self._buffers[slot] = cp.empty(view.shape, dtype=cp.uint8)
            buffer[:frames] = view
            # Done before DALI's next run reuses its buffer, and before any consumer stream reads.
            self._stream.synchronize()
        return [buffer[i] for i in range(frames)]


def _build_pipeline(dali: Any, device: str, sequence_length: int, device_id: int) -> Any:
    from nvidia.dali import fn, pipeline_def

    @pipeline_def(
        batch_size=1,
        num_threads=2,
        device_id=device_id if device == "gpu" else None,
        prefetch_queue_depth=1,
    )
    def pipeline():
        return fn.experimental.inputs.video(
            name="enc",
            sequence_length=sequence_length,
            device="mixed" if device == "gpu" else "cpu",
            last_sequence_policy="partial",
        )

    pipe = pipeline()
    pipe.build()
    logger.debug("built DALI %s pipeline, DALI %s", device, getattr(dali, "__version__", "?"))
    return pipe


def _dali_reason(exc: RuntimeError) -> str:
    """The informative line of a DALI pipeline error (they run to a dozen lines of context)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("encountered:") and i + 1 < len(lines):
            return lines[i + 1]
    return lines[-1] if lines else type(exc).__name__
