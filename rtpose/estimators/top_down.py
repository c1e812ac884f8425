"""The top-down path: person boxes -> crops -> pose network -> heatmap decoding -> frame pixels.

Per frame (Xiao et al. 2018 / MMPose top-down geometry):

1. a detector gives person boxes (YOLO11-pose by default, only its boxes are used);
2. every box is enlarged by 1.25 and fitted to the network's aspect ratio
   (:func:`rtpose.ops.box_to_affine`); all people of the frame are cropped in one batched
   :func:`rtpose.ops.affine_warp`, normalised as the weights expect;
3. one pose-network call on the (N, 3, H, W) batch (2N with the flip test: the mirrored crops
   ride in the same batch, and :func:`rtpose.ops.flip_merge` averages the flipped-back maps in);
4. :func:`rtpose.ops.decode_heatmaps` with the model codec's refinement, mapping heatmap pixels
   straight to frame pixels through ``inverse crop map @ diag(heatmap -> input scale)``.

Keypoints are not clipped to the frame: a joint outside the picture (the crop is padded) keeps
its extrapolated position, with the network's score.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtpose.backends.base import Backend
from rtpose.estimators.one_stage import OneStagePose
from rtpose.estimators.preprocess import check_image, crop_batch
from rtpose.estimators.results import Person
from rtpose.models.zoo import ModelInfo, Normalisation
from rtpose.ops import decode_heatmaps, flip_merge
from rtpose.ops.box_affine import DEFAULT_PADDING
from rtpose.skeletons import get_skeleton
from rtpose.video.frames import Frame

log = logging.getLogger(__name__)

# A detector: (H, W, 3) uint8 BGR -> (N, 5) float array of x1, y1, x2, y2, score.
BoxDetector = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TopDownConfig:
    """Options of the top-down path."""

    flip_test: bool = False  # also run mirrored crops and average (slower, usually more accurate)
    padding: float = DEFAULT_PADDING  # box enlargement before cropping (MMPose: 1.25)
    max_batch: int = 64  # crops per network call (2x when flip testing)

    def __post_init__(self) -> None:
        if not self.padding > 0:
            raise ValueError(f"padding must be > 0, got {self.padding}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")


class YoloPersonDetector:
    """Person boxes from a YOLO11-pose zoo model (its keypoints are dropped)."""

    def __init__(self, pose: OneStagePose):
        self.pose = pose
        self.backend = pose.backend

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return _boxes_of(self.pose(image))


class TopDownPose:
    """Pose of every person in a frame with a top-down network, given its backend.

    ``pipeline.loading.load_top_down`` builds one from zoo names, weights and a backend name.

    Args:
        info: the pose network's zoo entry (its input size may differ from the zoo's).
        network: a :class:`rtpose.backends.Backend` running the pose network (or any object
            with ``run``, ``input_names``, ``output_names``, ``batch_range`` and ``close``, such
            as a stand-in network in tests).
        normalisation: the crop normalisation the network's weights expect.
        detector: person boxes: a :class:`OneStagePose` (batched over frames, on the GPU for
            GPU frames) or a callable ``image -> (N, 5) [x1, y1, x2, y2, score]``.
        top_down: flip test, padding, batch size.
    """

    def __init__(
        self,
        info: ModelInfo,
        network: Backend,
        normalisation: Normalisation,
        detector: BoxDetector | OneStagePose,
        top_down: TopDownConfig | None = None,
    ):
        if isinstance(detector, OneStagePose):
            detector = YoloPersonDetector(detector)
        self._setup(info, network, normalisation, detector, top_down or TopDownConfig())

    def close(self) -> None:
        """Release the pose network's backend and the detector's (idempotent)."""
        self.backend.close()
        if isinstance(self.detector, YoloPersonDetector):
            self.detector.pose.close()

    def _setup(self, info, network, norm, detector, top_down: TopDownConfig) -> None:
        self.info = info
        self.backend = network
        self.normalisation = norm
        self.detector = detector
        self.top_down = top_down
        self.skeleton = get_skeleton(info.skeleton)
        self.codec = info.codec.build(info.input_size, info.heatmap_size)
        spec = self.codec.decode_spec
        self._mode = spec.mode
        self._blur = spec.blur_kernel
        self._flip_shift = spec.flip_shift  # the zoo entry's codec decides (Newell: no shift)
        self._scale = spec.scale(info.input_size, info.heatmap_size)  # heatmap px -> input px
        self._input = network.input_names[0]
        self._output = network.output_names[0]

    # --- stages ---------------------------------------------------------------------------------

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(N, 5) boxes x1, y1, x2, y2, score of the people in ``image``."""
        boxes = np.asarray(self.detector(image), dtype=np.float64)
        if boxes.ndim != 2 or boxes.shape[1] < 5:
            raise ValueError(
                f"the detector must return an (N, 5) array [x1, y1, x2, y2, score], got shape "
                f"{boxes.shape}"
            )
        return boxes[:, :5]

    def infer(self, crops: Any) -> Any:
        """(B, 3, H, W) -> (B, K, h, w) heatmaps, in batches of at most ``max_batch``."""
        step = self.top_down.max_batch * (2 if self.top_down.flip_test else 1)
        limit = self.backend.batch_range  # an engine's largest batch
        if limit is not None:
            step = min(step, int(limit[1]))
        total = int(crops.shape[0])
        if total <= step:  # one call; no slicing (GPU DeviceArrays do not slice)
            heatmaps = self.backend.run({self._input: crops})[self._output]
        else:
            if not isinstance(crops, np.ndarray):
                from rtpose.cuda.streams import as_cupy

                crops = as_cupy(crops)
            parts = [
                self.backend.run({self._input: crops[i : i + step]})[self._output]
                for i in range(0, total, step)
            ]
            heatmaps = _concatenate(parts)
        self._check_heatmaps(heatmaps, total)
        return heatmaps

    def decode(self, heatmaps: Any, inverse: np.ndarray, *, stream: Any = None) -> Any:
        """(B, K, h, w) network output -> (N, K, 3) keypoints x, y, score in frame pixels
        (on the GPU for GPU heatmaps, with ``stream``)."""
        n = len(inverse)
        gpu = stream if not isinstance(heatmaps, np.ndarray) else None
        if self.top_down.flip_test:
            heatmaps = flip_merge(
                heatmaps[:n], heatmaps[n:], self.skeleton.flip_index, shift=self._flip_shift,
                stream=gpu,
            )  # fmt: skip
        transforms = inverse.copy()
        transforms[:, :, 0] *= self._scale[0]
        transforms[:, :, 1] *= self._scale[1]
        if gpu is None:
            return decode_heatmaps(heatmaps, transforms, mode=self._mode, blur_kernel=self._blur)
        return decode_heatmaps(
            heatmaps, transforms, mode=self._mode, blur_kernel=self._blur, stream=gpu
        )

    def __call__(self, image: np.ndarray, timings: dict[str, float] | None = None) -> list[Person]:
        """Persons in one (H, W, 3) uint8 BGR image: the batched path with one frame; adds
        stage times (ms) to ``timings``."""
        check_image(image)
        frame = Frame(index=0, pts=0.0, image=image)
        t0 = time.perf_counter()
        boxes = self.detect_frames([frame])
        t1 = time.perf_counter()
        stages = {"detect": (t1 - t0) * 1e3, "crop": 0.0, "pose": 0.0, "postprocess": 0.0}
        batch = self.pose_forward([frame], boxes, times=stages)
        t2 = time.perf_counter()
        persons = self.pose_decode(batch, boxes)[0]
        stages["postprocess"] = (time.perf_counter() - t2) * 1e3
        if timings is not None:
            timings.update(stages)
        return persons

    # --- batched stages over frames (VideoPoseStream) -------------------------------------------

    def detect_frames(self, frames: Sequence[Frame], stream: Any = None) -> list[np.ndarray]:
        """(N, 5) boxes per frame. The YOLO detector runs once per frame size over the batch
        (on the GPU for GPU frames); a callable detector gets each frame as a host BGR image."""
        if isinstance(self.detector, YoloPersonDetector):
            pose = self.detector.pose
            raws = pose.forward(frames, stream)
            return [_boxes_of(pose.persons(raw)) for raw in raws]
        return [self.detect(f.to_host_bgr()) for f in frames]

    def pose_forward(
        self,
        frames: Sequence[Frame],
        boxes: Sequence[np.ndarray],
        stream: Any = None,
        times: dict[str, float] | None = None,
    ) -> PoseBatch:
        """Crops of every box of every frame in one warp, then the network (batched); adds the
        milliseconds spent to ``times["crop"]`` and ``times["pose"]``."""
        times = {} if times is None else times
        t0 = time.perf_counter()
        counts = [len(b) for b in boxes]
        if sum(counts) == 0:
            return PoseBatch(None, np.zeros((0, 2, 3)), counts)
        on_gpu = frames[0].on_gpu
        crops, inverse = crop_batch(
            [f.image for f in frames], boxes, self.info.input_size, self.normalisation,
            padding=self.top_down.padding, image_order=frames[0].channel_order,
            stream=stream if on_gpu else None,
        )  # fmt: skip
        if self.top_down.flip_test:  # mirrored crops ride along: (2N, 3, H, W)
            crops = _with_mirrored(crops)
        t1 = time.perf_counter()
        heatmaps = self.infer(crops)
        times["crop"] = times.get("crop", 0.0) + (t1 - t0) * 1e3
        times["pose"] = times.get("pose", 0.0) + (time.perf_counter() - t1) * 1e3
        return PoseBatch(heatmaps, inverse, counts)

    def pose_decode(
        self, batch: PoseBatch, boxes: Sequence[np.ndarray], stream: Any = None
    ) -> list[list[Person]]:
        """Keypoints of :meth:`pose_forward`'s batch, split back into persons per frame.
        Only the (N, K, 3) keypoints cross to the host."""
        if batch.heatmaps is None:
            return [[] for _ in boxes]
        keypoints = self.decode(batch.heatmaps, batch.inverse, stream=stream)
        if not isinstance(keypoints, np.ndarray):
            from rtpose.cuda.arrays import to_host

            keypoints = to_host(keypoints, stream=stream)
        out, start = [], 0
        for frame_boxes, n in zip(boxes, batch.counts):
            out.append(_persons(frame_boxes, keypoints[start : start + n]))
            start += n
        return out

    def _check_heatmaps(self, heatmaps: Any, batch: int) -> None:
        k = self.skeleton.num_keypoints
        want = (batch, k, *self.info.heatmap_size)
        if tuple(heatmaps.shape) != want:
            raise ValueError(
                f"{self.info.name}: the network returned heatmaps of shape {heatmaps.shape}, "
                f"expected {want} ({k} keypoints of the {self.skeleton.name} skeleton at "
                f"{self.info.heatmap_size[0]}x{self.info.heatmap_size[1]})"
            )


@dataclass
class PoseBatch:
    """The pose network's output for the boxes of several frames."""

    heatmaps: Any  # (B, K, h, w) numpy or GPU array (B = 2N with the flip test); None if N = 0
    inverse: np.ndarray  # (N, 2, 3) crop-input -> frame maps
    counts: list[int]  # boxes per frame


def _persons(boxes: np.ndarray, keypoints: np.ndarray) -> list[Person]:
    return [
        Person(box=tuple(float(v) for v in b[:4]), score=float(b[4]), keypoints=k)
        for b, k in zip(boxes, keypoints)
    ]


def _boxes_of(persons: list[Person]) -> np.ndarray:
    if not persons:
        return np.zeros((0, 5), np.float64)
    return np.array([(*p.box, p.score) for p in persons], np.float64)


def _with_mirrored(crops: Any) -> Any:
    """(N, 3, H, W) -> (2N, 3, H, W): the crops, then the crops mirrored left-right."""
    if isinstance(crops, np.ndarray):
        return np.ascontiguousarray(np.concatenate([crops, crops[..., ::-1]]))
    from rtpose.cuda.streams import concat_mirrored

    return concat_mirrored(crops)


def _concatenate(parts: list[Any]) -> Any:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    from rtpose.cuda.streams import concatenate

    return concatenate(parts)
