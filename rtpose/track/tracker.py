"""Multi-person tracking: persistent track IDs for the persons of consecutive frames.

The tracker follows SORT (Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016): every
track carries a motion model that predicts where its box will be in the next frame; detections
are associated to the predictions by an optimal assignment (Hungarian / Kuhn-Munkres) on a
similarity matrix; unmatched detections start new tracks; tracks unmatched for more than
``max_age`` frames are dropped.

- **Motion model** (``TrackerConfig.predictor``) on the box (centre x, y, width, height):
  ``"kalman"`` is the 8-state constant-velocity Kalman filter of SORT, with the size-relative
  noise model of DeepSORT (Wojke et al., "Simple Online and Realtime Tracking with a Deep
  Association Metric", ICIP 2017); ``"constant_velocity"`` moves the last box by an
  exponential moving average (weight 0.5) of the observed per-frame displacements.
- **Similarity** (``TrackerConfig.match``): IoU of the detection box with the predicted box; OKS
  (COCO object keypoint similarity, with the skeleton's sigmas and the detection's box area as
  the scale) of the detection's keypoints with the track's last keypoints moved by the predicted
  displacement; or ``"iou+oks"``, their mean (IoU alone when the two share no confident keypoint).
  OKS tells apart people whose boxes overlap, e.g. two people crossing.
- **Detect every N frames**: :meth:`PoseTracker.predicted_boxes` gives, for the frames between
  two detections, boxes around each track's last confident keypoints moved by the motion model;
  the pose network runs on those instead of on detector boxes.

Keypoints with a score below ``TrackerConfig.keypoint_threshold`` take part in neither OKS nor
the keypoint boxes. Everything is numpy: the motion models are in :mod:`rtpose.track.motion`, the
assignment in :mod:`rtpose.track.assignment`, IoU, OKS and keypoint boxes in
:mod:`rtpose.geometry`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rtpose.estimators.results import Person
from rtpose.geometry import (
    box_area,
    box_iou,
    boxes_from_keypoints,
    cxcywh_to_xyxy,
    oks,
    scale_boxes,
    xyxy_to_cxcywh,
)
from rtpose.skeletons import get_skeleton
from rtpose.track.assignment import linear_sum_assignment
from rtpose.track.motion import MOTION_MODELS, MotionModel

__all__ = ["PoseTracker", "TrackState", "TrackerConfig"]

_MATCHES = ("iou", "oks", "iou+oks")
_PREDICTORS = tuple(MOTION_MODELS)


@dataclass(frozen=True)
class TrackerConfig:
    """How :class:`PoseTracker` associates persons across frames.

    Args:
        match: similarity used for association: ``"iou"`` (boxes), ``"oks"`` (keypoints) or
            ``"iou+oks"`` (their mean).
        min_similarity: a detection continues a track only if their similarity is at least this.
        predictor: motion model of a track: ``"kalman"`` (SORT) or ``"constant_velocity"``.
        max_age: frames a track survives unmatched (its position predicted) before it is dropped.
        min_score: persons whose detection score is below this do not start new tracks (they can
            still continue an existing one, as in ByteTrack); they get ``track_id=None``. The
            default 0 starts a track for every person, since the stream already filters
            detections with its ``conf`` threshold.
        keypoint_threshold: keypoints scoring below this are ignored by OKS and keypoint boxes.
    """

    match: Literal["iou", "oks", "iou+oks"] = "iou+oks"
    min_similarity: float = 0.3
    predictor: Literal["kalman", "constant_velocity"] = "kalman"
    max_age: int = 30
    min_score: float = 0.0
    keypoint_threshold: float = 0.3

    def __post_init__(self) -> None:
        if self.match not in _MATCHES:
            raise ValueError(f"TrackerConfig.match must be one of {_MATCHES}, got {self.match!r}")
        if self.predictor not in _PREDICTORS:
            raise ValueError(
                f"TrackerConfig.predictor must be one of {_PREDICTORS}, got {self.predictor!r}"
            )
        if isinstance(self.max_age, bool) or not isinstance(self.max_age, int) or self.max_age < 0:
            raise ValueError(f"TrackerConfig.max_age must be an int >= 0, got {self.max_age!r}")
        for name in ("min_similarity", "min_score", "keypoint_threshold"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"TrackerConfig.{name} must be a number in [0, 1], got {value!r}")
        if self.min_similarity <= 0:
            raise ValueError(
                "TrackerConfig.min_similarity must be > 0 (0 would let any detection continue "
                f"any track), got {self.min_similarity!r}"
            )


@dataclass(frozen=True)
class TrackState:
    """A live track, for introspection (:attr:`PoseTracker.tracks`).

    ``age`` counts the updates since the track was last matched (0: matched in the latest
    update); the track is dropped once ``age`` exceeds ``TrackerConfig.max_age``.
    """

    track_id: int
    age: int
    hits: int  # frames in which the track was matched
    first_frame: int
    last_frame: int  # frame index of the last match
    box: tuple[float, float, float, float]  # last matched Person.box, x1, y1, x2, y2
    velocity: tuple[float, float]  # box centre, px per frame, from the motion model


@dataclass
class _Track:
    track_id: int
    motion: MotionModel
    keypoints: np.ndarray  # (K, 3) last matched keypoints
    box: np.ndarray  # (4,) last matched Person.box
    score: float
    first_frame: int
    last_frame: int
    hits: int = 1

    def shift(self, frame: int) -> np.ndarray:
        """Predicted displacement (dx, dy) of the box centre from the last match to ``frame``."""
        return self.motion.predict(frame)[:2] - self.motion.centre


class PoseTracker:
    """Gives the persons of consecutive frames persistent track IDs (see the module docstring).

    Call :meth:`update` once per frame, with increasing frame indices; use one tracker per video
    source and :meth:`reset` when a new video starts.
    """

    def __init__(self, config: TrackerConfig | None = None, *, skeleton: str = "coco17") -> None:
        if config is not None and not isinstance(config, TrackerConfig):
            raise TypeError(f"config must be a TrackerConfig or None, got {type(config).__name__}")
        self.config = config if config is not None else TrackerConfig()
        self.skeleton = get_skeleton(skeleton)
        if "oks" in self.config.match and not self.skeleton.sigmas:
            raise ValueError(
                f"TrackerConfig.match={self.config.match!r} needs OKS sigmas, but keypoint set "
                f"{self.skeleton.name!r} has none; use TrackerConfig(match='iou')"
            )
        self._sigmas = np.asarray(self.skeleton.sigmas, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Drop all tracks; IDs count from 1 again."""
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._frame: int | None = None  # frame index of the latest update

    @property
    def tracks(self) -> list[TrackState]:
        """The live tracks, by ID."""
        frame = self._frame if self._frame is not None else 0
        return [
            TrackState(
                track_id=t.track_id,
                age=frame - t.last_frame,
                hits=t.hits,
                first_frame=t.first_frame,
                last_frame=t.last_frame,
                box=tuple(float(v) for v in t.box),
                velocity=(float(t.motion.velocity[0]), float(t.motion.velocity[1])),
            )
            for t in sorted(self._tracks, key=lambda t: t.track_id)
        ]

    def _check_frame_index(self, frame_index: int, *, allow_equal: bool) -> int:
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)):
            raise TypeError(f"frame_index must be an int, got {type(frame_index).__name__}")
        frame_index = int(frame_index)
        last = self._frame
        if last is not None and (frame_index < last or (frame_index == last and not allow_equal)):
            raise ValueError(
                f"frame_index must increase from one update to the next, got {frame_index} "
                f"after {last}; call reset() before tracking a new video"
            )
        return frame_index

    def _check_persons(self, persons: Sequence[Person]) -> np.ndarray:
        k = self.skeleton.num_keypoints
        kpts = np.zeros((len(persons), k, 3), dtype=np.float64)
        for n, p in enumerate(persons):
            if not isinstance(p, Person):
                raise TypeError(f"persons[{n}] must be a Person, got {type(p).__name__}")
            a = np.asarray(p.keypoints)
            if a.shape != (k, 3):
                raise ValueError(
                    f"persons[{n}].keypoints has shape {a.shape}, but keypoint set "
                    f"{self.skeleton.name!r} needs ({k}, 3); create the PoseTracker with the "
                    "skeleton of the model (PoseTracker(skeleton=...))"
                )
            kpts[n] = a
        return kpts

    def _similarity(self, frame: int, persons: Sequence[Person], kpts: np.ndarray) -> np.ndarray:
        """(T, D) similarity of the live tracks, predicted to ``frame``, with the detections."""
        cfg = self.config
        det_boxes = np.array([p.box for p in persons], dtype=np.float64).reshape(-1, 4)
        pred_boxes = np.array(
            [cxcywh_to_xyxy(t.motion.predict(frame)) for t in self._tracks], dtype=np.float64
        ).reshape(-1, 4)
        iou = box_iou(pred_boxes, det_boxes)
        if cfg.match == "iou":
            return iou
        pred_kpts = np.stack([t.keypoints for t in self._tracks]).copy()  # (T, K, 3)
        pred_kpts[:, :, :2] += np.stack([t.shift(frame) for t in self._tracks])[:, None, :]
        areas = box_area(det_boxes)
        # OKS only where the boxes, doubled in size about their centres, overlap: farther apart,
        # keypoints are >= half a box size apart and OKS < exp(-0.25 / (8 * 0.107^2)) = 0.07
        # even for the most tolerant COCO sigma, far below any useful min_similarity.
        near = box_iou(scale_boxes(pred_boxes, 2.0), scale_boxes(det_boxes, 2.0)) > 0
        sim = np.full(iou.shape, np.nan)  # OKS
        rows, cols = np.nonzero(near)
        if rows.size:
            sim[rows, cols] = oks(
                pred_kpts[rows],
                kpts[cols],
                areas[cols],
                self._sigmas,
                min_score=cfg.keypoint_threshold,
            )
        sim[~near] = 0.0
        if cfg.match == "oks":
            return np.nan_to_num(sim, nan=0.0)
        return np.where(np.isnan(sim), iou, 0.5 * (iou + sim))

    def update(self, persons: Sequence[Person], *, frame_index: int) -> list[Person]:
        """Associate one frame's persons with the tracks.

        Returns the same persons in the same order, with ``track_id`` set (new IDs count up
        from 1); persons scoring below ``min_score`` that continue no track get ``None``.
        """
        frame = self._check_frame_index(frame_index, allow_equal=False)
        kpts = self._check_persons(persons)
        cfg = self.config
        ids: list[int | None] = [None] * len(persons)
        # Tracks unmatched for more than max_age frames by now (frames may have been skipped
        # without an update) are dropped before they can be matched.
        self._tracks = [t for t in self._tracks if frame - t.last_frame <= cfg.max_age]
        if self._tracks and persons:
            sim = self._similarity(frame, persons, kpts)
            # Pairs below the threshold cost 0, i.e. the same as leaving both unmatched (SORT).
            rows, cols = linear_sum_assignment(-np.where(sim >= cfg.min_similarity, sim, 0.0))
            for r, c in zip(rows.tolist(), cols.tolist()):
                if sim[r, c] < cfg.min_similarity:
                    continue
                track, person = self._tracks[r], persons[c]
                track.motion.observe(xyxy_to_cxcywh(np.asarray(person.box, float)), frame)
                track.keypoints, track.box = kpts[c].copy(), np.asarray(person.box, float)
                track.score, track.last_frame = float(person.score), frame
                track.hits += 1
                ids[c] = track.track_id
        for c, person in enumerate(persons):
            if ids[c] is not None or float(person.score) < cfg.min_score:
                continue
            box = np.asarray(person.box, dtype=np.float64)
            motion_cls = MOTION_MODELS[cfg.predictor]
            track = _Track(
                track_id=self._next_id,
                motion=motion_cls(xyxy_to_cxcywh(box), frame),
                keypoints=kpts[c].copy(),
                box=box,
                score=float(person.score),
                first_frame=frame,
                last_frame=frame,
            )
            self._tracks.append(track)
            ids[c] = self._next_id
            self._next_id += 1
        self._tracks = [t for t in self._tracks if frame - t.last_frame <= cfg.max_age]
        self._frame = frame
        return [dataclasses.replace(p, track_id=i) for p, i in zip(persons, ids)]

    def predicted_boxes(
        self, *, frame_index: int, padding: float = 1.0, include_lost: bool = False
    ) -> np.ndarray:
        """Where the tracked people are expected in frame ``frame_index`` (detect every N frames).

        Each box surrounds the track's last keypoints scoring at least ``keypoint_threshold``
        (its last ``Person.box`` when fewer than two do), moved by the motion model's predicted
        displacement and scaled by ``padding`` about its centre.

        Args:
            frame_index: the frame the boxes are for; not before the latest update.
            padding: factor on box width and height (e.g. 1.2 to leave room around the body).
            include_lost: also give boxes for tracks unmatched in the latest update (by default
                only tracks seen in it, so that a box never drifts onto background or onto
                another person; lost people are found again by the next detection).

        Returns:
            (N, 5) float32 x1, y1, x2, y2, score (the track's last detection score), by track ID.
        """
        frame = self._check_frame_index(frame_index, allow_equal=True)
        if not (isinstance(padding, (int, float)) and math.isfinite(padding) and padding > 0):
            raise ValueError(f"padding must be a finite number > 0, got {padding!r}")
        rows = []
        for t in sorted(self._tracks, key=lambda t: t.track_id):
            if not include_lost and t.last_frame != self._frame:
                continue
            confident = t.keypoints[:, 2] >= self.config.keypoint_threshold
            if confident.sum() >= 2:
                box = boxes_from_keypoints(
                    t.keypoints[None], min_score=self.config.keypoint_threshold
                )[0]
            else:
                box = t.box.copy()
            z = xyxy_to_cxcywh(box)
            z[:2] += t.shift(frame)
            z[2:] *= padding
            rows.append([*cxcywh_to_xyxy(z), t.score])
        return np.asarray(rows, dtype=np.float32).reshape(-1, 5)
