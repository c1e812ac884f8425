"""Motion models of a track's box: where it will be in a later frame.

A model is created from the first observed box, ``observe`` takes each later matched box and
``predict`` extrapolates to any later frame; boxes are ``cx, cy, w, h`` (float64, px) and time is
the frame index, so skipped frames are simply a larger step.

- :class:`Kalman`: the 8-state constant-velocity Kalman filter of SORT (Bewley et al., "Simple
  Online and Realtime Tracking", ICIP 2016), with the size-relative noise model of DeepSORT
  (Wojke et al., "Simple Online and Realtime Tracking with a Deep Association Metric", ICIP 2017).
- :class:`ConstantVelocity`: the last box moved by an exponential moving average (weight 0.5) of
  the observed per-frame displacements.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MOTION_MODELS", "ConstantVelocity", "Kalman", "MotionModel"]


class ConstantVelocity:
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


class Kalman:
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


MotionModel = ConstantVelocity | Kalman

# TrackerConfig.predictor -> model class
MOTION_MODELS: dict[str, type[MotionModel]] = {
    "kalman": Kalman,
    "constant_velocity": ConstantVelocity,
}
