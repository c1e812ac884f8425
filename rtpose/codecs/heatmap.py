"""Shared parts of the heatmap codecs: the target type, the decode spec, checks and numpy decoding.

The numpy decoding here is written from the definition in :mod:`rtpose.ops.heatmap_decode`
(peak rule, quarter offset of Newell et al. 2016, Megvii refinement of MSPN / RSN, DARK of
Zhang et al. CVPR 2020, blur with zero padding in a fixed float32 order), independently of that
module's code, so that the codecs' ``decode`` is an oracle for ``rtpose.ops.decode_heatmaps``.

Conventions: keypoints are (N, K, 2) (x, y) in crop-input pixels (the network input); sizes are
``(h, w)``; heatmaps are (N, K, h, w).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rtpose.ops.heatmap_decode import MAX_BLUR_KERNEL, RefineMode, gaussian_kernel


class HeatmapTarget(NamedTuple):
    """Training targets of a heatmap codec."""

    heatmaps: np.ndarray  # (N, K, h, w) float32; Megvii: (L, N, K, h, w), one level per kernel
    weights: np.ndarray  # (N, K) float32: 0 for invisible or out-of-map keypoints, else 1


@dataclass(frozen=True)
class DecodeSpec:
    """How the pipeline decodes a codec's network output with ``rtpose.ops.decode_heatmaps``.

    Attributes:
        mode: the ``decode_heatmaps`` refinement mode.
        blur_kernel: its ``blur_kernel`` ("megvii" and "dark"; None for the other modes).
        flip_shift: whether the flip test shifts the flipped-back heatmaps one pixel right
            (MMPose ``shift_heatmap``; on for the MSRA convention, off for Megvii and UDP).
        udp_scale: heatmap -> input pixels by (input - 1) / (heatmap - 1) (UDP, Huang et al.
            CVPR 2020) instead of input / heatmap.
    """

    mode: RefineMode
    blur_kernel: int | None = None
    flip_shift: bool = False
    udp_scale: bool = False

    def scale(
        self, input_size: tuple[int, int], heatmap_size: tuple[int, int]
    ) -> tuple[float, float]:
        """(sx, sy): heatmap pixels times (sx, sy) are input pixels."""
        in_h, in_w = check_size(input_size, "input_size")
        hm_h, hm_w = check_size(heatmap_size, "heatmap_size")
        if self.udp_scale:
            if hm_h < 2 or hm_w < 2:
                raise ValueError(
                    f"heatmap_size must be at least (2, 2) for UDP, got {heatmap_size!r}"
                )
            return (in_w - 1) / (hm_w - 1), (in_h - 1) / (hm_h - 1)
        return in_w / hm_w, in_h / hm_h


# --- argument checks ----------------------------------------------------------------------------


def check_size(size: Any, field: str) -> tuple[int, int]:
    """(h, w) of positive integers, or ValueError naming ``field``."""
    try:
        h, w = (operator.index(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field} must be two integers (h, w), got {size!r}") from exc
    if h < 1 or w < 1:
        raise ValueError(f"{field} must be positive (h, w), got {size!r}")
    return h, w


def check_sizes(
    input_size: Any, heatmap_size: Any, *, min_heatmap: int = 1
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Both sizes, the heatmap no larger than the input and at least ``min_heatmap`` per side."""
    inp = check_size(input_size, "input_size")
    hm = check_size(heatmap_size, "heatmap_size")
    if hm[0] > inp[0] or hm[1] > inp[1]:
        raise ValueError(
            f"heatmap_size must not exceed input_size {inp}, got {hm}; heatmaps are a "
            "downsampled view of the input"
        )
    if min(hm) < min_heatmap:
        raise ValueError(f"heatmap_size must be at least {min_heatmap} per side, got {hm}")
    return inp, hm


def check_positive(value: Any, field: str) -> float:
    """A finite float > 0, or ValueError naming ``field``."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field} must be a positive number, got {value!r}") from exc
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{field} must be a positive number, got {value!r}")
    return v


def check_kernel(value: Any, field: str, *, max_size: int | None = MAX_BLUR_KERNEL) -> int:
    """An odd integer >= 1 (and <= ``max_size``), or ValueError naming ``field``."""
    limit = "" if max_size is None else f" <= {max_size}"
    try:
        k = operator.index(value)
    except TypeError as exc:
        raise ValueError(f"{field} must be an odd integer{limit}, got {value!r}") from exc
    if k < 1 or k % 2 == 0 or (max_size is not None and k > max_size):
        raise ValueError(f"{field} must be an odd integer >= 1{limit}, got {value!r}")
    return k


def check_keypoints(keypoints: Any, visible: Any) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 2) keypoints -> float64 copy; visible (N, K) (None: all) -> bool (>= 0.5, MMPose)."""
    kp = np.asarray(keypoints)
    if kp.ndim != 3 or kp.shape[2] != 2 or kp.dtype.kind not in "iuf":
        raise ValueError(f"keypoints must be a numeric (N, K, 2) array, got {kp.dtype} {kp.shape}")
    kp = kp.astype(np.float64)
    if visible is None:
        return kp, np.ones(kp.shape[:2], dtype=bool)
    vis = np.asarray(visible)
    if vis.shape != kp.shape[:2] or vis.dtype.kind not in "biuf":
        raise ValueError(
            f"visible must be None or a (N, K) = {kp.shape[:2]} array, got {vis.dtype} {vis.shape}"
        )
    return kp, vis >= 0.5


def check_heatmaps(heatmaps: Any, heatmap_size: tuple[int, int], channels: int = 1) -> np.ndarray:
    """(N, C, h, w) float heatmaps of the codec's size (C a multiple of ``channels``) -> float32."""
    hm = np.asarray(heatmaps)
    c = "3K" if channels == 3 else "K"
    expected = f"a float (N, {c}, {heatmap_size[0]}, {heatmap_size[1]})"
    if (
        hm.ndim != 4
        or hm.dtype.kind != "f"
        or tuple(hm.shape[2:]) != heatmap_size
        or hm.shape[1] % channels
    ):
        raise ValueError(f"heatmaps must be {expected} array, got {hm.dtype} {hm.shape}")
    return hm.astype(np.float32)


# --- numpy decoding -----------------------------------------------------------------------------


def peaks(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Peak of each (M, H, W) map: px, py (int64), value (float32) and whether any value is non-NaN.

    The largest non-NaN value, the first in row-major order on ties.
    """
    m, h, w = maps.shape
    flat = maps.reshape(m, h * w)
    finite = np.where(np.isnan(flat), -np.inf, flat)
    index = np.argmax(finite, axis=1)  # first occurrence of the maximum
    value = flat[np.arange(m), index]
    py, px = np.divmod(index, w)
    return px, py, value, ~np.isnan(flat).all(axis=1)


def blur(maps: np.ndarray, kernel: int) -> np.ndarray:
    """Separable Gaussian blur of (M, H, W) float32 maps, zero padded, in the fixed float32 order
    of :mod:`rtpose.ops.heatmap_decode` (x pass, then y pass; mirrored taps added first)."""
    weights = gaussian_kernel(kernel)
    return _blur_pass(_blur_pass(maps, weights, axis=2), weights, axis=1)


def _blur_pass(maps: np.ndarray, weights: np.ndarray, *, axis: int) -> np.ndarray:
    r = len(weights) // 2
    lines = np.moveaxis(maps.astype(np.float32), axis, -1)  # (..., L)
    n = lines.shape[-1]
    padded = np.pad(lines, [(0, 0)] * (lines.ndim - 1) + [(r, r)])  # zeros outside
    acc = weights[r] * lines  # float32 throughout: every step rounds as the kernels do
    for j in range(1, r + 1):
        pair = padded[..., r - j : r - j + n] + padded[..., r + j : r + j + n]  # mirrored taps
        acc = acc + weights[r + j] * pair
    return np.moveaxis(acc, -1, axis)


def _sign(d: np.ndarray) -> np.ndarray:
    """-1, 0 or +1 as float64; NaN gives 0."""
    return np.where(d > 0, 1.0, np.where(d < 0, -1.0, 0.0))


def quarter_signs(
    maps: np.ndarray, px: np.ndarray, py: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """sign(map[y, x+1] - map[y, x-1]) and sign(map[y+1, x] - map[y-1, x]) at each peak (M,).

    Neighbours outside the map are clipped to the edge; callers use the signs only inside.
    """
    _, h, w = maps.shape
    m = np.arange(len(maps))
    gx = maps[m, py, np.minimum(px + 1, w - 1)] - maps[m, py, np.maximum(px - 1, 0)]
    gy = maps[m, np.minimum(py + 1, h - 1), px] - maps[m, np.maximum(py - 1, 0), px]
    return _sign(gx), _sign(gy)


def decode_quarter(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Argmax + quarter offset (MMPose ``refine_keypoints``) of (M, H, W) maps.

    Returns x, y (float64, heatmap pixels) and the peak value (float32); NaN for all-NaN maps.
    """
    _, h, w = maps.shape
    px, py, value, ok = peaks(maps)
    sx, sy = quarter_signs(maps, px, py)
    # MMPose's tests: x moves if 1 < x < W-1 and 0 < y < H; y if 1 < y < H-1 and 0 < x < W
    x = px + np.where((px > 1) & (px < w - 1) & (py > 0), 0.25 * sx, 0.0)
    y = py + np.where((py > 1) & (py < h - 1) & (px > 0), 0.25 * sy, 0.0)
    return _nan_where(~ok, x, y, value)


def decode_megvii(maps: np.ndarray, kernel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Megvii refinement (MSPN / RSN) of (M, H, W) maps: peak of the blurred map, quarter offset on
    the blurred map inside the border, then +0.5 always; score = raw max / 255 + 0.5."""
    _, h, w = maps.shape
    blurred = blur(maps, kernel)
    px, py, _, ok = peaks(blurred)
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    sx, sy = quarter_signs(blurred, px, py)
    x = px + np.where(inside, 0.25 * sx, 0.0) + 0.5
    y = py + np.where(inside, 0.25 * sy, 0.0) + 0.5
    _, _, raw_max, _ = peaks(maps)
    score = (raw_max.astype(np.float64) / 255.0 + 0.5).astype(np.float32)
    return _nan_where(~ok, x, y, score)


def decode_dark(maps: np.ndarray, kernel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DARK (Zhang et al. 2020; MMPose ``refine_keypoints_dark``) of (M, H, W) maps: one Newton
    step on log(blurred map) at the raw peak, for peaks at least 2 px inside the border."""
    _, h, w = maps.shape
    px, py, value, ok = peaks(maps)
    x, y = px.astype(np.float64), py.astype(np.float64)
    sel = np.flatnonzero(ok & (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2))
    if sel.size:
        b = blur(maps[sel], kernel)  # (S, H, W)
        cx, cy, s = px[sel], py[sel], np.arange(sel.size)

        def log_at(dx: int, dy: int) -> np.ndarray:  # log of the clamped blurred map, float64
            v = b[s, cy + dy, cx + dx]
            return np.log(np.where(v < np.float32(1e-10), np.float32(1e-10), v).astype(np.float64))

        c = log_at(0, 0)
        gx = 0.5 * (log_at(1, 0) - log_at(-1, 0))
        gy = 0.5 * (log_at(0, 1) - log_at(0, -1))
        gxx = 0.25 * ((log_at(2, 0) - 2.0 * c) + log_at(-2, 0))
        gyy = 0.25 * ((log_at(0, 2) - 2.0 * c) + log_at(0, -2))
        gxy = 0.25 * (((log_at(1, 1) - log_at(1, -1)) - log_at(-1, 1)) + log_at(-1, -1))
        with np.errstate(all="ignore"):
            det = gxx * gyy - gxy * gxy
            ox = (gyy * gx - gxy * gy) / det
            oy = (gxx * gy - gxy * gx) / det
        terms = np.stack([gx, gy, gxx, gyy, gxy, det, ox, oy])
        step = (det != 0) & np.isfinite(terms).all(axis=0)
        x[sel] = np.where(step, x[sel] - ox, x[sel])
        y[sel] = np.where(step, y[sel] - oy, y[sel])
    return _nan_where(~ok, x, y, value)


def _nan_where(
    bad: np.ndarray, x: np.ndarray, y: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nan = np.float64(np.nan)
    return np.where(bad, nan, x), np.where(bad, nan, y), np.where(bad, np.float32(nan), score)


def to_input_pixels(
    x: np.ndarray, y: np.ndarray, score: np.ndarray, scale: tuple[float, float], n: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(M,) heatmap coordinates and scores -> keypoints (N, K, 2) float32 in input pixels, scores
    (N, K) float32 (scaling in float64, as the pipeline's transform)."""
    kp = np.stack([scale[0] * x, scale[1] * y], axis=1).astype(np.float32)
    return kp.reshape(n, k, 2), score.astype(np.float32).reshape(n, k)
