"""The pose work of a video stream, cut into stages that can run in separate threads.

A :class:`Step` carries one frame of every active source through the stages together, so the
detector and the pose network see all sources in one batch. :class:`OneStageSteps` has two
stages (``detect``: letterbox + YOLO-pose network; ``post``: box/keypoint decoding, tracking),
:class:`TopDownSteps` three (``detect``: person boxes; ``pose``: crops + pose network; ``post``:
heatmap decoding, tracking). The stream runs them in order, either in the caller's thread
(synchronous mode) or one thread per stage (pipelined): the same calls on the same batches, so
both modes give identical results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtpose.estimators.results import Person, PoseFrame
from rtpose.video.frames import Frame


@dataclass
class Step:
    """One frame of each active source, and what the stages found in them."""

    seq: int
    frames: list[Frame]
    sources: list[int]  # source number of each frame
    counts: list[int]  # per source, how many frames it had yielded before this one
    timings: list[dict[str, float]]  # per frame; starts with "decode"
    detect: list[bool] = field(default_factory=list)  # per frame: run the detector on it
    boxes: list[np.ndarray | None] = field(default_factory=list)  # top-down only
    raw: Any = None  # the network output in flight between stages
    persons: list[list[Person]] = field(default_factory=list)
    images: list[np.ndarray | None] = field(default_factory=list)

    def add_time(self, stage: str, start: float) -> float:
        """Charge the time since ``start`` to ``stage`` of every frame; returns now."""
        now = time.perf_counter()
        ms = (now - start) * 1e3
        for t in self.timings:
            t[stage] = t.get(stage, 0.0) + ms
        return now

    def results(self) -> list[PoseFrame]:
        now = time.perf_counter()
        out = []
        for frame, src, persons, timings, image in zip(
            self.frames, self.sources, self.persons, self.timings, self.images
        ):
            timings["latency"] = (now - frame.arrival) * 1e3
            out.append(PoseFrame(frame.index, frame.pts, persons, timings, image, source=src))
        return out


class Followers:
    """Per-source trackers and smoothers, plus the bookkeeping that lets the pose stage wait
    until a source's previous frame has been tracked (boxes from keypoints)."""

    def __init__(
        self,
        make_tracker: Callable[[], Any] | None,
        make_smoother: Callable[[], Any] | None,
    ) -> None:
        self._make_tracker = make_tracker
        self._make_smoother = make_smoother
        self.trackers: dict[int, Any] = {}
        self.smoothers: dict[int, Any] = {}
        self._done: dict[int, int] = {}  # source -> frames tracked so far
        self._cond = threading.Condition()

    @property
    def tracking(self) -> bool:
        return self._make_tracker is not None

    def follow(self, source: int, frame: Frame, persons: list[Person]) -> list[Person]:
        """Track IDs and smoothing for one frame of ``source`` (frames of a source in order)."""
        if self._make_tracker is not None:
            tracker = self.trackers.get(source)
            if tracker is None:
                tracker = self.trackers[source] = self._make_tracker()
            persons = tracker.update(persons, frame_index=frame.index)
        if self._make_smoother is not None:
            smoother = self.smoothers.get(source)
            if smoother is None:
                smoother = self.smoothers[source] = self._make_smoother()
            persons = smoother(persons, t=frame.pts)
        with self._cond:
            self._done[source] = self._done.get(source, 0) + 1
            self._cond.notify_all()
        return persons

    def wait_tracked(self, source: int, count: int, stop: threading.Event) -> bool:
        """Wait until ``count`` frames of ``source`` were tracked; False if stopped first."""
        with self._cond:
            while self._done.get(source, 0) < count:
                if stop.is_set():
                    return False
                self._cond.wait(0.05)
        return True

    def predicted_boxes(self, source: int, frame: Frame) -> np.ndarray:
        tracker = self.trackers.get(source)
        if tracker is None:
            return np.zeros((0, 5))
        return np.asarray(tracker.predicted_boxes(frame_index=frame.index), np.float64)


class OneStageSteps:
    """``detect`` (letterbox + network, batched per frame size) and ``post`` (decode + track)."""

    names = ("detect", "post")

    def __init__(self, pose: Any, followers: Followers, *, return_images: bool) -> None:
        self.pose = pose
        self.followers = followers
        self.return_images = return_images

    def stream_of(self, stage: str) -> Any:
        """The CUDA stream a stage queues its GPU work on (its network's stream)."""
        return getattr(self.pose.backend, "stream_handle", None) if stage == "detect" else None

    def detect(self, step: Step, stream: Any) -> None:
        times: dict[str, float] = {}
        step.raw = self.pose.forward(step.frames, stream, times)
        for t in step.timings:
            t.update(times)

    def post(self, step: Step, stream: Any) -> None:
        t0 = time.perf_counter()
        persons = [self.pose.persons(raw) for raw in step.raw]
        step.raw = None
        _finish(step, persons, self.followers, step.add_time("postprocess", t0), self.return_images)

    def run(self, stage: str, step: Step, stream: Any) -> None:
        {"detect": self.detect, "post": self.post}[stage](step, stream)


class TopDownSteps:
    """``detect`` (boxes), ``pose`` (crops + network), ``post`` (heatmap decode + track).

    With ``detect_every = N > 1`` the detector runs on every N-th frame of a source; on the
    others the pose stage waits until the source's previous frame is tracked and crops the
    boxes the tracker predicts from its keypoints (falling back to the detector when no track
    is alive).
    """

    names = ("detect", "pose", "post")

    def __init__(
        self,
        pose: Any,
        followers: Followers,
        *,
        detect_every: int,
        return_images: bool,
        stop: threading.Event,
    ) -> None:
        self.pose = pose
        self.followers = followers
        self.detect_every = detect_every
        self.return_images = return_images
        self.stop = stop

    def stream_of(self, stage: str) -> Any:
        if stage == "detect":
            return getattr(getattr(self.pose.detector, "backend", None), "stream_handle", None)
        if stage == "pose":
            return getattr(self.pose.backend, "stream_handle", None)
        return None

    def detect(self, step: Step, stream: Any) -> None:
        t0 = time.perf_counter()
        step.detect = [c % self.detect_every == 0 for c in step.counts]
        chosen = [f for f, d in zip(step.frames, step.detect) if d]
        found = iter(self.pose.detect_frames(chosen, stream) if chosen else [])
        step.boxes = [next(found) if d else None for d in step.detect]
        step.add_time("detect", t0)

    def pose_stage(self, step: Step, stream: Any) -> None:
        t0 = time.perf_counter()
        boxes = list(step.boxes)
        for i, (src, frame, count) in enumerate(zip(step.sources, step.frames, step.counts)):
            if boxes[i] is not None:
                continue
            # boxes from the keypoints of this source's previous frame
            if not self.followers.wait_tracked(src, count, self.stop):
                raise _Stopped
            predicted = self.followers.predicted_boxes(src, frame)
            boxes[i] = predicted if len(predicted) else self.pose.detect_frames([frame])[0]
        step.boxes = boxes
        step.add_time("detect", t0)
        times = {"crop": 0.0, "pose": 0.0}
        step.raw = self.pose.pose_forward(step.frames, boxes, stream, times)
        for t in step.timings:
            t.update(times)

    def post(self, step: Step, stream: Any) -> None:
        t0 = time.perf_counter()
        persons = self.pose.pose_decode(step.raw, step.boxes, stream)
        step.raw = None
        # Between detections the crop box came from the tracker's own prediction: report (and
        # track) the box of the new keypoints instead, so the motion model sees measurements.
        persons = [
            p if detected else _keypoint_boxes(p)
            for p, detected in zip(persons, step.detect, strict=True)
        ]
        _finish(step, persons, self.followers, step.add_time("postprocess", t0), self.return_images)

    def run(self, stage: str, step: Step, stream: Any) -> None:
        {"detect": self.detect, "pose": self.pose_stage, "post": self.post}[stage](step, stream)


class _Stopped(Exception):
    """The stream was closed while a stage waited."""


def _finish(
    step: Step, persons: list[list[Person]], followers: Followers, t0: float, images: bool
) -> None:
    """Tracking and smoothing per source, then the host images if the caller wants them."""
    step.persons = [
        followers.follow(src, f, p)
        for src, f, p in zip(step.sources, step.frames, persons, strict=True)
    ]
    if followers.tracking:
        step.add_time("track", t0)
    step.images = _images(step, images)


def _images(step: Step, wanted: bool) -> list[np.ndarray | None]:
    if not wanted:
        return [None] * len(step.frames)
    return [f.to_host_bgr() for f in step.frames]


KEYPOINT_BOX_MARGIN = 0.1  # per side, so keypoint boxes are about the size of detector boxes


def _keypoint_boxes(persons: list[Person]) -> list[Person]:
    """Persons with ``box`` = the box of their confident keypoints, grown by 10% per side."""
    from dataclasses import replace

    from rtpose.geometry import boxes_from_keypoints

    if not persons:
        return persons
    boxes = boxes_from_keypoints(np.stack([p.keypoints for p in persons]))
    out = []
    for p, b in zip(persons, boxes):
        if not np.isfinite(b).all():
            out.append(p)
            continue
        mx, my = (b[2] - b[0]) * KEYPOINT_BOX_MARGIN, (b[3] - b[1]) * KEYPOINT_BOX_MARGIN
        box = (float(b[0] - mx), float(b[1] - my), float(b[2] + mx), float(b[3] + my))
        out.append(replace(p, box=box))
    return out
