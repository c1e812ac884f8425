"""The one-stage path: letterbox -> YOLO-pose network -> filter + NMS -> frame coordinates."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rtpose.codecs.yolo import decode_yolo_pose
from rtpose.engine.loader import load_yolo_backend
from rtpose.models.zoo import get_model_info
from rtpose.ops import affine_warp, letterbox_matrix
from rtpose.ops.letterbox import Letterbox
from rtpose.pipeline.results import Person
from rtpose.video.frames import Frame

log = logging.getLogger(__name__)

PAD_VALUE = 114.0  # grey the YOLO models were trained with around letterboxed images


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds of the one-stage detector (ultralytics' predict defaults)."""

    conf: float = 0.25  # keep persons whose score is above this
    iou: float = 0.7  # NMS IoU threshold
    max_persons: int = 300

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf < 1.0:
            raise ValueError(f"conf must be in [0, 1), got {self.conf}")
        if not 0.0 < self.iou <= 1.0:
            raise ValueError(f"iou must be in (0, 1], got {self.iou}")
        if self.max_persons < 1:
            raise ValueError(f"max_persons must be >= 1, got {self.max_persons}")


class OneStagePose:
    """YOLO-pose on whole frames. Frames of one size share a letterbox and an input buffer.

    Args:
        model: zoo name, e.g. ``"yolo11n-pose"``.
        weights: checkpoint path; default: the fetched default weights of the model.
        backend: ``"auto"``, ``"onnxruntime"`` or ``"torch"``.
        config: detection thresholds.
        threads: CPU threads of the backend (default: the backend's choice).
        precision: TensorRT only: engine precision.
    """

    def __init__(
        self,
        model: str = "yolo11n-pose",
        *,
        weights: str | Path | None = None,
        backend: str = "auto",
        config: DetectorConfig | None = None,
        threads: int | None = None,
        precision: str | None = None,
    ):
        self.info = get_model_info(model)
        self.config = config or DetectorConfig()
        self.backend = load_yolo_backend(
            self.info, weights=weights, backend=backend, threads=threads, precision=precision
        )
        self._input = self.backend.input_names[0]
        self._letterboxes: dict[tuple[int, int], Letterbox] = {}
        self._buffer: np.ndarray | None = None

    def letterbox(self, frame_hw: tuple[int, int]) -> Letterbox:
        """The letterbox used for frames of this size (rectangular, padded to stride 32, unless
        the backend takes one fixed input size, as TensorRT engines do)."""
        lb = self._letterboxes.get(frame_hw)
        if lb is None:
            fixed = _fixed_input_hw(self.backend, self._input)
            size = fixed or self.info.input_size
            lb = letterbox_matrix(frame_hw, size, auto=fixed is None, stride=32)
            self._letterboxes[frame_hw] = lb
        return lb

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """(H, W, 3) uint8 BGR -> (1, 3, h, w) float32 RGB in [0, 1], letterboxed."""
        _check_image(image)
        lb = self.letterbox(image.shape[:2])
        shape = (1, 3, *lb.out_hw)
        if self._buffer is None or self._buffer.shape != shape:
            self._buffer = np.empty(shape, np.float32)
        affine_warp(
            image, lb.matrix, lb.out_hw, mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0),
            channel_order="rgb", border_value=PAD_VALUE, out=self._buffer,
        )  # fmt: skip
        return self._buffer, lb

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(B, 3, h, w) -> raw predictions (B, 4 + nc + K*3, A)."""
        return self.backend.run({self._input: batch})[self.backend.output_names[0]]

    def forward(
        self,
        frames: Sequence[Frame],
        stream: Any = None,
        times: dict[str, float] | None = None,
    ) -> list[RawDetections]:
        """Letterbox + network for several frames (host or GPU), batched per frame size.

        Returns one :class:`RawDetections` per frame, in order; on the GPU the predictions stay
        there. Adds the milliseconds spent to ``times["preprocess"]`` and ``times["model"]``.
        """
        times = {} if times is None else times
        groups: dict[tuple[int, int], list[int]] = {}
        for i, frame in enumerate(frames):
            groups.setdefault((frame.size[1], frame.size[0]), []).append(i)
        out: list[RawDetections | None] = [None] * len(frames)
        for hw, members in groups.items():
            t0 = time.perf_counter()
            lb = self.letterbox(hw)
            group = [frames[i] for i in members]
            buffer = None if group[0].on_gpu else self._input_buffer((len(group), 3, *lb.out_hw))
            batch = _warp_letterbox(group, lb, stream, buffer)
            t1 = time.perf_counter()
            preds = self.infer(batch)  # (B, C, A)
            t2 = time.perf_counter()
            times["preprocess"] = times.get("preprocess", 0.0) + (t1 - t0) * 1e3
            times["model"] = times.get("model", 0.0) + (t2 - t1) * 1e3
            for row, i in enumerate(members):
                out[i] = RawDetections(preds, row, lb, hw)
        return out  # type: ignore[return-value]

    def postprocess(
        self, preds: np.ndarray, lb: Letterbox, frame_hw: tuple[int, int]
    ) -> list[Person]:
        """Predictions of one image (1, C, A) -> persons in frame pixels, boxes and keypoints
        clipped."""
        det = decode_yolo_pose(
            preds, conf_threshold=self.config.conf, iou_threshold=self.config.iou,
            max_detections=self.config.max_persons,
        )[0]  # fmt: skip
        h, w = frame_hw
        boxes = lb.boxes_to_source(det.boxes)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        kpts = lb.to_source(det.keypoints)
        kpts[..., 0] = kpts[..., 0].clip(0, w)
        kpts[..., 1] = kpts[..., 1].clip(0, h)
        return [
            Person(box=tuple(float(v) for v in b), score=float(s), keypoints=k.astype(np.float32))
            for b, s, k in zip(boxes, det.scores, kpts)
        ]

    def _input_buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """The preallocated host input batch of this shape (reused: the network has read it
        before the next call, which comes from the same stage thread)."""
        buffers = self.__dict__.setdefault("_input_buffers", {})
        buf = buffers.get(shape)
        if buf is None:
            buf = buffers[shape] = np.empty(shape, np.float32)
        return buf

    def persons(self, raw: RawDetections) -> list[Person]:
        """Persons of one frame from :meth:`forward`'s output (host post-processing)."""
        preds = raw.host_candidates(self.config.conf)
        return self.postprocess(preds, raw.letterbox, raw.frame_hw)

    def __call__(self, image: np.ndarray, timings: dict[str, float] | None = None) -> list[Person]:
        """Persons in one (H, W, 3) uint8 BGR image; adds stage times (ms) to ``timings``."""
        t0 = time.perf_counter()
        batch, lb = self.preprocess(image)
        t1 = time.perf_counter()
        preds = self.infer(batch)
        t2 = time.perf_counter()
        persons = self.postprocess(preds, lb, image.shape[:2])
        t3 = time.perf_counter()
        if timings is not None:
            timings["preprocess"] = (t1 - t0) * 1e3
            timings["model"] = (t2 - t1) * 1e3
            timings["postprocess"] = (t3 - t2) * 1e3
        return persons


@dataclass
class RawDetections:
    """The network output for one frame of a batch: ``preds[row]`` (host or GPU)."""

    preds: Any  # (B, C, A) numpy or GPU array
    row: int
    letterbox: Letterbox
    frame_hw: tuple[int, int]

    def host_candidates(self, conf: float) -> np.ndarray:
        """(1, C, M) numpy predictions of this frame. On the GPU only the anchors whose best
        class score exceeds ``conf`` are copied (the rest cannot survive the decoder's own
        threshold, so the result is the same), a few KB instead of the whole output."""
        if isinstance(self.preds, np.ndarray):
            return self.preds[self.row : self.row + 1]
        from rtpose.pipeline.gpu import score_candidates

        k = (int(self.preds.shape[1]) - 5) // 3  # one class (person): 4 + 1 + 3K rows
        return score_candidates(self.preds, self.row, conf, num_keypoints=k)


def _warp_letterbox(frames: Sequence[Frame], lb: Letterbox, stream: Any, out: Any = None) -> Any:
    """(B, 3, h, w) float32 RGB in [0, 1] letterboxed frames; one kernel call for all."""
    order = frames[0].channel_order
    if any(f.channel_order != order for f in frames):
        raise ValueError("frames of one batch must share a channel order")
    images = [f.image for f in frames]
    on_gpu = frames[0].on_gpu
    if any(f.on_gpu != on_gpu for f in frames):
        raise ValueError("frames of one batch must all be on the host or all on the GPU")
    matrices = np.repeat(lb.matrix[None], len(frames), axis=0)
    return affine_warp(
        images if len(images) > 1 else images[0], matrices, lb.out_hw,
        frame_index=np.arange(len(images)) if len(images) > 1 else None,
        mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0),
        channel_order=warp_channel_order("rgb", order), border_value=PAD_VALUE,
        stream=stream if on_gpu else None, out=out,
    )  # fmt: skip


def warp_channel_order(want: str, frame_order: str) -> Literal["rgb", "bgr"]:
    """The ``channel_order`` argument of :func:`rtpose.ops.affine_warp` (which reverses the
    channels for "rgb") that gives ``want`` from frames in ``frame_order``."""
    if frame_order == "bgr":
        return want  # type: ignore[return-value]
    return "bgr" if want == "rgb" else "rgb"


def _fixed_input_hw(backend: Any, name: str) -> tuple[int, int] | None:
    """(h, w) when the backend only takes one input size (a TensorRT engine), else None."""
    inputs = getattr(backend, "inputs", None)
    info = inputs.get(name) if isinstance(inputs, dict) else None
    shape = getattr(info, "shape", None)
    if shape is None or len(shape) != 4:
        return None
    try:
        h, w = int(shape[2]), int(shape[3])
    except (TypeError, ValueError):  # symbolic dimensions
        return None
    return (h, w) if h > 0 and w > 0 else None


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"image must be a numpy array (H, W, 3) uint8 BGR, got {type(image).__name__}"
        )
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be (H, W, 3) uint8 BGR, got {image.dtype} with shape {image.shape}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: shape {image.shape}")
