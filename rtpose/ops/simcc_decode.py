"""SimCC decoding: keypoints from per-axis classification vectors.

SimCC (Li et al., "SimCC: a Simple Coordinate Classification Perspective for Human Pose
Estimation", ECCV 2022; used by RTMPose) predicts, for every keypoint, one vector over the
crop's x positions and one over its y positions, each ``split_ratio`` bins per input pixel.
Decoding follows MMPose ``SimCCLabel.decode`` / ``get_simcc_maximum``:

- ``px``, ``py``: the peak bins of ``simcc_x[n, k]`` and ``simcc_y[n, k]`` by the argmax rule of
  every rtpose decoder (largest non-NaN value; among equal values the smallest index);
- ``x = px / split_ratio``, ``y = py / split_ratio`` in crop-input pixels (float64), then mapped
  to the image by ``transforms[n]``: ``[X, Y] = T @ [x, y, 1]``;
- ``score = min(max_x, max_y)``, the smaller of the two peak values.

A vector with no non-NaN value has no peak: that keypoint's row is (NaN, NaN, NaN).

Unlike MMPose, a keypoint whose score is <= 0 keeps its location instead of being set to -1:
the score already says it is not detected, and -1 would be mapped through the transform into a
meaningless image point.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any

import numpy as np

from rtpose.ops import _device
from rtpose.ops._checks import host_out as _host_out
from rtpose.ops._native import NativeLoader

logger = logging.getLogger(__name__)

_native = NativeLoader("decode_simcc", logger)

_DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}  # rtpose::DType
_SHAPE = "(N, K, L) or (K, L)"


def decode_simcc(
    simcc_x: Any,
    simcc_y: Any,
    transforms: Any = None,
    *,
    split_ratio: float = 2.0,
    stream: Any = None,
    out: Any = None,
) -> Any:
    """Decodes SimCC vectors into (x, y, score) per keypoint.

    Runs on the GPU when ``simcc_x`` is a CUDA array (cupy, torch, DLPack, ...), otherwise on
    the CPU (C++ kernel, or the numpy reference with one warning when rtpose._C is missing).

    Args:
        simcc_x: (N, K, Wx) or (K, Wx) float32/float16 x-axis logits; any strides, Wx >= 1.
        simcc_y: (N, K, Wy) or (K, Wy), the dtype and N, K of ``simcc_x``; Wy >= 1.
        transforms: None (crop-input coordinates), or (N, 2, 3) / (2, 3) float maps from
            crop-input pixels to image pixels (``box_to_affine``'s inverse crop map). On the GPU
            a float64 (N, 2, 3) C-contiguous CUDA array is used in place; a host array is
            uploaded on ``stream``.
        split_ratio: SimCC bins per input pixel (RTMPose: 2.0); positive and finite.
        stream: GPU only: the CUDA stream to queue the work on (None: legacy default stream).
        out: optional C-contiguous float32 (N, K, 3) (or (K, 3)) output, written in place.

    Returns:
        (N, K, 3) float32 (x, y, score), or (K, 3) for 2-D inputs: a numpy array, or on the GPU
        a ``DeviceArray`` queued on ``stream``; ``out`` itself when given.
    """
    if _device.is_device_array(simcc_x):
        return _decode_gpu(simcc_x, simcc_y, transforms, split_ratio, stream, out)
    if stream is not None:
        raise ValueError(
            "decode_simcc: stream applies to GPU arrays only, got numpy simcc_x with a stream"
        )
    x, y, maps, ratio, squeeze = _validate(simcc_x, simcc_y, transforms, split_ratio)
    n, k = x.shape[:2]
    if out is not None:
        _host_out(out, op="decode_simcc", shape=(k, 3) if squeeze else (n, k, 3), dtype=np.float32)
    native = _native.get()
    if native is not None:
        out3 = None if out is None else (out if out.ndim == 3 else out[None])
        result = native.decode_simcc(x, y, maps, ratio, out3)
        return out if out is not None else (result[0] if squeeze else result)
    _native.warn_fallback()
    result = _decode_numpy(x, y, maps, ratio)
    if squeeze:
        result = result[0]
    if out is None:
        return result
    out[...] = result
    return out


def decode_simcc_reference(
    simcc_x: np.ndarray,
    simcc_y: np.ndarray,
    transforms: np.ndarray | None = None,
    *,
    split_ratio: float = 2.0,
) -> np.ndarray:
    """Numpy reference of :func:`decode_simcc` on the CPU: the test oracle and the fallback.

    Same arguments and result as :func:`decode_simcc`, without ``stream`` and ``out``.
    """
    x, y, maps, ratio, squeeze = _validate(simcc_x, simcc_y, transforms, split_ratio)
    result = _decode_numpy(x, y, maps, ratio)
    return result[0] if squeeze else result


def _peaks(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, K, L) vectors -> peak index (N, K) int64, peak value (N, K) float32, has-peak mask."""
    v = v.astype(np.float32, copy=False)  # float16 -> float32 is exact
    nan = np.isnan(v)
    filled = np.where(nan, -np.inf, v)
    best = filled.max(axis=-1, keepdims=True)
    # First index holding the best non-NaN value (a -inf peak must not lose to a NaN at -inf).
    index = np.argmax((filled == best) & ~nan, axis=-1)
    value = np.take_along_axis(v, index[..., None], axis=-1)[..., 0]
    return index, value, ~nan.all(axis=-1)


def _decode_numpy(
    simcc_x: np.ndarray, simcc_y: np.ndarray, maps: np.ndarray | None, split_ratio: float
) -> np.ndarray:
    """Validated (N, K, Wx), (N, K, Wy), (N, 2, 3) float64 or None -> (N, K, 3) float32."""
    px, vx, has_x = _peaks(simcc_x)
    py, vy, has_y = _peaks(simcc_y)
    x = px.astype(np.float64) / split_ratio  # (N, K)
    y = py.astype(np.float64) / split_ratio
    if maps is not None:
        t = maps[:, None]  # (N, 1, 2, 3) against (N, K)
        # Same evaluation order as simcc_keypoint() in csrc/include/rtpose/simcc_decode_math.h.
        x, y = (
            t[..., 0, 0] * x + t[..., 0, 1] * y + t[..., 0, 2],
            t[..., 1, 0] * x + t[..., 1, 1] * y + t[..., 1, 2],
        )
    result = np.empty((*simcc_x.shape[:2], 3), dtype=np.float32)
    result[..., 0] = x
    result[..., 1] = y
    result[..., 2] = np.where(vy < vx, vy, vx)
    result[~(has_x & has_y)] = np.nan
    return result


def _describe(a: Any) -> str:
    return f"{a.dtype} {tuple(a.shape)}"


def _check_vectors(name: str, a: Any) -> None:
    """dtype and rank of a SimCC argument (numpy array or DeviceView)."""
    msg = f"decode_simcc: {name} must be float32 or float16 of shape {_SHAPE}, got {_describe(a)}"
    if np.dtype(a.dtype) not in _DTYPE_CODES:
        raise TypeError(msg)
    if len(a.shape) not in (2, 3) or a.shape[-1] < 1:
        raise ValueError(msg)


def _check_pair(x: Any, y: Any) -> None:
    if y.dtype != x.dtype:
        raise TypeError(
            f"decode_simcc: simcc_y must have the dtype of simcc_x ({_describe(x)}), "
            f"got {_describe(y)}"
        )
    if len(y.shape) != len(x.shape) or tuple(y.shape[:-1]) != tuple(x.shape[:-1]):
        raise ValueError(
            f"decode_simcc: simcc_y must be (N, K, Wy) with the N, K of simcc_x "
            f"({_describe(x)}), got {_describe(y)}"
        )


def _split_ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"decode_simcc: split_ratio must be a real number, got {value!r}")
    ratio = float(value)
    if not (ratio > 0 and math.isfinite(ratio)):
        raise ValueError(f"decode_simcc: split_ratio must be positive and finite, got {ratio}")
    return ratio


def _transforms(transforms: Any, n: int) -> np.ndarray | None:
    """None, or host (N, 2, 3) / (2, 3) maps -> (N, 2, 3) float64 C-contiguous."""
    if transforms is None:
        return None
    maps = np.asarray(transforms)
    msg = (
        f"decode_simcc: transforms must be None or a float array of shape ({n}, 2, 3) or "
        f"(2, 3), got {_describe(maps)}"
    )
    if maps.dtype.kind not in "iuf":
        raise TypeError(msg)
    if maps.shape == (2, 3):
        maps = np.broadcast_to(maps, (n, 2, 3))
    if maps.shape != (n, 2, 3):
        raise ValueError(msg)
    return np.ascontiguousarray(maps, dtype=np.float64)


def _validate(
    simcc_x: Any, simcc_y: Any, transforms: Any, split_ratio: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float, bool]:
    """Host arguments -> (N, K, Wx), (N, K, Wy), maps, split_ratio, whether inputs were 2-D.

    The checks of csrc/bindings/simcc_decode.cpp, so the native and numpy paths reject the same
    calls with the same messages.
    """
    if _device.is_device_array(simcc_y):
        raise TypeError(
            "decode_simcc: simcc_y must be on the host like simcc_x (a numpy array), got a GPU "
            f"array ({type(simcc_y).__name__}); pass both on the same device"
        )
    x, y = np.asarray(simcc_x), np.asarray(simcc_y)  # ndarrays keep their strides
    _check_vectors("simcc_x", x)
    _check_vectors("simcc_y", y)
    _check_pair(x, y)
    ratio = _split_ratio(split_ratio)
    squeeze = x.ndim == 2
    if squeeze:
        x, y = x[None], y[None]
    # The kernels read whole, aligned elements; rare unaligned views are copied.
    x = x if x.flags.aligned else x.copy()  # ascontiguousarray would keep the address
    y = y if y.flags.aligned else y.copy()
    return x, y, _transforms(transforms, x.shape[0]), ratio, squeeze


def _decode_gpu(
    simcc_x: Any, simcc_y: Any, transforms: Any, split_ratio: Any, stream: Any, out: Any
) -> Any:
    """Validates the CUDA arrays and queues the kernel on ``stream``; never waits for it."""
    op = "decode_simcc"
    handle = _device.stream_handle(stream)
    x = _device.device_view(simcc_x, op=op, name="simcc_x", stream=handle)
    if not _device.is_device_array(simcc_y):
        raise TypeError(
            "decode_simcc: simcc_y must be a GPU array like simcc_x, got "
            f"{type(simcc_y).__name__}; pass both on the same device"
        )
    y = _device.device_view(simcc_y, op=op, name="simcc_y", stream=handle)
    _check_vectors("simcc_x", x)
    _check_vectors("simcc_y", y)
    _check_pair(x, y)
    ratio = _split_ratio(split_ratio)
    squeeze = len(x.shape) == 2
    n, k = (1, x.shape[0]) if squeeze else x.shape[:2]
    views, names = [x, y], ["simcc_x", "simcc_y"]
    host_maps = None
    if _device.is_device_array(transforms):
        maps = _device.device_view(transforms, op=op, name="transforms", stream=handle)
        if (
            maps.dtype != np.float64
            or tuple(maps.shape) != (n, 2, 3)
            or (n > 1 and maps.strides[0] != 6)
            or tuple(maps.strides[1:]) != (3, 1)
        ):
            raise ValueError(
                f"decode_simcc: transforms on the GPU must be a C-contiguous float64 array of "
                f"shape ({n}, 2, 3), got {_describe(maps)}; or pass a host array (a (2, 3) map "
                "is broadcast)"
            )
        views.append(maps)
        names.append("transforms")
    else:
        host_maps = _transforms(transforms, n)
    device = _device.same_device(views, names, op=op)
    out_shape = (k, 3) if squeeze else (n, k, 3)
    if out is None:
        result = _device.empty(out_shape, np.float32, device=device, stream=handle)
        out_ptr = result.ptr
    else:
        result = out
        out_view = _device.check_out(
            out, op=op, name="out", shape=out_shape, dtype=np.float32, device=device,
            stream=handle,
        )  # fmt: skip
        out_ptr = out_view.ptr
    if n * k == 0:
        return result
    # Host maps are uploaded on `stream`; the DeviceArray's memory is freed in stream order,
    # so dropping it after the launch is safe.
    uploaded = None
    if host_maps is not None:
        uploaded = _device.upload(host_maps, device=device, stream=handle)
    if uploaded is not None:
        maps_ptr = uploaded.ptr
    elif len(views) == 3:
        maps_ptr = views[2].ptr
    else:
        maps_ptr = 0  # identity
    _device.cuda_ops(op).decode_simcc(
        x.ptr,
        _shape3(x.shape),
        _strides3(x.strides),
        y.ptr,
        _shape3(y.shape),
        _strides3(y.strides),
        _DTYPE_CODES[np.dtype(x.dtype)],
        ratio,
        maps_ptr,
        out_ptr,
        device,
        handle,
    )
    return result


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    s = tuple(int(v) for v in shape)
    return s if len(s) == 3 else (1, *s)


def _strides3(strides: tuple[int, ...]) -> tuple[int, int, int]:
    s = tuple(int(v) for v in strides)
    return s if len(s) == 3 else (0, *s)
