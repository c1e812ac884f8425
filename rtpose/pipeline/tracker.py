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
the keypoint boxes. Everything is numpy; people counts are small (<= ~50), so the assignment is
an O(n^3) shortest-augmenting-path Hungarian algorithm vectorised over columns.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rtpose.pipeline.results import Person
from rtpose.skeletons import get_skeleton

__all__ = [
    "PoseTracker",
    "TrackState",
    "TrackerConfig",
    "boxes_from_keypoints",
    "linear_sum_assignment",
]

_MATCHES = ("iou", "oks", "iou+oks")
_PREDICTORS = ("kalman", "constant_velocity")


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


def boxes_from_keypoints(keypoints: np.ndarray, *, min_score: float = 0.3) -> np.ndarray:
    """Boxes around the confident keypoints of each person.

    Args:
        keypoints: (N, K, 3) x, y, score.
        min_score: keypoints scoring below this are left out.

    Returns:
        (N, 4) float64 x1, y1, x2, y2; a row is NaN when the person has no keypoint scoring
        ``min_score`` or more.
    """
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim != 3 or kpts.shape[2] < 3:
        raise ValueError(
            f"boxes_from_keypoints: keypoints must have shape (N, K, 3), got {kpts.shape}"
        )
    ok = (kpts[..., 2] >= min_score) & np.isfinite(kpts[..., :2]).all(axis=-1)  # (N, K)
    x, y = kpts[..., 0], kpts[..., 1]
    with np.errstate(invalid="ignore"):
        boxes = np.stack(
            [
                np.where(ok, x, np.inf).min(axis=1),
                np.where(ok, y, np.inf).min(axis=1),
                np.where(ok, x, -np.inf).max(axis=1),
                np.where(ok, y, -np.inf).max(axis=1),
            ],
            axis=1,
        )
    boxes[~ok.any(axis=1)] = np.nan
    return boxes


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of rows to columns (Hungarian algorithm, numpy).

    Shortest augmenting paths with row/column potentials (the O(n^2 m) form of Kuhn-Munkres used
    by Jonker-Volgenant), vectorised over columns. Same result as
    ``scipy.optimize.linear_sum_assignment`` (up to ties): every row of the smaller side is
    assigned.

    Args:
        cost: (n, m) finite costs.

    Returns:
        (rows, cols): int arrays of equal length min(n, m), rows ascending.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or not np.isfinite(cost).all():
        raise ValueError(f"cost must be a finite 2-D array, got shape {cost.shape}")
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    # 1-based: column 0 is a virtual column holding the row being inserted.
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.int64)  # owner[j]: row assigned to column j (0: none)
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # augment along the alternating path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.nonzero(owner[1:])[0]
    rows = owner[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def _xyxy_to_cxcywh(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dtype=np.float64)


def _cxcywh_to_xyxy(z: np.ndarray) -> np.ndarray:
    cx, cy, w, h = z[:4]
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float64)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 4) x (D, 4) xyxy -> (T, D) intersection over union."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _scale_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """(N, 4) xyxy boxes scaled by ``factor`` about their centres."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (factor / 2)
    return np.concatenate([centre - half, centre + half], axis=1)


def _oks_pairs(
    pred: np.ndarray, dets: np.ndarray, det_areas: np.ndarray, sigmas: np.ndarray, thr: float
) -> np.ndarray:
    """OKS of pairs: (P, K, 3) x (P, K, 3) -> (P,), over keypoints confident in both (COCO's
    formula with the detection box area as the scale); NaN where no keypoint is."""
    valid = (pred[..., 2] >= thr) & (dets[..., 2] >= thr)  # (P, K)
    d2 = ((pred[..., :2] - dets[..., :2]) ** 2).sum(axis=-1)  # (P, K)
    variances = (2.0 * sigmas) ** 2  # (K,), as in pycocotools
    e = d2 / (variances * np.maximum(det_areas, 1.0)[:, None] * 2.0)
    count = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        oks = np.where(valid, np.exp(-e), 0.0).sum(axis=-1) / count
    return np.where(count > 0, oks, np.nan)


class _ConstantVelocity:
    """Last box moved by an EMA of the per-frame displacement of its centre (size kept)."""

    momentum = 0.5

    def __init__(self, z: np.ndarray, frame: int) -> None:
        self.z = z.copy()  # cx, cy, w, h
        self.v = np.zeros(2)  # px per frame
        self.frame = frame

    def observe(self, z: np.ndarray, frame: int) -> None:
        step = (z[:2] - self.z[:2]) / (frame - self.frame)
        self.v = self.momentum * self.v + (1 - self.momentum) * step
        self.z, self.frame = z.copy(), frame

    def predict(self, frame: int) -> np.ndarray:
        z = self.z.copy()
        z[:2] += self.v * (frame - self.frame)
        return z

    @property
    def centre(self) -> np.ndarray:
        """Box centre at the last observation (the reference for predicted displacements)."""
        return self.z[:2]

    @property
    def velocity(self) -> np.ndarray:
        return self.v


class _Kalman:
    """SORT's constant-velocity Kalman filter on (cx, cy, w, h, vx, vy, vw, vh), px and px/frame.

    Noise standard deviations are proportional to the box size, as in DeepSORT: 1/20 of the
    size for positions and measurements, 1/160 of the size per frame for velocities.
    """

    std_position = 1.0 / 20.0
    std_velocity = 1.0 / 160.0
    _H = np.eye(4, 8)
    _I8 = np.eye(8)

    def __init__(self, z: np.ndarray, frame: int) -> None:
        s = self._scale(z)
        self.x = np.concatenate([z, np.zeros(4)])
        self.P = np.diag(
            np.concatenate([2 * self.std_position * s, 10 * self.std_velocity * s]) ** 2
        )
        self.frame = frame

    @staticmethod
    def _scale(z: np.ndarray) -> np.ndarray:
        w, h = max(float(z[2]), 1.0), max(float(z[3]), 1.0)
        return np.array([w, h, w, h])

    def _transition(self, dt: int) -> np.ndarray:
        F = self._I8.copy()
        F[(0, 1, 2, 3), (4, 5, 6, 7)] = dt
        return F

    def observe(self, z: np.ndarray, frame: int) -> None:
        dt = frame - self.frame
        s = self._scale(self.x)
        F = self._transition(dt)
        Q = np.diag(np.concatenate([self.std_position * s, self.std_velocity * s]) ** 2) * dt
        x = F @ self.x
        P = F @ self.P @ F.T + Q
        R = np.diag((self.std_position * s) ** 2)
        S = self._H @ P @ self._H.T + R
        K = np.linalg.solve(S, self._H @ P).T  # P H^T S^-1 (S and P symmetric)
        self.x = x + K @ (z - self._H @ x)
        self.P = (self._I8 - K @ self._H) @ P
        self.frame = frame

    def predict(self, frame: int) -> np.ndarray:
        return self.x[:4] + (frame - self.frame) * self.x[4:]

    @property
    def centre(self) -> np.ndarray:
        """Filtered box centre at the last observation."""
        return self.x[:2]

    @property
    def velocity(self) -> np.ndarray:
        return self.x[4:6]


@dataclass
class _Track:
    track_id: int
    motion: _ConstantVelocity | _Kalman
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
            [_cxcywh_to_xyxy(t.motion.predict(frame)) for t in self._tracks], dtype=np.float64
        ).reshape(-1, 4)
        iou = _iou(pred_boxes, det_boxes)
        if cfg.match == "iou":
            return iou
        pred_kpts = np.stack([t.keypoints for t in self._tracks]).copy()  # (T, K, 3)
        pred_kpts[:, :, :2] += np.stack([t.shift(frame) for t in self._tracks])[:, None, :]
        areas = np.clip(det_boxes[:, 2:] - det_boxes[:, :2], 0, None).prod(axis=1)
        # OKS only where the boxes, doubled in size about their centres, overlap: farther apart,
        # keypoints are >= half a box size apart and OKS < exp(-0.25 / (8 * 0.107^2)) = 0.07
        # even for the most tolerant COCO sigma, far below any useful min_similarity.
        near = _iou(_scale_boxes(pred_boxes, 2.0), _scale_boxes(det_boxes, 2.0)) > 0
        oks = np.full(iou.shape, np.nan)
        rows, cols = np.nonzero(near)
        if rows.size:
            oks[rows, cols] = _oks_pairs(
                pred_kpts[rows], kpts[cols], areas[cols], self._sigmas, cfg.keypoint_threshold
            )
        oks[~near] = 0.0
        if cfg.match == "oks":
            return np.nan_to_num(oks, nan=0.0)
        return np.where(np.isnan(oks), iou, 0.5 * (iou + oks))

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
                track.motion.observe(_xyxy_to_cxcywh(np.asarray(person.box, float)), frame)
                track.keypoints, track.box = kpts[c].copy(), np.asarray(person.box, float)
                track.score, track.last_frame = float(person.score), frame
                track.hits += 1
                ids[c] = track.track_id
        for c, person in enumerate(persons):
            if ids[c] is not None or float(person.score) < cfg.min_score:
                continue
            box = np.asarray(person.box, dtype=np.float64)
            motion_cls = _Kalman if cfg.predictor == "kalman" else _ConstantVelocity
            track = _Track(
                track_id=self._next_id,
                motion=motion_cls(_xyxy_to_cxcywh(box), frame),
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
            z = _xyxy_to_cxcywh(box)
            z[:2] += t.shift(frame)
            z[2:] *= padding
            rows.append([*_cxcywh_to_xyxy(z), t.score])
        return np.asarray(rows, dtype=np.float32).reshape(-1, 5)
