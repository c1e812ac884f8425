"""rtpose: real-time video human-pose estimation.

Public API (imported lazily, so ``import rtpose`` loads no inference runtime)::

    rtpose.VideoPoseStream, rtpose.PoseEstimator, rtpose.PoseFrame, rtpose.Person,
    rtpose.list_models, rtpose.fetch
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtpose.errors import (
    AssetError,
    BackendUnavailableError,
    CheckpointError,
    DecodeError,
    RtposeError,
    UnknownModelError,
)

__version__ = "0.1.0"

_LAZY = {
    "VideoPoseStream": "rtpose.pipeline.stream",
    "PoseEstimator": "rtpose.pipeline.stream",
    "PoseFrame": "rtpose.pipeline.results",
    "Person": "rtpose.pipeline.results",
    "list_models": "rtpose.models.zoo",
    "fetch": "rtpose.assets",
}

__all__ = [
    "AssetError",
    "BackendUnavailableError",
    "CheckpointError",
    "DecodeError",
    "Person",
    "PoseEstimator",
    "PoseFrame",
    "RtposeError",
    "UnknownModelError",
    "VideoPoseStream",
    "__version__",
    "fetch",
    "list_models",
]

if TYPE_CHECKING:
    from rtpose.assets import fetch
    from rtpose.models.zoo import list_models
    from rtpose.pipeline.results import Person, PoseFrame
    from rtpose.pipeline.stream import PoseEstimator, VideoPoseStream


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rtpose' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
