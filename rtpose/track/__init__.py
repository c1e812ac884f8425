"""Across frames: persistent person IDs and steadier keypoints.

The stage after pose estimation. It takes each frame's persons (:class:`rtpose.Person`, from the
estimators) and gives them back with ``track_id`` set and, optionally, smoothed keypoints:

- :mod:`~rtpose.track.tracker`: :class:`PoseTracker`, SORT-style tracking by IoU and/or OKS with
  its :class:`TrackerConfig`; it also predicts the boxes to crop between two detections when the
  detector runs only every N frames.
- :mod:`~rtpose.track.assignment`: the Hungarian assignment of detections to tracks.
- :mod:`~rtpose.track.motion`: the motion models of a track's box (Kalman, constant velocity).
- :mod:`~rtpose.track.smoothing`: :class:`KeypointSmoother`, a One-Euro filter
  (:class:`OneEuroFilter`) per track, with its :class:`SmoothingConfig`.

Everything here is numpy on the host; the box and keypoint geometry it uses (IoU, OKS, keypoint
boxes) is in :mod:`rtpose.geometry`.
"""

from rtpose.track.smoothing import KeypointSmoother, OneEuroFilter, SmoothingConfig
from rtpose.track.tracker import PoseTracker, TrackerConfig, TrackState

__all__ = [
    "KeypointSmoother",
    "OneEuroFilter",
    "PoseTracker",
    "SmoothingConfig",
    "TrackState",
    "TrackerConfig",
]
