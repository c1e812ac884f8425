"""Megvii multi-kernel heatmaps of MSPN (Li et al., "Rethinking on Multi-Stage Networks for Human
Pose Estimation", arXiv 1901.00148) and RSN (Cai et al., "Learning Delicate Local Representations
for Multi-Person Pose Estimation", ECCV 2020).

Targets as MMPose's ``MegviiHeatmap``, one level per Gaussian kernel (coarse-to-fine supervision);
decoding as ``rtpose.ops.decode_heatmaps(mode="megvii")``, i.e. the official Megvii code's ``+0.5``
on every keypoint (MMPose adds it only inside the border).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtpose._deps import require
from rtpose.codecs.heatmap import (
    DecodeSpec,
    HeatmapTarget,
    check_heatmaps,
    check_kernel,
    check_keypoints,
    check_sizes,
    decode_megvii,
    to_input_pixels,
)

# The five target kernels of MSPN / RSN, coarse to fine (OpenCV sigma 2.6, 2.0, 1.7, 1.4, 1.1).
MSPN_KERNEL_SIZES = (15, 11, 9, 7, 5)


def megvii_targets_for_stages(num_stages: int) -> tuple[int, ...]:
    """Target kernel of every supervised output of an MSPN / RSN, in ``forward_all`` order.

    Each stage has 4 units (coarse to fine); stages before the last use kernels 15/11/9/7, the last
    11/9/7/5 (MMPose ``level_indices = [0, 1, 2, 3] * (S - 1) + [1, 2, 3, 4]`` into
    :data:`MSPN_KERNEL_SIZES`); one stage: (11, 9, 7, 5).
    """
    try:
        stages = operator.index(num_stages)
    except TypeError as exc:
        raise ValueError(f"num_stages must be an integer >= 1, got {num_stages!r}") from exc
    if stages < 1:
        raise ValueError(f"num_stages must be an integer >= 1, got {num_stages!r}")
    levels = [0, 1, 2, 3] * (stages - 1) + [1, 2, 3, 4]
    return tuple(MSPN_KERNEL_SIZES[i] for i in levels)


@dataclass(frozen=True)
class MegviiHeatmap:
    """Blurred one-hot heatmaps with peak 255, one level per kernel.

    Encode, per kernel k: 1 at (int(x / stride), int(y / stride)) (truncation, as MMPose),
    ``cv2.GaussianBlur((k, k), 0)`` (OpenCV's default reflect-101 border), divided by the value at
    that pixel and times 255. A truncated location outside the map, or an invisible keypoint
    (visible < 0.5), gives weight 0 and zero maps.

    Decode (``decode_kernel``): peak of the zero-padded blur, quarter offset on it when
    1 < x < w - 1 and 1 < y < h - 1, +0.5 always, times stride; score = raw max / 255 + 0.5.

    Attributes:
        input_size: (input_h, input_w) of the network input.
        heatmap_size: (heatmap_h, heatmap_w), no larger than the input.
        kernel_sizes: odd target kernels, one output level each (repeats allowed, e.g.
            ``megvii_targets_for_stages(2)``).
        decode_kernel: odd blur size in [1, 31] of the decoder (COCO 5, MPII 9).
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    kernel_sizes: tuple[int, ...] = (11, 9, 7, 5)
    decode_kernel: int = 5

    def __post_init__(self) -> None:
        inp, hm = check_sizes(self.input_size, self.heatmap_size)
        object.__setattr__(self, "input_size", inp)
        object.__setattr__(self, "heatmap_size", hm)
        if isinstance(self.kernel_sizes, int | str) or not len(self.kernel_sizes):
            raise ValueError(
                f"kernel_sizes must be a non-empty sequence of odd integers, got "
                f"{self.kernel_sizes!r}"
            )
        kernels = tuple(check_kernel(k, "kernel_sizes", max_size=None) for k in self.kernel_sizes)
        object.__setattr__(self, "kernel_sizes", kernels)
        object.__setattr__(self, "decode_kernel", check_kernel(self.decode_kernel, "decode_kernel"))

    @property
    def decode_spec(self) -> DecodeSpec:
        """megvii with ``decode_kernel``; the flip test does not shift (MSPN / RSN)."""
        return DecodeSpec("megvii", blur_kernel=self.decode_kernel, flip_shift=False)

    def encode(self, keypoints: Any, visible: Any = None) -> HeatmapTarget:
        """(N, K, 2) input-pixel keypoints (+ (N, K) visibility) -> (L, N, K, h, w) targets, one
        level per entry of ``kernel_sizes``, and (N, K) weights."""
        cv2 = require("cv2", purpose="Megvii heatmap targets")
        kp, vis = check_keypoints(keypoints, visible)
        n, k = vis.shape
        h, w = self.heatmap_size
        sx, sy = self.decode_spec.scale(self.input_size, self.heatmap_size)
        cells = np.trunc(kp / np.array([sx, sy]))  # (N, K, 2), truncation towards zero
        inside = (cells[..., 0] >= 0) & (cells[..., 0] < w) & (cells[..., 1] >= 0)
        inside &= cells[..., 1] < h
        weights = (vis & inside).astype(np.float32)  # (N, K)
        levels = {}
        for size in dict.fromkeys(self.kernel_sizes):  # each distinct kernel once
            level = np.zeros((n, k, h, w), dtype=np.float32)
            for i, j in zip(*np.nonzero(weights), strict=True):
                cx, cy = int(cells[i, j, 0]), int(cells[i, j, 1])
                one_hot = np.zeros((h, w), dtype=np.float32)
                one_hot[cy, cx] = 1.0
                blurred = cv2.GaussianBlur(one_hot, (size, size), 0)
                level[i, j] = blurred / blurred[cy, cx] * np.float32(255.0)
            levels[size] = level
        return HeatmapTarget(np.stack([levels[s] for s in self.kernel_sizes]), weights)

    def decode(self, heatmaps: Any) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, h, w) heatmaps (one level, the final output) -> keypoints (N, K, 2) float32 in
        input pixels, scores (N, K) float32."""
        hm = check_heatmaps(heatmaps, self.heatmap_size)
        n, k, h, w = hm.shape
        x, y, score = decode_megvii(hm.reshape(n * k, h, w), self.decode_kernel)
        scale = self.decode_spec.scale(self.input_size, self.heatmap_size)
        return to_input_pixels(x, y, score, scale, n, k)
