"""The one-stage path: letterbox -> YOLO-pose network -> filter + NMS -> frame coordinates."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtpose.codecs.yolo import decode_yolo_pose
from rtpose.engine.loader import load_yolo_backend
from rtpose.models.zoo import get_model_info
from rtpose.ops import affine_warp, letterbox_matrix
from rtpose.ops.letterbox import Letterbox
from rtpose.pipeline.results import Person

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
    """

    def __init__(
        self,
        model: str = "yolo11n-pose",
        *,
        weights: str | Path | None = None,
        backend: str = "auto",
        config: DetectorConfig | None = None,
        threads: int | None = None,
    ):
        self.info = get_model_info(model)
        self.config = config or DetectorConfig()
        self.backend = load_yolo_backend(
            self.info, weights=weights, backend=backend, threads=threads
        )
        self._input = self.backend.input_names[0]
        self._letterboxes: dict[tuple[int, int], Letterbox] = {}
        self._buffer: np.ndarray | None = None

    def letterbox(self, frame_hw: tuple[int, int]) -> Letterbox:
        """The letterbox used for frames of this size (rectangular, padded to stride 32)."""
        lb = self._letterboxes.get(frame_hw)
        if lb is None:
            lb = letterbox_matrix(frame_hw, self.info.input_size, auto=True, stride=32)
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

    def postprocess(
        self, preds: np.ndarray, lb: Letterbox, frame_hw: tuple[int, int]
    ) -> list[Person]:
        """Predictions of one image -> persons in frame pixels, boxes and keypoints clipped."""
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
