"""``PoseEstimator`` (single images) and ``VideoPoseStream`` (frames of a video, in order)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rtpose.errors import DecodeError
from rtpose.models.zoo import get_model_info
from rtpose.pipeline.one_stage import DetectorConfig, OneStagePose
from rtpose.pipeline.results import Person, PoseFrame
from rtpose.pipeline.top_down import BoxDetector, TopDownConfig, TopDownPose


class PoseEstimator:
    """Pose of every person in single images: ``PoseEstimator()(image) -> list[Person]``.

    Args:
        model: zoo name (see :func:`rtpose.list_models`): a one-stage model (YOLO11-pose) or a
            top-down one (``"rsn18"``, ``"mspn50-4stg"``, ``"hourglass52"``, ...).
        weights: checkpoint path; default: the model's fetched default weights (top-down
            models have none: pass the checkpoint).
        backend: ``"auto"`` | ``"onnxruntime"`` | ``"torch"``.
        conf: person score threshold; iou: NMS IoU threshold.
        threads: CPU threads of the backend (default: the backend's choice).
        detector: top-down only: the person detector, a one-stage zoo name or a callable
            ``image -> (N, 5) [x1, y1, x2, y2, score]``.
        detector_weights: top-down only: the detector's checkpoint (default: fetched weights).
        flip_test: top-down only: also pose the mirrored crops and average (default: the zoo
            entry's setting, i.e. what its published accuracy used).
        input_size: top-down only: run the network at another (height, width).
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
    ):
        self.config = DetectorConfig(conf=conf, iou=iou)
        info = get_model_info(model)
        self._pose: OneStagePose | TopDownPose
        if info.top_down:
            flip = info.flip_test if flip_test is None else flip_test
            self._pose = TopDownPose(
                model, weights=weights, detector=detector, detector_weights=detector_weights,
                backend=backend, config=self.config, input_size=input_size, threads=threads,
                top_down=TopDownConfig(flip_test=flip),
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
        self._pose = OneStagePose(
            model, weights=weights, backend=backend, config=self.config, threads=threads
        )

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


class VideoPoseStream:
    """Stream the poses of every frame of a video file or webcam.

    Use it as a context manager and iterate::

        with rtpose.VideoPoseStream("clip.mp4") as stream:
            for frame in stream:          # rtpose.PoseFrame
                ...

    Args:
        source: a video file path, or a webcam index (``0``) / device path.
        model: zoo name; backend: ``"auto"`` | ``"onnxruntime"`` | ``"torch"``.
        weights: checkpoint path; default: the model's fetched default weights.
        detector, detector_weights, flip_test, input_size: top-down models only, see
            :class:`PoseEstimator`.
        conf, iou: detection thresholds.
        max_frames: stop after this many frames (default: the whole video).
        threads: CPU threads of the backend.
        return_images: attach the decoded frame to each PoseFrame (``frame.image``), e.g. to draw.

    Iteration raises :class:`rtpose.errors.DecodeError` when the video turns out to be truncated or
    corrupt, after yielding the frames that did decode.
    """

    def __init__(
        self,
        source: str | os.PathLike | int,
        model: str = "yolo11n-pose",
        backend: str = "auto",
        *,
        weights: str | os.PathLike | None = None,
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
        from rtpose.video import open_source

        self.max_frames = max_frames
        self.return_images = return_images
        # open the source first: a bad video fails fast, before any model is loaded
        self.source = open_source(source, device="cpu")
        try:
            self.estimator = PoseEstimator(
                model, weights=weights, backend=backend, conf=conf, iou=iou, threads=threads,
                detector=detector, detector_weights=detector_weights, flip_test=flip_test,
                input_size=input_size,
            )  # fmt: skip
        except BaseException:
            self.source.close()
            raise
        self._started = False

    @property
    def fps(self) -> float | None:
        return self.source.fps

    @property
    def frame_count(self) -> int | None:
        """Frames the stream will yield, when known."""
        n = self.source.frame_count
        if self.max_frames is not None:
            return self.max_frames if n is None else min(n, self.max_frames)
        return n

    def __enter__(self) -> VideoPoseStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.source.close()

    def __iter__(self) -> Iterator[PoseFrame]:
        if self._started:
            raise RuntimeError("a VideoPoseStream can be iterated only once; open a new one")
        self._started = True
        frames = iter(self.source)
        pose = self.estimator._pose
        count = 0
        try:
            while self.max_frames is None or count < self.max_frames:
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                timings = {"decode": (time.perf_counter() - t0) * 1e3}
                persons = pose(frame.image, timings)
                count += 1
                image = frame.image if self.return_images else None
                yield PoseFrame(frame.index, frame.pts, persons, timings, image=image)
        finally:
            self.close()
