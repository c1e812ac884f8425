"""Optimal assignment of detections to tracks: the Hungarian (Kuhn-Munkres) algorithm in numpy.

The tracker matches each frame's detections to its live tracks by the assignment that maximises
their total similarity. People counts are small (<= ~50), so an O(n^3) shortest-augmenting-path
algorithm (the form of Jonker and Volgenant, "A Shortest Augmenting Path Algorithm for Dense and
Sparse Linear Assignment Problems", Computing 1987), vectorised over columns, is fast enough and
keeps the runtime free of scipy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["linear_sum_assignment"]


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of rows to columns (Hungarian algorithm, numpy).

    Shortest augmenting paths with row/column potentials (the O(n^2 m) form of Kuhn-Munkres used
    by Jonker-Volgenant), vectorised over columns. Same result as
    ``scipy.optimize.linear_sum_assignment`` (up to ties): every row of the smaller side is
    assigned.

    Args:
        cost: (n, m) finite costs.

    Returns:
        (rows, cols): int arrays of equal length min(n, m), rows ascending.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or not np.isfinite(cost).all():
        raise ValueError(f"cost must be a finite 2-D array, got shape {cost.shape}")
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    # 1-based: column 0 is a virtual column holding the row being inserted.
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.int64)  # owner[j]: row assigned to column j (0: none)
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # augment along the alternating path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.nonzero(owner[1:])[0]
    rows = owner[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)
