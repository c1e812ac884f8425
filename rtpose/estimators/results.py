"""Result types of :class:`rtpose.VideoPoseStream` and :class:`rtpose.PoseEstimator`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Person:
    """One detected person, in frame pixels."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    keypoints: np.ndarray  # (K, 3) float32: x, y, score
    track_id: int | None = None

    def to_dict(self, *, decimals: int = 2) -> dict[str, Any]:
        """JSON-ready dict (the per-person object of the JSONL format)."""
        return {
            "box": [round(float(v), decimals) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": [
                [round(float(x), decimals), round(float(y), decimals), round(float(s), 4)]
                for x, y, s in self.keypoints[:, :3]
            ],
            "track_id": self.track_id,
        }


@dataclass(frozen=True)
class PoseFrame:
    """Everything rtpose found in one video frame."""

    index: int  # frame number, from 0
    pts: float  # presentation time, seconds
    persons: list[Person]
    timings: dict[str, float] = field(default_factory=dict)  # stage -> milliseconds
    # the decoded frame (H, W, 3) uint8 BGR, only when the stream was opened with return_images=True
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    # which source of a multi-source stream the frame comes from (0 for a single source)
    source: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: one line of ``rtpose run --jsonl``."""
        return {
            "frame": self.index,
            **({"source": self.source} if self.source else {}),
            "pts": round(self.pts, 6),
            "persons": [p.to_dict() for p in self.persons],
            "timings_ms": {k: round(v, 3) for k, v in self.timings.items()},
        }
