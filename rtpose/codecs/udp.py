"""UDP heatmaps (Huang et al., "The Devil is in the Details: Delving into Unbiased Data Processing
for Human Pose Estimation", CVPR 2020; MMPose ``UDPHeatmap``).

UDP measures sizes in pixel *intervals*: heatmap pixel p is input pixel p * (input - 1) /
(heatmap - 1) on each axis, so the first and last pixel centres of the two grids coincide. That is
the input pixel of UDP's crop warp, which maps the box onto [0, input - 1]. (MMPose 1.x decodes to
``p / (heatmap - 1) * input`` instead and pairs it with a box rescale by ``input``; both give the
same image point for their own crop convention.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rtpose._deps import require
from rtpose.codecs.heatmap import (
    DecodeSpec,
    HeatmapTarget,
    check_heatmaps,
    check_kernel,
    check_keypoints,
    check_positive,
    check_sizes,
    decode_dark,
    peaks,
    to_input_pixels,
)


@dataclass(frozen=True)
class UDPHeatmap:
    """UDP targets: unbiased Gaussians, or classification disks with offset maps ("combined").

    Encode, with c = keypoint * (heatmap - 1) / (input - 1) in heatmap pixels:

    - "gaussian": exp(-|p - c|^2 / 2 sigma^2) (peak below 1 off the grid) in the window
      |p - int(c + 0.5)| <= 3 sigma; out-of-map test and weights as :class:`MSRAHeatmap` (biased).
    - "combined": (N, 3K, h, w), per keypoint [disk, dx, dy]: disk = 1 where
      |c - p| <= r, r = radius_factor * max(h, w); dx = (c_x - p_x) / r, dy = (c_y - p_y) / r
      everywhere. A disk entirely outside the map gives weight 0 and zero maps (MMPose keeps
      weight 1 there).

    Decode: "gaussian": DARK (``blur_kernel``) as ``rtpose.ops.decode_heatmaps(mode="dark")``;
    "combined" (numpy only): the disk maps blurred with ``cv2.GaussianBlur((2b + 1, 2b + 1), 0)``
    (b = ``blur_kernel``, as MMPose), their argmax plus r times the offsets there; score = blurred
    max. Both times (input - 1) / (heatmap - 1).

    Attributes:
        input_size: (input_h, input_w) of the network input.
        heatmap_size: (heatmap_h, heatmap_w), at least 2 per side, no larger than the input.
        heatmap_type: "gaussian" or "combined".
        sigma: Gaussian standard deviation in heatmap pixels ("gaussian").
        radius_factor: disk radius relative to max(h, w) ("combined").
        blur_kernel: odd DARK blur size in [1, 31] ("gaussian"; 2 b + 1 for "combined").
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    heatmap_type: Literal["gaussian", "combined"] = "gaussian"
    sigma: float = 2.0
    radius_factor: float = 0.0546875
    blur_kernel: int = 11

    def __post_init__(self) -> None:
        inp, hm = check_sizes(self.input_size, self.heatmap_size, min_heatmap=2)
        object.__setattr__(self, "input_size", inp)
        object.__setattr__(self, "heatmap_size", hm)
        if self.heatmap_type not in ("gaussian", "combined"):
            raise ValueError(
                f"heatmap_type must be 'gaussian' or 'combined', got {self.heatmap_type!r}"
            )
        object.__setattr__(self, "sigma", check_positive(self.sigma, "sigma"))
        object.__setattr__(
            self, "radius_factor", check_positive(self.radius_factor, "radius_factor")
        )
        object.__setattr__(self, "blur_kernel", check_kernel(self.blur_kernel, "blur_kernel"))

    @property
    def decode_spec(self) -> DecodeSpec:
        """dark with ``blur_kernel`` and UDP scaling, no flip shift; only for "gaussian".

        Raises:
            NotImplementedError: for "combined", which only :meth:`decode` handles.
        """
        if self.heatmap_type != "gaussian":
            raise NotImplementedError(
                "the pipeline decodes only UDPHeatmap(heatmap_type='gaussian'); "
                "decode 'combined' outputs with UDPHeatmap.decode"
            )
        return DecodeSpec("dark", blur_kernel=self.blur_kernel, flip_shift=False, udp_scale=True)

    def _scale(self) -> tuple[float, float]:
        spec = DecodeSpec("dark", udp_scale=True)
        return spec.scale(self.input_size, self.heatmap_size)

    def encode(self, keypoints: Any, visible: Any = None) -> HeatmapTarget:
        """(N, K, 2) input-pixel keypoints (+ (N, K) visibility) -> (N, K, h, w) targets
        ((N, 3K, h, w) for "combined") and (N, K) weights."""
        kp, vis = check_keypoints(keypoints, visible)
        centres = kp / np.array(self._scale())  # (N, K, 2) heatmap pixels
        if self.heatmap_type == "gaussian":
            return self._encode_gaussian(centres, vis)
        return self._encode_combined(centres, vis)

    def _encode_gaussian(self, centres: np.ndarray, vis: np.ndarray) -> HeatmapTarget:
        n, k = vis.shape
        h, w = self.heatmap_size
        heatmaps = np.zeros((n, k, h, w), dtype=np.float32)
        weights = np.zeros((n, k), dtype=np.float32)
        xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
        radius = 3.0 * self.sigma
        for i, j in zip(*np.nonzero(vis), strict=True):
            c = centres[i, j]
            mu = np.trunc(c + 0.5)
            left, top = np.trunc(mu - radius)
            right, bottom = np.trunc(mu + radius + 1)
            if left >= w or top >= h or right < 0 or bottom < 0:
                continue
            weights[i, j] = 1.0
            reach = math.floor(radius)
            gx = np.exp(-((xs - c[0]) ** 2) / (2 * self.sigma**2))  # (w,)
            gy = np.exp(-((ys - c[1]) ** 2) / (2 * self.sigma**2))  # (h,)
            gx = np.where(np.abs(xs - mu[0]) <= reach, gx, 0.0)
            gy = np.where(np.abs(ys - mu[1]) <= reach, gy, 0.0)
            heatmaps[i, j] = gy[:, None] * gx[None, :]  # (h, w)
        return HeatmapTarget(heatmaps, weights)

    def _encode_combined(self, centres: np.ndarray, vis: np.ndarray) -> HeatmapTarget:
        n, k = vis.shape
        h, w = self.heatmap_size
        radius = self.radius_factor * max(h, w)
        heatmaps = np.zeros((n, k, 3, h, w), dtype=np.float32)
        weights = np.zeros((n, k), dtype=np.float32)
        xs = np.arange(w, dtype=np.float64)[None, :]  # (1, w)
        ys = np.arange(h, dtype=np.float64)[:, None]  # (h, 1)
        for i, j in zip(*np.nonzero(vis), strict=True):
            dx = np.broadcast_to((centres[i, j, 0] - xs) / radius, (h, w))
            dy = np.broadcast_to((centres[i, j, 1] - ys) / radius, (h, w))
            disk = dx**2 + dy**2 <= 1
            if not disk.any():
                continue
            weights[i, j] = 1.0
            heatmaps[i, j] = np.stack([disk, dx, dy])
        return HeatmapTarget(heatmaps.reshape(n, 3 * k, h, w), weights)

    def decode(self, heatmaps: Any) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, h, w) ((N, 3K, h, w) for "combined") -> keypoints (N, K, 2) float32 in input
        pixels, scores (N, K) float32."""
        channels = 1 if self.heatmap_type == "gaussian" else 3
        hm = check_heatmaps(heatmaps, self.heatmap_size, channels)
        n, c, h, w = hm.shape
        k = c // channels
        if self.heatmap_type == "gaussian":
            x, y, score = decode_dark(hm.reshape(n * k, h, w), self.blur_kernel)
        else:
            x, y, score = self._decode_combined(hm.reshape(n * k, 3, h, w))
        return to_input_pixels(x, y, score, self._scale(), n, k)

    def _decode_combined(self, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(M, 3, h, w) [disk, dx, dy] maps -> x, y (float64 heatmap pixels), score (float32)."""
        cv2 = require("cv2", purpose="decoding UDP combined heatmaps")
        size = 2 * self.blur_kernel + 1
        disks = np.stack([cv2.GaussianBlur(m[0], (size, size), 0) for m in maps])  # (M, h, w)
        px, py, score, ok = peaks(disks)
        radius = self.radius_factor * max(self.heatmap_size)
        m = np.arange(len(maps))
        x = px + maps[m, 1, py, px].astype(np.float64) * radius
        y = py + maps[m, 2, py, px].astype(np.float64) * radius
        nan = np.float64(np.nan)
        return np.where(ok, x, nan), np.where(ok, y, nan), np.where(ok, score, np.float32(nan))
