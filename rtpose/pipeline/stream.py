"""``PoseEstimator`` (single images) and ``VideoPoseStream`` (frames of a video, in order)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rtpose.errors import BackendUnavailableError, DecodeError
from rtpose.estimators.one_stage import DetectorConfig, OneStagePose
from rtpose.estimators.results import Person, PoseFrame
from rtpose.estimators.top_down import BoxDetector, TopDownConfig, TopDownPose
from rtpose.models.zoo import get_model_info
from rtpose.pipeline.loading import load_one_stage, load_top_down
from rtpose.pipeline.runner import Runner, StreamStats
from rtpose.pipeline.steps import Followers, OneStageSteps, TopDownSteps
from rtpose.video.frames import FrameSource

if TYPE_CHECKING:
    from rtpose.track.smoothing import SmoothingConfig
    from rtpose.track.tracker import TrackerConfig


class PoseEstimator:
    """Pose of every person in single images: ``PoseEstimator()(image) -> list[Person]``.

    Args:
        model: zoo name (see :func:`rtpose.list_models`): a one-stage model (YOLO11-pose) or a
            top-down one (``"rsn18"``, ``"mspn50-4stg"``, ``"hourglass52"``, ...).
        weights: checkpoint path; default: the model's fetched default weights (top-down
            models have none: pass the checkpoint).
        backend: ``"auto"`` | ``"onnxruntime"`` | ``"openvino"`` | ``"torch"`` | ``"tensorrt"``
            (auto: TensorRT on a GPU, else the faster installed CPU backend).
        conf: person score threshold; iou: NMS IoU threshold.
        threads: CPU threads of the backend (default: the backend's choice).
        detector: top-down only: the person detector, a one-stage zoo name or a callable
            ``image -> (N, 5) [x1, y1, x2, y2, score]``.
        detector_weights: top-down only: the detector's checkpoint (default: fetched weights).
        flip_test: top-down only: also pose the mirrored crops and average (default: the zoo
            entry's setting, i.e. what its published accuracy used).
        input_size: top-down only: run the network at another (height, width).
        precision: ``backend="tensorrt"``: the engine precision (default fp16).
            ``"onnxruntime"`` (and ``"auto"`` on the CPU): ``"int8"`` runs the gated int8 CPU
            model, ``"fp32"``/None the fp32 export (fp16 is refused: not faster on the CPU).
            Engines and int8 models are built with rtpose-build's calibration and accuracy gate
            on first use and cached under ``$RTPOSE_HOME/engines``.
    """

    def __init__(
        self,
        model: str = "yolo11n-pose",
        *,
        weights: str | os.PathLike | None = None,
        backend: str = "auto",
        conf: float = 0.25,
        iou: float = 0.7,
        threads: int | None = None,
        detector: str | BoxDetector = "yolo11n-pose",
        detector_weights: str | os.PathLike | None = None,
        flip_test: bool | None = None,
        input_size: tuple[int, int] | None = None,
        precision: Literal["fp32", "fp16", "int8"] | None = None,
    ):
        self.config = DetectorConfig(conf=conf, iou=iou)
        info = get_model_info(model)
        self._pose: OneStagePose | TopDownPose
        if info.top_down:
            flip = info.flip_test if flip_test is None else flip_test
            self._pose = load_top_down(
                model, weights=weights, detector=detector, detector_weights=detector_weights,
                backend=backend, config=self.config, input_size=input_size, threads=threads,
                top_down=TopDownConfig(flip_test=flip), precision=precision,
            )  # fmt: skip
            return
        ignored = {"detector_weights": detector_weights, "flip_test": flip_test,
                   "input_size": input_size}  # fmt: skip
        given = [k for k, v in ignored.items() if v is not None] + (
            ["detector"] if detector != "yolo11n-pose" else []
        )
        if given:
            raise ValueError(
                f"{', '.join(given)} only apply to top-down models; {model} is a one-stage model"
            )
        self._pose = load_one_stage(
            model, weights=weights, backend=backend, config=self.config, threads=threads,
            precision=precision,
        )  # fmt: skip

    def close(self) -> None:
        """Release the backends (sessions, engines) now; idempotent."""
        self._pose.close()

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def backend_name(self) -> str:
        return self._pose.backend.name

    def __call__(self, image: np.ndarray | str | os.PathLike) -> list[Person]:
        """Persons in an (H, W, 3) uint8 BGR array or an image file, in image pixels."""
        if isinstance(image, (str, os.PathLike)):
            image = read_image(image)
        return self._pose(image)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 BGR with clear errors."""
    import cv2

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"expected an image file, got a directory: {path}")
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DecodeError(f"{path}: not a readable image (OpenCV could not decode it)")
    return image


SourceSpec = str | os.PathLike | int | FrameSource


class VideoPoseStream:
    """Stream the poses of every frame of one or more videos, cameras or frame sources.

    Use it as a context manager and iterate::

        with rtpose.VideoPoseStream("clip.mp4", track=True, smooth=True) as stream:
            for frame in stream:          # rtpose.PoseFrame
                ...

    Decoding, detection, pose and post-processing run as pipelined stages (one thread each,
    bounded queues; on GPU frames one CUDA stream each), so they overlap. Files yield every
    frame, in order. Live sources (cameras, URLs, or a file with ``live=True``, played in real
    time) have latest-frame semantics: a frame the pipeline could not take before the next one
    arrived is dropped and counted in :attr:`stats`, so latency does not grow. Several sources
    are stepped together: each step takes one frame of every source, and the detector and the
    pose network see all of them in one batch; ``PoseFrame.source`` says which source a frame
    is from. ``pipelined=False`` runs the same stages in the caller's thread with the same
    batches, giving identical results (for debugging).

    Args:
        source: a video file path, a webcam index (``0``) / device path / stream URL, an open
            :class:`rtpose.video.FrameSource`, or a list of these.
        model: zoo name; backend: ``"auto"`` | ``"onnxruntime"`` | ``"openvino"`` | ``"torch"``
            | ``"tensorrt"`` (see :class:`PoseEstimator`).
        weights: checkpoint path; default: the model's fetched default weights.
        precision: ``"fp16"`` (TensorRT's default), ``"fp32"`` or ``"int8"`` (also on the CPU
            backends: the gated int8 model); see :class:`PoseEstimator`.
        device: where to decode: ``"auto"`` (the GPU when the backend runs there), ``"cpu"`` or
            ``"gpu"`` (see :func:`rtpose.video.open_source`).
        live: None decides from the source (cameras and stream URLs are live); True plays a file
            in real time, as a camera would deliver it.
        track: assign track IDs (:class:`rtpose.track.tracker.PoseTracker`).
        smooth: One-Euro smoothing of the keypoints of each track (needs ``track``).
        detect_every: top-down only, with ``track``: run the detector every N frames of a source
            and crop the boxes predicted from the previous keypoints in between.
        tracker, smoothing: configuration of the tracker and of the smoothing filter.
        pipelined: stage threads (default) or everything in the caller's thread.
        detector, detector_weights, flip_test, input_size: top-down models only, see
            :class:`PoseEstimator`.
        conf, iou: detection thresholds.
        max_frames: stop after this many frames of each source (default: all).
        threads: CPU threads of the backend.
        return_images: attach the decoded frame to each PoseFrame (``frame.image``, host BGR).

    Iteration raises :class:`rtpose.errors.DecodeError` when a video turns out to be truncated
    or corrupt, after yielding the frames that did decode; any error in a stage is raised from
    the iteration with its original traceback. Leaving the ``with`` block (or :meth:`close`)
    stops every thread and releases the decoders.
    """

    def __init__(
        self,
        source: SourceSpec | Sequence[SourceSpec],
        model: str = "yolo11n-pose",
        backend: str = "auto",
        *,
        weights: str | os.PathLike | None = None,
        precision: Literal["fp32", "fp16", "int8"] | None = None,
        device: Literal["auto", "cpu", "gpu"] = "auto",
        live: bool | None = None,
        track: bool = False,
        smooth: bool = False,
        detect_every: int = 1,
        tracker: TrackerConfig | None = None,
        smoothing: SmoothingConfig | None = None,
        pipelined: bool = True,
        conf: float = 0.25,
        iou: float = 0.7,
        max_frames: int | None = None,
        threads: int | None = None,
        return_images: bool = False,
        detector: str | BoxDetector = "yolo11n-pose",
        detector_weights: str | os.PathLike | None = None,
        flip_test: bool | None = None,
        input_size: tuple[int, int] | None = None,
    ):
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        if device not in ("auto", "cpu", "gpu"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'gpu', got {device!r}")
        _check_follow_options(model, track, smooth, detect_every, tracker, smoothing)
        self.max_frames = max_frames
        self.return_images = return_images
        self.pipelined = pipelined
        specs = list(source) if isinstance(source, list | tuple) else [source]
        if not specs:
            raise ValueError("source is an empty list: give at least one video, camera or source")
        decode_on = _decode_device(device, backend)
        # open the sources first: a bad video fails fast, before any model is loaded
        self.sources: list[FrameSource] = []
        try:
            for spec in specs:
                self.sources.append(_open(spec, decode_on, live))
            self.estimator = PoseEstimator(
                model, weights=weights, backend=backend, conf=conf, iou=iou, threads=threads,
                detector=detector, detector_weights=detector_weights, flip_test=flip_test,
                input_size=input_size, precision=precision,
            )  # fmt: skip
        except BaseException:
            self._close_sources()
            raise
        self._stop = threading.Event()
        followers = _followers(track, smooth, tracker, smoothing, self._skeleton)
        pose = self.estimator._pose
        if isinstance(pose, TopDownPose):
            steps: Any = TopDownSteps(
                pose, followers, detect_every=detect_every, return_images=return_images,
                stop=self._stop,
            )  # fmt: skip
        else:
            steps = OneStageSteps(pose, followers, return_images=return_images)
        gpu = any(_on_gpu(s) for s in self.sources)
        self._runner = Runner(
            self.sources, steps, pipelined=pipelined, stop=self._stop, max_frames=max_frames,
            gpu_device=0 if gpu else None,
        )  # fmt: skip
        self._started = False
        self._closed = False

    @property
    def _skeleton(self) -> str:
        return self.estimator._pose.info.skeleton

    @property
    def source(self) -> FrameSource:
        """The (first) frame source."""
        return self.sources[0]

    @property
    def fps(self) -> float | None:
        return self.sources[0].fps

    @property
    def is_live(self) -> bool:
        return any(s.is_live for s in self.sources)

    @property
    def frame_count(self) -> int | None:
        """Frames the stream will yield (all sources), when known."""
        total = 0
        for s in self.sources:
            n = s.frame_count
            if self.max_frames is not None:
                n = self.max_frames if n is None else min(n, self.max_frames)
            if n is None:
                return None
            total += n
        return total

    @property
    def stats(self) -> StreamStats:
        """Frames yielded, live frames dropped, elapsed time and FPS so far."""
        return self._runner.stats

    def __enter__(self) -> VideoPoseStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every stage thread, close the sources and the backends, and free cached GPU
        memory."""
        if self._closed:
            return
        self._closed = True
        self._runner.close()
        self._close_sources()
        self.estimator.close()
        if self._runner.gpu_device is not None:
            from rtpose.cuda.streams import free_memory_pool

            free_memory_pool()

    def _close_sources(self) -> None:
        for s in self.sources:
            s.close()

    def __iter__(self) -> Iterator[PoseFrame]:
        if self._started:
            raise RuntimeError("a VideoPoseStream can be iterated only once; open a new one")
        self._started = True
        try:
            yield from self._runner
        finally:
            self.close()


def _open(spec: SourceSpec, device: str, live: bool | None) -> FrameSource:
    from rtpose.video import open_source

    if isinstance(spec, FrameSource) and not isinstance(spec, str | os.PathLike | int):
        if live is not None and bool(live) != spec.is_live:
            raise ValueError(
                f"live={live} conflicts with the given {type(spec).__name__}, whose is_live is "
                f"{spec.is_live}; open the source with the live setting you want"
            )
        return spec
    return open_source(spec, device=device, live=live)


def _decode_device(device: str, backend: str) -> str:
    """``device="auto"``: decode on the GPU only when the network runs there too."""
    if device != "auto":
        return device
    from rtpose.backends.base import resolve_backend_name

    try:
        name = resolve_backend_name(backend)
    except (ValueError, BackendUnavailableError):
        return "cpu"  # PoseEstimator reports the backend problem
    if name == "tensorrt":
        return "auto"
    if name == "torch":
        import torch

        if torch.cuda.is_available():
            return "auto"  # the torch backend runs on the GPU: decode there too
    return "cpu"


def _on_gpu(source: FrameSource) -> bool:
    return getattr(source, "device", "cpu") == "gpu"


def _followers(track, smooth, tracker, smoothing, skeleton: str) -> Followers:
    make_tracker = make_smoother = None
    if track:
        from rtpose.track.tracker import PoseTracker

        def make_tracker():
            return PoseTracker(tracker, skeleton=skeleton)

    if smooth:
        from rtpose.track.smoothing import KeypointSmoother

        def make_smoother():
            return KeypointSmoother(smoothing)

    return Followers(make_tracker, make_smoother)


def _check_follow_options(model, track, smooth, detect_every, tracker, smoothing) -> None:
    if isinstance(detect_every, bool) or not isinstance(detect_every, int) or detect_every < 1:
        raise ValueError(f"detect_every must be an int >= 1, got {detect_every!r}")
    if smooth and not track:
        raise ValueError("smooth=True smooths each track's keypoints: it needs track=True")
    if detect_every > 1:
        if not track:
            raise ValueError(
                "detect_every > 1 crops the boxes predicted from tracked keypoints: it needs "
                "track=True"
            )
        if not get_model_info(model).top_down:
            raise ValueError(
                f"detect_every only applies to top-down models; {model} finds people and their "
                "keypoints in one pass, so it runs on every frame"
            )
    if tracker is not None and not track:
        raise ValueError("tracker= configures tracking: pass track=True too")
    if smoothing is not None and not smooth:
        raise ValueError("smoothing= configures smoothing: pass smooth=True too")
