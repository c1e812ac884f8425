"""MSRA Gaussian heatmaps (Xiao et al., "Simple Baselines for Human Pose Estimation", ECCV 2018;
the Stacked Hourglass targets of Newell et al. 2016) and their unbiased variant DARK (Zhang et al.,
"Distribution-Aware Coordinate Representation for Human Pose Estimation", CVPR 2020).

Same targets and decoding as MMPose's ``MSRAHeatmap``; ``decode`` equals
``rtpose.ops.decode_heatmaps(h, mode=spec.mode, blur_kernel=spec.blur_kernel,
input_size=input_size)`` (the peak rule of that module: a flat map decodes to pixel 0 where
MMPose reports -1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtpose.codecs.heatmap import (
    DecodeSpec,
    HeatmapTarget,
    check_heatmaps,
    check_kernel,
    check_keypoints,
    check_positive,
    check_sizes,
    decode_dark,
    decode_quarter,
    to_input_pixels,
)
from rtpose.ops.heatmap_decode import MAX_BLUR_KERNEL


@dataclass(frozen=True)
class MSRAHeatmap:
    """Gaussian heatmaps exp(-d^2 / 2 sigma^2), peak 1; biased (MSRA) or unbiased (DARK).

    Encode, with c = keypoint / stride in heatmap pixels (stride = input / heatmap per axis):

    - biased: centre mu = int(c + 0.5) (truncation, as MMPose), window |p - mu| <= 3 sigma (13 x 13
      for sigma 2; MMPose's window for integer 3 sigma, i.e. sigma 1, 2, 3 of its configs).
    - unbiased: centre c itself, no window (MMPose ``_generate_unbiased_gaussian_heatmaps``).

    A keypoint whose window [mu - 3s, mu + 3s + 1) misses the map by MMPose's test
    (``left >= w or top >= h or right < 0 or bottom < 0``) gets weight 0 and an all-zero map; as in
    MMPose a window ending exactly at the left / top edge (right == 0) keeps weight 1 with an empty
    map. Invisible keypoints (visible < 0.5) get weight 0 and a zero map.

    Decode: argmax + quarter offset (biased) or DARK with ``blur_kernel`` (unbiased), times stride.

    Attributes:
        input_size: (input_h, input_w) of the network input.
        heatmap_size: (heatmap_h, heatmap_w), no larger than the input.
        sigma: Gaussian standard deviation in heatmap pixels.
        unbiased: DARK targets and decoding.
        blur_kernel: odd DARK blur size in [1, 31] (11 for sigma 2; see :func:`dark_blur_kernel`).
        flip_shift: the flip test shifts flipped-back heatmaps one pixel (MMPose's MSRA
            convention, the default); the Newell hourglass entries turn it off.
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float = 2.0
    unbiased: bool = False
    blur_kernel: int = 11
    flip_shift: bool = True

    def __post_init__(self) -> None:
        inp, hm = check_sizes(self.input_size, self.heatmap_size)
        object.__setattr__(self, "input_size", inp)
        object.__setattr__(self, "heatmap_size", hm)
        object.__setattr__(self, "sigma", check_positive(self.sigma, "sigma"))
        object.__setattr__(self, "blur_kernel", check_kernel(self.blur_kernel, "blur_kernel"))
        if not isinstance(self.unbiased, bool | np.bool_):
            raise ValueError(f"unbiased must be a bool, got {self.unbiased!r}")

    @property
    def decode_spec(self) -> DecodeSpec:
        """quarter or dark with ``blur_kernel``; the flip test shifts as ``flip_shift`` says."""
        if self.unbiased:
            return DecodeSpec("dark", blur_kernel=self.blur_kernel, flip_shift=self.flip_shift)
        return DecodeSpec("quarter", flip_shift=self.flip_shift)

    def encode(self, keypoints: Any, visible: Any = None) -> HeatmapTarget:
        """(N, K, 2) input-pixel keypoints (+ (N, K) visibility) -> (N, K, h, w) targets."""
        kp, vis = check_keypoints(keypoints, visible)
        n, k = vis.shape
        h, w = self.heatmap_size
        sx, sy = self.decode_spec.scale(self.input_size, self.heatmap_size)
        centres = kp / np.array([sx, sy])  # (N, K, 2) heatmap pixels
        heatmaps = np.zeros((n, k, h, w), dtype=np.float32)
        weights = np.zeros((n, k), dtype=np.float32)
        xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
        radius = 3.0 * self.sigma
        for i, j in zip(*np.nonzero(vis), strict=True):
            c = centres[i, j]
            if self.unbiased:  # MMPose tests the float window of the exact centre
                mu, reach = c, radius
                left, top = mu - radius
                right, bottom = mu + radius + 1
            else:  # ... and the truncated window of the rounded centre
                mu, reach = np.trunc(c + 0.5), math.floor(radius)
                left, top = np.trunc(mu - radius)
                right, bottom = np.trunc(mu + radius + 1)
            if left >= w or top >= h or right < 0 or bottom < 0:
                continue
            weights[i, j] = 1.0
            gx = np.exp(-((xs - mu[0]) ** 2) / (2 * self.sigma**2))  # (w,)
            gy = np.exp(-((ys - mu[1]) ** 2) / (2 * self.sigma**2))  # (h,)
            if not self.unbiased:
                gx = np.where(np.abs(xs - mu[0]) <= reach, gx, 0.0)
                gy = np.where(np.abs(ys - mu[1]) <= reach, gy, 0.0)
            heatmaps[i, j] = gy[:, None] * gx[None, :]  # (h, w)
        return HeatmapTarget(heatmaps, weights)

    def decode(self, heatmaps: Any) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, h, w) heatmaps -> keypoints (N, K, 2) float32 in input pixels, scores (N, K)."""
        hm = check_heatmaps(heatmaps, self.heatmap_size)
        n, k, h, w = hm.shape
        maps = hm.reshape(n * k, h, w)
        if self.unbiased:
            x, y, score = decode_dark(maps, self.blur_kernel)
        else:
            x, y, score = decode_quarter(maps)
        scale = self.decode_spec.scale(self.input_size, self.heatmap_size)
        return to_input_pixels(x, y, score, scale, n, k)


def dark_blur_kernel(sigma: float) -> int:
    """DARK's blur size for targets of ``sigma``: the odd k whose OpenCV sigma
    0.3 ((k - 1) / 2 - 1) + 0.8 is nearest to ``sigma`` (MMPose's rule of thumb): 11 for sigma 2,
    17 for sigma 3, 5 for sigma 1."""
    sigma = check_positive(sigma, "sigma")
    k = 2 * max(0, round((sigma - 0.8) / 0.3 + 1.0)) + 1
    if k > MAX_BLUR_KERNEL:
        raise ValueError(
            f"sigma must be at most 5.3 for DARK (blur kernel <= {MAX_BLUR_KERNEL}), got {sigma}"
        )
    return k


def dark_heatmap(
    input_size: tuple[int, int], heatmap_size: tuple[int, int], *, sigma: float = 2.0
) -> MSRAHeatmap:
    """DARK codec: ``MSRAHeatmap(unbiased=True)`` with the blur size of :func:`dark_blur_kernel`."""
    return MSRAHeatmap(
        input_size, heatmap_size, sigma=sigma, unbiased=True, blur_kernel=dark_blur_kernel(sigma)
    )
