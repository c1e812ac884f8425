"""rtpose: real-time video human-pose estimation.

Public API (imported lazily, so ``import rtpose`` loads no inference runtime)::

    rtpose.VideoPoseStream, rtpose.PoseEstimator, rtpose.PoseFrame, rtpose.Person,
    rtpose.list_models, rtpose.fetch, rtpose.build_engine, rtpose.open_source,
    rtpose.TrackerConfig, rtpose.SmoothingConfig, rtpose.StreamStats
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtpose._version import __version__
from rtpose.errors import (
    AssetError,
    BackendUnavailableError,
    CheckpointError,
    DecodeError,
    EngineBuildError,
    InferenceError,
    KernelError,
    RtposeError,
    UnknownModelError,
)

_LAZY = {
    "VideoPoseStream": "rtpose.pipeline.stream",
    "PoseEstimator": "rtpose.pipeline.stream",
    "PoseFrame": "rtpose.estimators.results",
    "Person": "rtpose.estimators.results",
    "list_models": "rtpose.models.zoo",
    "fetch": "rtpose.assets",
    "build_engine": "rtpose.deploy.build",
    "open_source": "rtpose.video",
    "TrackerConfig": "rtpose.track.tracker",
    "SmoothingConfig": "rtpose.track.smoothing",
    "StreamStats": "rtpose.pipeline.runner",
}

__all__ = [
    "AssetError",
    "BackendUnavailableError",
    "CheckpointError",
    "DecodeError",
    "EngineBuildError",
    "InferenceError",
    "KernelError",
    "Person",
    "PoseEstimator",
    "PoseFrame",
    "RtposeError",
    "SmoothingConfig",
    "StreamStats",
    "TrackerConfig",
    "UnknownModelError",
    "VideoPoseStream",
    "__version__",
    "build_engine",
    "fetch",
    "list_models",
    "open_source",
]

if TYPE_CHECKING:
    from rtpose.assets import fetch
    from rtpose.deploy.build import build_engine
    from rtpose.estimators.results import Person, PoseFrame
    from rtpose.models.zoo import list_models
    from rtpose.pipeline.runner import StreamStats
    from rtpose.pipeline.stream import PoseEstimator, VideoPoseStream
    from rtpose.track.smoothing import SmoothingConfig
    from rtpose.track.tracker import TrackerConfig
    from rtpose.video import open_source


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rtpose' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
