"""MMPose's decoding rules transcribed (MMPose 1.3.2, ``mmpose/codecs/utils``), and maps that
probe them: the oracle rtpose's decoders are held to where they claim MMPose's behaviour
(tests/ops/test_heatmap_decode.py for the kernels, tests/codecs for the codec oracle)."""

from __future__ import annotations

import numpy as np


def mmpose_quarter(hm: np.ndarray) -> tuple[float, float]:
    """MMPose 1.3.2 ``get_heatmap_maximum`` + ``refine_keypoints`` on one (H, W) map with a
    positive maximum, transcribed: the rule rtpose's "quarter" mode must follow."""
    h, w = hm.shape
    y, x = np.unravel_index(np.argmax(hm), hm.shape)
    dx = hm[y, x + 1] - hm[y, x - 1] if 1 < x < w - 1 and 0 < y < h else 0.0
    dy = hm[y + 1, x] - hm[y - 1, x] if 1 < y < h - 1 and 0 < x < w else 0.0
    return x + 0.25 * float(np.sign(dx)), y + 0.25 * float(np.sign(dy))


def border_peaks(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(1, M, H, W) maps, one planted peak each on every pixel of the two outer rings (every
    border row and column and the ones next to them), random lower values elsewhere."""
    rng = np.random.default_rng(seed)
    spots = [(x, y) for y in range(h) for x in range(w)
             if min(x, y, w - 1 - x, h - 1 - y) <= 1]  # fmt: skip
    maps = rng.uniform(0.0, 0.9, (len(spots), h, w)).astype(np.float32)
    for m, (x, y) in enumerate(spots):
        maps[m, y, x] = 1.0
    return maps[None], spots
