"""Batch shapes for the TensorRT backend: input checks and CUDA-graph batch buckets.

A CUDA graph replays fixed shapes, so a dynamic batch is padded up to the next bucket
(powers of two within the engine's profile) and the outputs are sliced back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def batch_buckets(min_batch: int, max_batch: int) -> tuple[int, ...]:
    """CUDA graph buckets: powers of two from ``min_batch`` up, capped (and ended) by ``max_batch``.

    >>> batch_buckets(1, 12)
    (1, 2, 4, 8, 12)
    """
    if not 1 <= min_batch <= max_batch:
        raise ValueError(f"need 1 <= min_batch <= max_batch, got {min_batch}, {max_batch}")
    buckets = [min_batch]
    size = 1
    while size <= min_batch:
        size *= 2
    while size < max_batch:
        buckets.append(size)
        size *= 2
    if buckets[-1] != max_batch:
        buckets.append(max_batch)
    return tuple(buckets)


def bucket_for(batch: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds ``batch``."""
    for bucket in buckets:
        if batch <= bucket:
            return bucket
    raise ValueError(
        f"batch {batch} exceeds the engine's largest batch {buckets[-1]}; split the batch or "
        "rebuild the engine with a larger --batch MIN:OPT:MAX"
    )


def pad_batch(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` (N, ...) padded with zero rows to (size, ...); ``array`` itself when N == size."""
    rows = array.shape[0]
    if rows > size:
        raise ValueError(f"cannot pad a batch of {rows} down to {size}")
    if rows == size:
        return array
    padded = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    padded[:rows] = array
    return padded


def check_input_shape(
    name: str,
    shape: Sequence[int],
    *,
    engine_shape: Sequence[int],
    profile_min: Sequence[int],
    profile_max: Sequence[int],
) -> None:
    """ValueError unless ``shape`` fits the engine's input (``-1`` dims within the profile)."""
    expected = f"{tuple(engine_shape)} (-1 within {tuple(profile_min)}..{tuple(profile_max)})"
    if len(shape) != len(engine_shape):
        raise ValueError(f"input {name!r} must have shape {expected}, got {tuple(shape)}")
    for axis, (got, want) in enumerate(zip(shape, engine_shape)):
        low, high = profile_min[axis], profile_max[axis]
        if (want != -1 and got != want) or not low <= got <= high:
            hint = "; rebuild the engine with a wider --batch MIN:OPT:MAX" if axis == 0 else ""
            raise ValueError(
                f"input {name!r} must have shape {expected}, got {tuple(shape)} "
                f"(axis {axis}: {got}){hint}"
            )
