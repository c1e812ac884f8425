"""Person box -> crop affine map of the top-down pipeline, and its inverse.

The geometry of MMPose's top-down pose estimators (``bbox_xyxy2cs`` with padding 1.25,
``_fix_aspect_ratio``, ``get_warp_matrix`` without rotation): the box's centre and size; the size
enlarged by ``padding``; then widened or heightened to the network input's aspect ratio (never
cropped); the region is mapped onto the (input_h, input_w) network input.

``forward`` maps frame pixels to crop pixels (feed it to :func:`rtpose.ops.affine_warp`);
``inverse`` maps crop-input pixel coordinates back to the frame (feed it to the decoders as
``transforms``); it equals MMPose's ``keypoints / input_size * scale + center - 0.5 * scale``.

Boxes smaller than one pixel (after padding) count as one pixel, so every box gives an invertible
map. Non-finite boxes are refused on the CPU; on the GPU they give NaN maps (the GPU cannot raise
without waiting), which the warp turns into border-filled crops.
"""

from __future__ import annotations

import logging
import math
from typing import Any, NamedTuple

import numpy as np

from rtpose.ops import _device
from rtpose.ops._checks import describe as _describe
from rtpose.ops._checks import pair as _pair
from rtpose.ops._native import NativeLoader

__all__ = ["BoxAffine", "box_to_affine", "box_to_affine_reference"]

logger = logging.getLogger(__name__)

_native = NativeLoader("box_to_affine", logger)

DEFAULT_PADDING = 1.25


class BoxAffine(NamedTuple):
    """Crop maps of N boxes, float64 (N, 2, 3) each (numpy, or GPU arrays for GPU boxes).

    Attributes:
        forward: frame pixel -> crop pixel (cv2.warpAffine convention).
        inverse: crop-input pixel -> frame pixel.
    """

    forward: Any
    inverse: Any


def box_to_affine(
    boxes: Any,
    input_size: tuple[int, int],
    *,
    padding: float = DEFAULT_PADDING,
    stream: Any = None,
) -> BoxAffine:
    """Crop maps for person boxes.

    Args:
        boxes: (N, 4) or (4,) x1, y1, x2, y2 in frame pixels, float or int (numpy), or a GPU
            array of float32/float64 (rows may be strided, e.g. columns 0:4 of a detection table).
        input_size: (input_h, input_w) of the pose network.
        padding: enlargement of the box size (MMPose: 1.25), > 0.
        stream: GPU only: the CUDA stream (see rtpose.ops._device).

    Returns:
        :class:`BoxAffine` (forward, inverse), float64 (N, 2, 3) each ((2, 3) for one box).
    """
    out_h, out_w = _input_size(input_size)
    pad = _padding(padding)
    if _device.is_device_array(boxes):
        return _box_to_affine_gpu(boxes, out_h, out_w, pad, stream)
    if stream is not None:
        raise ValueError("box_to_affine: stream is only for GPU boxes; these boxes are host arrays")
    arr, single = _host_boxes(boxes)
    native = _native.get()
    if native is not None:
        forward, inverse = native.box_to_affine(arr, out_h, out_w, pad)
    else:
        _native.warn_fallback()
        forward, inverse = _box_to_affine_numpy(arr, out_h, out_w, pad)
    return BoxAffine(forward[0], inverse[0]) if single else BoxAffine(forward, inverse)


def box_to_affine_reference(
    boxes: Any, input_size: tuple[int, int], *, padding: float = DEFAULT_PADDING
) -> BoxAffine:
    """Numpy reference of :func:`box_to_affine` (host boxes only); same bits as the C++."""
    out_h, out_w = _input_size(input_size)
    arr, single = _host_boxes(boxes)
    forward, inverse = _box_to_affine_numpy(arr, out_h, out_w, _padding(padding))
    return BoxAffine(forward[0], inverse[0]) if single else BoxAffine(forward, inverse)


def _box_to_affine_numpy(
    boxes: np.ndarray, out_h: int, out_w: int, padding: float
) -> tuple[np.ndarray, np.ndarray]:
    """The formula of csrc/include/rtpose/box_affine.h, operation for operation, in float64."""
    x1, y1, x2, y2 = boxes.T
    cx = (x1 + x2) * 0.5
    cy = (y1 + y2) * 0.5
    w = (x2 - x1) * padding
    h = (y2 - y1) * padding
    w = np.where(w < 1.0, 1.0, w)  # sizes below one pixel count as one pixel
    h = np.where(h < 1.0, 1.0, h)
    aspect = out_w / out_h
    wider = w > h * aspect
    h = np.where(wider, w / aspect, h)
    w = np.where(wider, w, h * aspect)
    sx = out_w / w
    sy = out_h / h
    n = len(boxes)
    forward = np.zeros((n, 2, 3), dtype=np.float64)
    inverse = np.zeros((n, 2, 3), dtype=np.float64)
    forward[:, 0, 0] = sx
    forward[:, 0, 2] = out_w * 0.5 - sx * cx
    forward[:, 1, 1] = sy
    forward[:, 1, 2] = out_h * 0.5 - sy * cy
    inverse[:, 0, 0] = w / out_w
    inverse[:, 0, 2] = cx - w * 0.5
    inverse[:, 1, 1] = h / out_h
    inverse[:, 1, 2] = cy - h * 0.5
    return forward, inverse


def _input_size(input_size: object) -> tuple[int, int]:
    out_h, out_w = _pair("box_to_affine: input_size", input_size)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"box_to_affine: input_size must be (height, width) >= 1, got {input_size!r}"
        )
    return out_h, out_w


def _padding(padding: object) -> float:
    try:
        value = float(padding)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"box_to_affine: padding must be a number, got {padding!r}") from exc
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"box_to_affine: padding must be positive and finite, got {padding!r}")
    return value


def _host_boxes(boxes: Any) -> tuple[np.ndarray, bool]:
    arr = np.asarray(boxes)
    msg = "box_to_affine: boxes must be a float array of shape (N, 4) or (4,), got "
    if arr.dtype.kind not in "iuf":
        raise TypeError(msg + _describe(arr))
    single = arr.shape == (4,)
    if single:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(msg + _describe(arr))
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"box_to_affine: boxes[{i}] is not finite: {arr[i].tolist()}")
    return arr, single


def _box_to_affine_gpu(
    boxes: Any, out_h: int, out_w: int, padding: float, stream: Any
) -> BoxAffine:
    cuda = _device.cuda_ops("box_to_affine")
    handle = _device.stream_handle(stream)
    view = _device.device_view(boxes, op="box_to_affine", name="boxes", stream=handle)
    if view.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"box_to_affine: GPU boxes must be float32 or float64 (N, 4), got {view.dtype} "
            f"{view.shape}"
        )
    if len(view.shape) != 2 or view.shape[1] != 4 or (view.shape[0] > 0 and view.strides[1] != 1):
        raise ValueError(
            "box_to_affine: GPU boxes must have shape (N, 4) with contiguous rows, got "
            f"{view.dtype} {view.shape} strides {view.strides} (elements)"
        )
    n = view.shape[0]
    forward = _device.empty((n, 2, 3), np.float64, device=view.device, stream=handle)
    inverse = _device.empty((n, 2, 3), np.float64, device=view.device, stream=handle)
    cuda.box_to_affine(
        view.ptr,
        view.dtype == np.float64,
        view.strides[0] if n > 0 else 4,
        n,
        out_h,
        out_w,
        padding,
        forward.ptr,
        inverse.ptr,
        view.device,
        handle,
    )
    return BoxAffine(forward, inverse)
