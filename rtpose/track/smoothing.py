"""Keypoint smoothing with the One-Euro filter.

The One-Euro filter (Casiez, Roussel and Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter
for Noisy Input in Interactive Systems", CHI 2012) is a first-order low-pass filter whose cutoff
frequency rises with the speed of the signal:

    fc = min_cutoff + beta * |dx/dt|        alpha(fc, dt) = 1 / (1 + 1 / (2 pi fc dt))
    x_hat[i] = alpha * x[i] + (1 - alpha) * x_hat[i - 1]

where the speed ``dx/dt`` is itself low-passed at the fixed cutoff ``d_cutoff``. A still keypoint
gets a low cutoff (jitter removed), a moving one a high cutoff (little lag). Each coordinate is
filtered independently, which is what the paper does for multi-dimensional signals.

:class:`KeypointSmoother` keeps one filter per track (``Person.track_id`` from
:class:`rtpose.track.tracker.PoseTracker`) on the keypoints' x, y; scores are left untouched.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rtpose.estimators.results import Person

__all__ = ["KeypointSmoother", "OneEuroFilter", "SmoothingConfig"]


@dataclass(frozen=True)
class SmoothingConfig:
    """One-Euro filter parameters; the defaults suit keypoints in pixels at about 30 fps.

    Args:
        min_cutoff: cutoff frequency (Hz) for a still signal; lower removes more jitter from
            still keypoints but adds lag when they start moving.
        beta: how fast the cutoff rises with speed (Hz per px/s); higher means less lag on fast
            motion but more jitter left in it. With the defaults a keypoint moving at 300 px/s is
            filtered at 2 + 0.015 * 300 = 6.5 Hz, which at 30 fps lags a constant-speed
            keypoint by (1 - alpha) / alpha = 0.74 frames; on walking-like trajectories with
            2-3 px noise this removes 55-65 % of the frame-to-frame acceleration
            (tests/track/test_smoothing.py).
        d_cutoff: cutoff frequency (Hz) of the low-pass applied to the speed estimate.
    """

    min_cutoff: float = 2.0
    beta: float = 0.015
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name, low, allow_zero in (
            ("min_cutoff", 0.0, False),
            ("beta", 0.0, True),
            ("d_cutoff", 0.0, False),
        ):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and math.isfinite(value)
            ok = ok and (value >= low if allow_zero else value > low)
            if not ok:
                expected = ">= 0" if allow_zero else "> 0"
                raise ValueError(
                    f"SmoothingConfig.{name} must be a finite number {expected}, got {value!r}"
                )


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass with ``cutoff`` Hz sampled every ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over an array of any shape (every element is an independent signal).

    The first call returns its input unchanged (as float64) and sets the state; later calls need
    strictly increasing timestamps ``t`` (seconds) and arrays of the same shape.
    """

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        self.config = config if config is not None else SmoothingConfig()
        if not isinstance(self.config, SmoothingConfig):
            raise TypeError(
                f"config must be a SmoothingConfig or None, got {type(self.config).__name__}"
            )
        self.reset()

    def reset(self) -> None:
        """Forget the state: the next call starts a new signal."""
        self._x: np.ndarray | None = None  # last filtered value
        self._dx: np.ndarray | None = None  # last filtered speed (units per second)
        self._t: float | None = None

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of the signal being filtered, or None before the first sample."""
        return None if self._x is None else self._x.shape

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter the sample ``x`` taken at time ``t`` (seconds); returns a new float64 array."""
        x = np.asarray(x, dtype=np.float64)
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"OneEuroFilter: t must be a finite time in seconds, got {t!r}")
        if self._x is None or self._t is None or self._dx is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(
                f"OneEuroFilter: got an array of shape {x.shape}, but the filter was started "
                f"with shape {self._x.shape}; call reset() before filtering a different signal"
            )
        dt = t - self._t
        if dt <= 0:
            raise ValueError(
                f"OneEuroFilter: timestamps must increase, got t={t} after t={self._t}; "
                "call reset() to start a new signal"
            )
        cfg = self.config
        # Non-finite samples (a missing keypoint) keep the previous state instead of poisoning it.
        finite = np.isfinite(x)
        x_in = np.where(finite, x, self._x)
        dx = (x_in - self._x) / dt
        dx_hat = self._dx + _alpha(cfg.d_cutoff, dt) * (dx - self._dx)
        cutoff = cfg.min_cutoff + cfg.beta * np.abs(dx_hat)
        x_hat = self._x + _alpha(cutoff, dt) * (x_in - self._x)
        self._x, self._dx, self._t = x_hat, dx_hat, t
        return np.where(finite, x_hat, x)


@dataclass
class _TrackFilter:
    filter: OneEuroFilter
    last_call: int  # index of the smoother call that last saw the track


class KeypointSmoother:
    """Per-track One-Euro filters on keypoint x, y (scores untouched).

    States of tracks not seen for ``max_age`` calls (frames) are dropped, so a track ID that
    comes back later starts from its new position instead of being dragged from its old one.
    Persons without a ``track_id`` are passed through unchanged.
    """

    def __init__(self, config: SmoothingConfig | None = None, *, max_age: int = 30) -> None:
        if config is not None and not isinstance(config, SmoothingConfig):
            raise TypeError(
                f"config must be a SmoothingConfig or None, got {type(config).__name__}"
            )
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ValueError(f"KeypointSmoother max_age must be an int >= 0, got {max_age!r}")
        self.config = config if config is not None else SmoothingConfig()
        self.max_age = max_age
        self.reset()

    def reset(self) -> None:
        """Drop every track's state (e.g. when a new video starts)."""
        self._tracks: dict[int, _TrackFilter] = {}
        self._calls = 0

    @property
    def track_ids(self) -> list[int]:
        """IDs of the tracks that currently hold filter state."""
        return sorted(self._tracks)

    def __call__(self, persons: Sequence[Person], *, t: float) -> list[Person]:
        """Smooth one frame's persons, taken at time ``t`` (seconds, e.g. ``PoseFrame.pts``).

        Returns the same persons in the same order; tracked ones get new keypoint arrays
        (float32, x and y filtered, scores copied), the caller's arrays are not modified.
        """
        self._calls += 1
        seen: set[int] = set()
        out: list[Person] = []
        for person in persons:
            track_id = person.track_id
            if track_id is None:
                out.append(person)
                continue
            if track_id in seen:
                raise ValueError(
                    f"KeypointSmoother: track_id {track_id} appears twice in one frame; "
                    "each person of a frame needs its own track (use PoseTracker.update)"
                )
            seen.add(track_id)
            kpts = np.asarray(person.keypoints)
            if kpts.ndim != 2 or kpts.shape[1] < 2:
                raise ValueError(
                    f"KeypointSmoother: keypoints must have shape (K, 3), got {kpts.shape}"
                )
            state = self._tracks.get(track_id)
            if state is not None and state.filter.shape not in (None, kpts[:, :2].shape):
                state = None  # keypoint count changed: start this track afresh
            if state is None:
                state = _TrackFilter(OneEuroFilter(self.config), self._calls)
                self._tracks[track_id] = state
            state.last_call = self._calls
            smoothed = kpts.astype(np.float32, copy=True)
            smoothed[:, :2] = state.filter(kpts[:, :2], t)
            out.append(dataclasses.replace(person, keypoints=smoothed))
        stale = [k for k, s in self._tracks.items() if self._calls - s.last_call > self.max_age]
        for k in stale:
            del self._tracks[k]
        return out
