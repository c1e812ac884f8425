"""Argument checks shared by the ops (messages name the op, the argument and what was given)."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np


def describe(a: object) -> str:
    """ "float32 (2, 3)" for arrays (numpy or GPU), the type name otherwise."""
    shape = getattr(a, "shape", None)
    dtype = getattr(a, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{np.dtype(dtype)} {tuple(shape)}"
    return type(a).__name__


def pair(what: str, value: object) -> tuple[int, int]:
    """(a, b) of integers from any 2-sequence of ints (tuple, list, numpy ints)."""
    if not isinstance(value, Sequence | np.ndarray) or len(value) != 2:
        raise ValueError(f"{what} must be a pair of integers (height, width), got {value!r}")
    try:
        return operator.index(value[0]), operator.index(value[1])
    except TypeError as exc:
        raise TypeError(
            f"{what} must be a pair of integers (height, width), got {value!r}"
        ) from exc


def maps(value: object, n: int | None, *, op: str, name: str) -> np.ndarray:
    """(N, 2, 3) float64 C-contiguous maps from (N, 2, 3) or (2, 3) (broadcast to ``n`` rows when
    ``n`` is given) float or int input."""
    arr = np.asarray(value)
    shape = "(N, 2, 3) or (2, 3)" if n is None else f"({n}, 2, 3) or (2, 3)"
    msg = f"{op}: {name} must be a float array of shape {shape}, got "
    if arr.dtype.kind not in "iuf":
        raise TypeError(msg + describe(arr))
    if arr.shape == (2, 3):
        arr = arr[None] if n is None else np.broadcast_to(arr, (n, 2, 3))
    if arr.ndim != 3 or arr.shape[1:] != (2, 3) or (n is not None and arr.shape[0] != n):
        raise ValueError(msg + describe(arr))
    return np.ascontiguousarray(arr, dtype=np.float64)


def host_out(out: object, *, op: str, shape: tuple[int, ...], dtype: object) -> None:
    """Checks a caller-given numpy output: C-contiguous, writeable, ``shape`` and ``dtype``."""
    dtype = np.dtype(dtype)  # type: ignore[arg-type]
    shape = tuple(shape)
    msg = f"{op}: out must be a C-contiguous, writeable {dtype} array of shape {shape}, got "
    if not isinstance(out, np.ndarray):
        raise TypeError(msg + type(out).__name__)
    if out.dtype != dtype:
        raise TypeError(msg + describe(out))
    if out.shape != shape:
        raise ValueError(msg + describe(out))
    if not out.flags.c_contiguous:
        raise ValueError(msg + describe(out) + ", not C-contiguous")
    if not out.flags.writeable:
        raise ValueError(msg + describe(out) + ", read-only")
