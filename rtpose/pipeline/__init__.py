"""Pipelines: single-image estimation, streaming video pose estimation, tracking, smoothing."""

from rtpose.estimators.results import Person, PoseFrame
from rtpose.pipeline.runner import StreamStats
from rtpose.track.smoothing import KeypointSmoother, OneEuroFilter, SmoothingConfig
from rtpose.track.tracker import PoseTracker, TrackerConfig

__all__ = [
    "KeypointSmoother",
    "OneEuroFilter",
    "Person",
    "PoseFrame",
    "PoseTracker",
    "SmoothingConfig",
    "StreamStats",
    "TrackerConfig",
]
