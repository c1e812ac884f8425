"""Flip-test merging of heatmaps: average a crop's heatmaps with those of its mirrored crop.

Flip test (Newell et al. 2016, Stacked Hourglass; MMPose ``flip_heatmaps``): the network also
sees the horizontally flipped crop; its heatmaps are flipped back (columns mirrored, left/right
keypoint channels swapped by ``flip_indices``) and averaged with the original ones::

    out[n, k, y, x] = 0.5 * (heatmaps[n, k, y, x] + flipped[n, flip_indices[k], y, sx(x)])

with ``sx(x) = W-1-x``, or with ``shift=True`` (MMPose ``shift_heatmap``, used by MSRA-style
heatmaps such as the Hourglass's) the flipped-back map moved right by one pixel to undo the
half-pixel asymmetry of flipping pixel centres: ``sx(x) = W-x`` for ``x >= 1``, and column 0
keeps its own flipped-back value (``sx(0) = W-1``). Megvii-style decoders (MSPN, RSN) and UDP
flip without the shift.

The sum and the halving are float32 operations rounded one at a time, then the result is stored
in the input dtype (float16: round to nearest even), so the numpy reference, the C++ kernel and
the CUDA kernel agree bit for bit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from rtpose._native import NativeLoader
from rtpose.cuda import arrays
from rtpose.ops._checks import host_out as _host_out
from rtpose.ops._dispatch import GpuCall, host_call, host_result

logger = logging.getLogger(__name__)

_native = NativeLoader("flip_merge", logger)

_DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}  # rtpose::DType
_SHAPE = "(N, K, H, W) or (K, H, W)"


def flip_merge(
    heatmaps: Any,
    flipped: Any,
    flip_indices: Sequence[int] | np.ndarray | Any,
    *,
    shift: bool = False,
    stream: Any = None,
    out: Any = None,
) -> Any:
    """Merges heatmaps with the flipped-back heatmaps of the mirrored crops (flip test).

    Runs on the GPU when ``heatmaps`` is a CUDA array (cupy, torch, DLPack, ...), otherwise on
    the CPU (C++ kernel, or the numpy reference with one warning when rtpose._C is missing).

    Args:
        heatmaps: (N, K, H, W) or (K, H, W) float32/float16 heatmaps of the crops; any strides.
        flipped: the network's heatmaps for the horizontally flipped crops, same shape and dtype
            (typically ``heatmaps`` and ``flipped`` are the two halves of one (2N, K, H, W)
            output).
        flip_indices: K ints, a permutation of range(K): channel ``flip_indices[k]`` of a flipped
            map holds keypoint ``k`` (``rtpose.skeletons.COCO17.flip_index``). On the GPU an
            int32 (K,) CUDA array is used in place and not validated (an entry outside [0, K)
            gives NaN in that channel); a host sequence is validated and uploaded on ``stream``.
        shift: move the flipped-back map one pixel right (MMPose ``shift_heatmap``).
        stream: GPU only: the CUDA stream to queue the work on (None: legacy default stream).
        out: optional C-contiguous output of the input's shape and dtype (a numpy array on the
            CPU, a CUDA array on the GPU), written in place.

    Returns:
        The merged heatmaps, shape and dtype of ``heatmaps``, C-contiguous: a numpy array, or on
        the GPU a ``DeviceArray`` queued on ``stream``; ``out`` itself when given.
    """
    if arrays.is_device_array(heatmaps):
        return _flip_merge_gpu(heatmaps, flipped, flip_indices, shift, stream, out)
    if stream is not None:
        raise ValueError(
            "flip_merge: stream applies to GPU arrays only, got numpy heatmaps with a stream"
        )
    a, b, index, squeeze = _validate(heatmaps, flipped, flip_indices)
    if out is not None:
        _host_out(out, op="flip_merge", shape=a.shape[1:] if squeeze else a.shape, dtype=a.dtype)
    out4 = None if out is None else _as4d(out)
    result = host_call(
        _native,
        lambda native: native.flip_merge(a, b, index, bool(shift), out4),
        lambda: _flip_merge_numpy(a, b, index, bool(shift)),
    )
    return host_result(result[0] if squeeze else result, out)


def flip_merge_reference(
    heatmaps: np.ndarray,
    flipped: np.ndarray,
    flip_indices: Sequence[int] | np.ndarray,
    *,
    shift: bool = False,
) -> np.ndarray:
    """The numpy reference of :func:`flip_merge`: the fallback without rtpose._C and the test
    oracle of the C++ and CUDA kernels.

    Same arguments and result as :func:`flip_merge` for host arrays, without ``stream`` and
    ``out``.
    """
    a, b, index, squeeze = _validate(heatmaps, flipped, flip_indices)
    result = _flip_merge_numpy(a, b, index, bool(shift))
    return result[0] if squeeze else result


# --- numpy reference ----------------------------------------------------------------------------


def source_columns(width: int, *, shift: bool) -> np.ndarray:
    """(W,) column of the flipped map read for each output column (see the module docstring)."""
    x = np.arange(width)
    if not shift:
        return width - 1 - x
    return np.where(x == 0, width - 1, width - x)


def _flip_merge_numpy(a: np.ndarray, b: np.ndarray, index: np.ndarray, shift: bool) -> np.ndarray:
    """(N, K, H, W) validated inputs -> (N, K, H, W) C-contiguous, dtype of ``a``."""
    back = b[:, index][..., source_columns(a.shape[-1], shift=shift)]  # flipped back, (N,K,H,W)
    with np.errstate(all="ignore"):  # inf + -inf is NaN, as in C++: no warning
        merged = (a.astype(np.float32) + back.astype(np.float32)) * np.float32(0.5)
    return np.ascontiguousarray(merged.astype(a.dtype, copy=False))


# --- validation (csrc/bindings/flip_merge.cpp repeats it: a direct rtpose._C call stays safe) --


def _describe(a: Any) -> str:
    return f"{a.dtype} {tuple(a.shape)}"


def _as4d(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 4 else a[None]


def _check_maps(name: str, a: Any) -> None:
    """dtype and rank of a heatmap argument (numpy array or DeviceView)."""
    msg = f"flip_merge: {name} must be float32 or float16 of shape {_SHAPE}, got {_describe(a)}"
    if np.dtype(a.dtype) not in _DTYPE_CODES:
        raise TypeError(msg)
    if len(a.shape) not in (3, 4) or a.shape[-1] < 1 or a.shape[-2] < 1:
        raise ValueError(msg)


def _check_pair(a: Any, b: Any) -> None:
    if b.dtype != a.dtype:
        raise TypeError(
            f"flip_merge: flipped must have the dtype of heatmaps ({_describe(a)}), "
            f"got {_describe(b)}"
        )
    if tuple(b.shape) != tuple(a.shape):
        raise ValueError(
            f"flip_merge: flipped must have the shape of heatmaps ({_describe(a)}), "
            f"got {_describe(b)}"
        )


def _validate(
    heatmaps: Any, flipped: Any, flip_indices: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Host arguments -> (N, K, H, W) heatmaps and flipped, int32 (K,) index, whether 3-D."""
    if arrays.is_device_array(flipped):
        raise TypeError(
            "flip_merge: flipped must be on the host like heatmaps (a numpy array), got a GPU "
            f"array ({type(flipped).__name__}); pass both on the same device"
        )
    a, b = np.asarray(heatmaps), np.asarray(flipped)  # ndarrays keep their strides
    _check_maps("heatmaps", a)
    _check_maps("flipped", b)
    _check_pair(a, b)
    squeeze = a.ndim == 3
    a, b = _as4d(_aligned(a)), _as4d(_aligned(b))
    return a, b, flip_index_array(flip_indices, a.shape[1]), squeeze


def _aligned(a: np.ndarray) -> np.ndarray:
    """The kernels read whole, aligned elements; rare unaligned views are copied."""
    return a if a.flags.aligned else a.copy()  # ascontiguousarray would keep the address


def flip_index_array(flip_indices: Any, k: int) -> np.ndarray:
    """Validates ``flip_indices`` as a permutation of range(k); returns it as int32 (k,)."""
    index = np.asarray(flip_indices)
    msg = (
        f"flip_merge: flip_indices must be an integer array of shape ({k},) "
        f"(a permutation of range(K)), got {_describe(index)}"
    )
    if index.dtype.kind not in "iu":
        raise TypeError(msg)
    if index.shape != (k,):
        raise ValueError(msg)
    seen_at: dict[int, int] = {}
    for i, v in enumerate(index.tolist()):
        if not 0 <= v < k:
            raise ValueError(
                f"flip_merge: flip_indices must be a permutation of range({k}), "
                f"got {v} at position {i}"
            )
        if v in seen_at:
            raise ValueError(
                f"flip_merge: flip_indices must be a permutation of range({k}), "
                f"got {v} twice (positions {seen_at[v]} and {i})"
            )
        seen_at[v] = i
    return index.astype(np.int32)


# --- GPU ----------------------------------------------------------------------------------------


def _flip_merge_gpu(
    heatmaps: Any, flipped: Any, flip_indices: Any, shift: bool, stream: Any, out: Any
) -> Any:
    """Validates the CUDA arrays and queues the kernel on ``stream``; never waits for it."""
    call = GpuCall("flip_merge", stream)
    a = call.view(heatmaps, "heatmaps")
    if not arrays.is_device_array(flipped):
        raise TypeError(
            "flip_merge: flipped must be a GPU array like heatmaps, got "
            f"{type(flipped).__name__}; pass both on the same device"
        )
    b = call.view(flipped, "flipped")
    _check_maps("heatmaps", a)
    _check_maps("flipped", b)
    _check_pair(a, b)
    k = a.shape[-3]
    device = call.same_device([a, b], ["heatmaps", "flipped"])

    def check_index(index: arrays.DeviceView) -> None:
        if index.dtype != np.int32 or index.shape != (k,) or (k > 1 and index.strides[0] != 1):
            raise ValueError(
                f"flip_merge: flip_indices on the GPU must be a contiguous int32 array of shape "
                f"({k},), got {_describe(index)}; or pass a host sequence"
            )

    index_ptr = call.parameter(
        flip_indices, "flip_indices", device=device, check=check_index,
        host=lambda value: flip_index_array(value, k),
    )  # fmt: skip
    result, out_ptr = call.output(out, shape=tuple(a.shape), dtype=a.dtype, device=device)
    shape = tuple(a.shape) if len(a.shape) == 4 else (1, *a.shape)
    if shape[0] * shape[1] == 0:
        return result
    call.launch(
        "flip_merge", a.ptr, _strides4(a), b.ptr, _strides4(b), _DTYPE_CODES[np.dtype(a.dtype)],
        shape, index_ptr, bool(shift), out_ptr, device=device,
    )  # fmt: skip
    return result


def _strides4(view: Any) -> tuple[int, int, int, int]:
    strides = tuple(int(s) for s in view.strides)
    return strides if len(strides) == 4 else (0, *strides)
