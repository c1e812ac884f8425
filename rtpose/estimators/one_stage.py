"""The one-stage path: letterbox -> YOLO-pose network -> filter + NMS -> frame coordinates."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtpose.backends.base import Backend
from rtpose.codecs.yolo import decode_yolo_pose
from rtpose.estimators.preprocess import check_image, letterbox_batch, yolo_letterbox
from rtpose.estimators.results import Person
from rtpose.models.zoo import ModelInfo, get_model_info
from rtpose.ops.letterbox import Letterbox
from rtpose.video.frames import Frame

log = logging.getLogger(__name__)


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
    """YOLO-pose on whole frames, given a backend running the network.

    Frames of one size share a letterbox; host batches reuse preallocated input buffers.
    ``pipeline.loading.load_one_stage`` builds one from a zoo name, weights and a backend name.

    Args:
        info: the zoo entry (or its name), e.g. ``"yolo11n-pose"``.
        backend: a :class:`rtpose.backends.Backend` running that network.
        config: detection thresholds.
    """

    def __init__(
        self,
        info: ModelInfo | str,
        backend: Backend,
        *,
        config: DetectorConfig | None = None,
    ):
        self.info = get_model_info(info) if isinstance(info, str) else info
        self.config = config or DetectorConfig()
        self.backend = backend
        self.normalisation = self.info.normalisation
        self._input = backend.input_names[0]
        self._letterboxes: dict[tuple[int, int], Letterbox] = {}
        self._input_buffers: dict[tuple[int, ...], np.ndarray] = {}

    def close(self) -> None:
        """Release the backend (idempotent)."""
        self.backend.close()

    def letterbox(self, frame_hw: tuple[int, int]) -> Letterbox:
        """The letterbox used for frames of this size (rectangular, padded to stride 32, unless
        the backend takes one fixed input size, as TensorRT engines do)."""
        lb = self._letterboxes.get(frame_hw)
        if lb is None:
            fixed = _fixed_input_hw(self.backend, self._input)
            lb = yolo_letterbox(frame_hw, fixed or self.info.input_size, fixed=fixed is not None)
            self._letterboxes[frame_hw] = lb
        return lb

    def infer(self, batch: Any) -> Any:
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
            groups.setdefault(frame.hw, []).append(i)
        out: list[RawDetections | None] = [None] * len(frames)
        for hw, members in groups.items():
            t0 = time.perf_counter()
            lb = self.letterbox(hw)
            group = [frames[i] for i in members]
            batch = self._letterbox_group(group, lb, stream)
            t1 = time.perf_counter()
            preds = self.infer(batch)  # (B, C, A)
            t2 = time.perf_counter()
            times["preprocess"] = times.get("preprocess", 0.0) + (t1 - t0) * 1e3
            times["model"] = times.get("model", 0.0) + (t2 - t1) * 1e3
            for row, i in enumerate(members):
                out[i] = RawDetections(preds, row, lb, hw)
        return out  # type: ignore[return-value]

    def _letterbox_group(self, frames: Sequence[Frame], lb: Letterbox, stream: Any) -> Any:
        order = frames[0].channel_order
        if any(f.channel_order != order for f in frames):
            raise ValueError("frames of one batch must share a channel order")
        on_gpu = frames[0].on_gpu
        if any(f.on_gpu != on_gpu for f in frames):
            raise ValueError("frames of one batch must all be on the host or all on the GPU")
        buffer = None if on_gpu else self._input_buffer((len(frames), 3, *lb.out_hw))
        return letterbox_batch(
            [f.image for f in frames], lb, self.normalisation, image_order=order,
            stream=stream if on_gpu else None, out=buffer,
        )  # fmt: skip

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
        buf = self._input_buffers.get(shape)
        if buf is None:
            buf = self._input_buffers[shape] = np.empty(shape, np.float32)
        return buf

    def persons(self, raw: RawDetections) -> list[Person]:
        """Persons of one frame from :meth:`forward`'s output (host post-processing)."""
        preds = raw.host_candidates(self.config.conf)
        return self.postprocess(preds, raw.letterbox, raw.frame_hw)

    def __call__(self, image: np.ndarray, timings: dict[str, float] | None = None) -> list[Person]:
        """Persons in one (H, W, 3) uint8 BGR image: the batched path with one frame; adds
        stage times (ms) to ``timings``."""
        check_image(image)
        times: dict[str, float] = {}
        raw = self.forward([Frame(index=0, pts=0.0, image=image)], times=times)[0]
        t0 = time.perf_counter()
        persons = self.persons(raw)
        times["postprocess"] = (time.perf_counter() - t0) * 1e3
        if timings is not None:
            timings.update(times)
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
        from rtpose.cuda.streams import score_candidates

        k = (int(self.preds.shape[1]) - 5) // 3  # one class (person): 4 + 1 + 3K rows
        return score_candidates(self.preds, self.row, conf, num_keypoints=k)


def _fixed_input_hw(backend: Backend, name: str) -> tuple[int, int] | None:
    """(h, w) when the backend only takes one input size (a TensorRT engine), else None."""
    spec = backend.inputs.get(name)
    if spec is None or len(spec.shape) != 4:
        return None
    h, w = spec.shape[2], spec.shape[3]
    return (h, w) if h > 0 and w > 0 else None
