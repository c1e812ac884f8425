"""The Hungarian assignment against brute force over all permutations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rtpose.track.assignment import linear_sum_assignment


def test_linear_sum_assignment_is_optimal():
    rng = np.random.default_rng(0)
    for it in range(200):
        n, m = (int(v) for v in rng.integers(1, 6, 2))
        cost = rng.normal(size=(n, m))
        if it % 3 == 0:
            cost = np.round(cost)  # ties
        rows, cols = linear_sum_assignment(cost)
        assert len(rows) == len(cols) == min(n, m)
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        if n <= m:
            best = min(
                sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n)
            )
        else:
            best = min(
                sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m)
            )
        assert cost[rows, cols].sum() == pytest.approx(best, abs=1e-9)
    empty = linear_sum_assignment(np.zeros((0, 3)))
    assert empty[0].shape == empty[1].shape == (0,)


def test_rejects_non_finite_or_non_2d_costs():
    with pytest.raises(ValueError, match="finite 2-D"):
        linear_sum_assignment(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match="finite 2-D"):
        linear_sum_assignment(np.zeros(3))
