"""Pipelines: single-image estimation, streaming video pose estimation, tracking, smoothing."""

from rtpose.pipeline.results import Person, PoseFrame
from rtpose.pipeline.runner import StreamStats
from rtpose.pipeline.smoothing import KeypointSmoother, OneEuroFilter, SmoothingConfig
from rtpose.pipeline.tracker import PoseTracker, TrackerConfig

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
