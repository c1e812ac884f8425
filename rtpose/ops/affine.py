"""Batched affine warp: crop + resize + normalise + HWC→CHW in one pass, on the CPU or the GPU.

``affine_warp`` turns BGR uint8 frames into N normalised float32 or float16 crops. Frames in
host memory (numpy) run the C++ kernel of ``rtpose._C`` (or, without the extension, the numpy
reference ``affine_warp_reference``, which is also the test oracle); frames in GPU memory (cupy,
torch, DALI: anything with ``__cuda_array_interface__`` or DLPack) run the CUDA kernel on the
given stream. The three give the same results (CPU vs CUDA bit for bit: they share the per-pixel
code, csrc/include/rtpose/affine_warp_math.h).

Sampling is exact bilinear with a constant border, the same as ``cv2.warpAffine(
frame.astype(np.float32), M, ..., flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)``.
Matrices are *forward* maps in the cv2 convention: ``dst = M @ [x_src, y_src, 1]`` with pixel
centres at integer coordinates. A letterbox is the one-crop case (rtpose.ops.letterbox).

Several frames (e.g. one per video stream) can feed one call: pass a list of frames (sizes may
differ) or an (F, H, W, 3) array, and ``frame_index`` (N,) saying which frame each crop reads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from rtpose._native import NativeLoader
from rtpose.cuda import arrays
from rtpose.ops._checks import describe as _describe
from rtpose.ops._checks import host_out as _host_out
from rtpose.ops._checks import maps as _maps
from rtpose.ops._checks import pair as _pair
from rtpose.ops._dispatch import GpuCall, host_call, host_result
from rtpose.ops.letterbox import Letterbox, letterbox_matrix

__all__ = [
    "Letterbox",
    "affine_warp",
    "affine_warp_reference",
    "letterbox_matrix",
    "native_available",
]

ChannelOrder = Literal["rgb", "bgr"]
OutDType = Literal["float32", "float16"]

# Same limits as csrc/include/rtpose/affine_warp.h: int32 pixel indices; frames per GPU launch.
_MAX_IMAGE_SIDE = 1 << 30
_MAX_FRAMES_PER_GPU_CALL = 64

logger = logging.getLogger(__name__)

_native = NativeLoader("affine_warp", logger)


def native_available() -> bool:
    """True when the C++ extension ``rtpose._C`` imports (it is then used by ``affine_warp``)."""
    return _native.get() is not None


class _Params(NamedTuple):
    out_hw: tuple[int, int]
    mean: tuple[float, float, float]  # output channel order
    std: tuple[float, float, float]
    rgb: bool
    border_value: float
    dtype: np.dtype  # float32 or float16


def affine_warp(
    frames: Any,
    matrices: Any,
    out_size: tuple[int, int],
    *,
    frame_index: Any = None,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    channel_order: ChannelOrder = "rgb",
    border_value: float = 0.0,
    dtype: OutDType = "float32",
    stream: Any = None,
    out: Any = None,
) -> Any:
    """Warps N crops out of BGR frames into a normalised (N, 3, out_h, out_w) batch.

    Args:
        frames: one (H, W, 3) uint8 BGR frame as OpenCV decodes it, a sequence of them (sizes
            may differ), or an (F, H, W, 3) array; any strides (views are fine). numpy arrays run
            on the CPU; GPU arrays (cupy, torch, DALI...) run the CUDA kernel.
        matrices: (N, 2, 3) or (2, 3) forward maps, frame pixel -> crop pixel (cv2.warpAffine).
            On the GPU they may also be a C-contiguous GPU array (float32/float64), used in
            place; a singular map there gives a crop filled with the border value (the GPU
            cannot raise without waiting), while host maps are checked and a singular one raises.
        out_size: (out_h, out_w) of every crop.
        frame_index: (N,) ints, the frame each crop reads; required with several frames.
        mean: per output channel, in pixel units (0..255); the crop holds (sample - mean) / std.
        std: per output channel, in pixel units, non-zero.
        channel_order: "rgb" (frame channels reversed) or "bgr" (as decoded).
        border_value: raw pixel value of every bilinear neighbour outside the frame (YOLO: 114).
        dtype: "float32" or "float16" (rounded to nearest even) output.
        stream: GPU only: the CUDA stream to queue the work on (see rtpose.cuda.arrays);
            None = the legacy default stream. Nothing waits for the work to finish.
        out: optional C-contiguous (N, 3, out_h, out_w) buffer of ``dtype`` to write in place
            (numpy for CPU frames, a GPU array for GPU frames).

    Returns:
        (N, 3, out_h, out_w) C-contiguous array of ``dtype``: numpy on the CPU, a
        :class:`rtpose.ops.DeviceArray` (or ``out``) on the GPU.
    """
    params = _params(out_size, mean, std, channel_order, border_value, dtype)
    if _is_gpu_call(frames):
        return _warp_gpu(frames, matrices, frame_index, params, stream, out)
    if stream is not None:
        raise ValueError("affine_warp: stream is only for GPU frames; these frames are host arrays")
    frame_list = _host_frames(frames)
    maps = _maps(matrices, None, op="affine_warp", name="matrices")
    index = _frame_index(frame_index, len(maps), len(frame_list))
    n = maps.shape[0]
    if out is not None:
        _host_out(out, op="affine_warp", shape=(n, 3, *params.out_hw), dtype=params.dtype)
    _invert_affine(maps)  # raises for a singular map
    out_h, out_w = params.out_hw
    result = host_call(
        _native,
        lambda native: native.affine_warp(
            frame_list,
            maps,
            index,
            out_h=out_h,
            out_w=out_w,
            mean=params.mean,
            std=params.std,
            rgb=params.rgb,
            border_value=params.border_value,
            dtype=params.dtype.name,
            out=out,
        ),
        lambda: _affine_warp_numpy(frame_list, maps, index, params),
    )
    return host_result(result, out)


def affine_warp_reference(
    frames: Any,
    matrices: Any,
    out_size: tuple[int, int],
    *,
    frame_index: Any = None,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    channel_order: ChannelOrder = "rgb",
    border_value: float = 0.0,
    dtype: OutDType = "float32",
) -> np.ndarray:
    """The numpy reference of :func:`affine_warp` (float64 math): the fallback without rtpose._C
    and the test oracle of the C++ and CUDA kernels.

    Same arguments and result as :func:`affine_warp` for host frames, without ``stream`` and
    ``out``.
    """
    params = _params(out_size, mean, std, channel_order, border_value, dtype)
    frame_list = _host_frames(frames)
    maps = _maps(matrices, None, op="affine_warp", name="matrices")
    index = _frame_index(frame_index, len(maps), len(frame_list))
    return _affine_warp_numpy(frame_list, maps, index, params)


# --- numpy reference ----------------------------------------------------------------------------


def _affine_warp_numpy(
    frames: list[np.ndarray], maps: np.ndarray, index: np.ndarray | None, params: _Params
) -> np.ndarray:
    """The warp in float64 on validated arguments; (N, 3, out_h, out_w) of params.dtype."""
    out_h, out_w = params.out_hw
    inverse = _invert_affine(maps)  # (N, 2, 3)
    mean = np.asarray(params.mean, dtype=np.float64)
    std = np.asarray(params.std, dtype=np.float64)
    ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float64)  # (h, w) each
    result = np.empty((len(inverse), 3, out_h, out_w), dtype=np.float32)
    padded_frames: dict[int, np.ndarray] = {}
    for i, m in enumerate(inverse):  # one crop at a time bounds the temporaries' memory
        f = 0 if index is None else int(index[i])
        if f not in padded_frames:
            padded_frames[f] = _pad_frame(frames[f], params)
        padded = padded_frames[f]
        height, width = frames[f].shape[:2]
        sx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]  # (h, w) source coordinates
        sy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        x0 = np.floor(sx)
        y0 = np.floor(sy)
        fx = (sx - x0)[..., None]  # (h, w, 1)
        fy = (sy - y0)[..., None]
        # Clipping to [-1, W] keeps far-away points on the border ring (+1: ring offset).
        ix0 = np.clip(x0, -1, width).astype(np.intp) + 1
        iy0 = np.clip(y0, -1, height).astype(np.intp) + 1
        ix1 = np.clip(x0 + 1, -1, width).astype(np.intp) + 1
        iy1 = np.clip(y0 + 1, -1, height).astype(np.intp) + 1
        top = (1 - fx) * padded[iy0, ix0] + fx * padded[iy0, ix1]  # (h, w, 3)
        bottom = (1 - fx) * padded[iy1, ix0] + fx * padded[iy1, ix1]
        sample = (1 - fy) * top + fy * bottom
        result[i] = ((sample - mean) / std).transpose(2, 0, 1)
    return result if params.dtype == np.float32 else result.astype(params.dtype)


def _pad_frame(frame: np.ndarray, params: _Params) -> np.ndarray:
    """The frame in float64 with one ring of border_value around it, in output channel order:
    every out-of-frame neighbour index is clipped onto the ring, which is exactly cv2's
    BORDER_CONSTANT per-neighbour rule."""
    height, width = frame.shape[:2]
    padded = np.full((height + 2, width + 2, 3), params.border_value, dtype=np.float64)
    padded[1:-1, 1:-1] = frame
    return padded[..., ::-1] if params.rgb else padded


def _invert_affine(matrices: np.ndarray) -> np.ndarray:
    """(N, 2, 3) forward maps -> inverse maps, the cv2.invertAffineTransform formula in float64."""
    a, b, tx = matrices[:, 0, 0], matrices[:, 0, 1], matrices[:, 0, 2]
    c, d, ty = matrices[:, 1, 0], matrices[:, 1, 1], matrices[:, 1, 2]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        det = a * d - b * c
        r = 1.0 / det
        inv = np.empty_like(matrices)
        inv[:, 0, 0] = d * r
        inv[:, 0, 1] = -b * r
        inv[:, 1, 0] = -c * r
        inv[:, 1, 1] = a * r
        inv[:, 0, 2] = -inv[:, 0, 0] * tx - inv[:, 0, 1] * ty
        inv[:, 1, 2] = -inv[:, 1, 0] * tx - inv[:, 1, 1] * ty
    bad = (det == 0) | ~np.isfinite(det) | ~np.isfinite(inv).all(axis=(1, 2))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"affine_warp: matrices[{i}] is not invertible (singular, or non-finite entries); "
            "each must be a forward map dst = M @ [x, y, 1]"
        )
    return inv


# --- validation (csrc/bindings/affine_warp.cpp repeats it: a direct rtpose._C call is safe) ---


def _params(
    out_size: object,
    mean: Sequence[float],
    std: Sequence[float],
    channel_order: str,
    border_value: float,
    dtype: str,
) -> _Params:
    out_h, out_w = _pair("affine_warp: out_size", out_size)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"affine_warp: out_size must be (out_h, out_w) >= 1, got {out_size!r}")
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(
            f"affine_warp: channel_order must be 'rgb' or 'bgr', got {channel_order!r}"
        )
    if dtype not in ("float32", "float16"):
        raise ValueError(f"affine_warp: dtype must be 'float32' or 'float16', got {dtype!r}")
    try:
        border = float(border_value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"affine_warp: border_value must be a number, got {border_value!r}"
        ) from exc
    return _Params(
        out_hw=(out_h, out_w),
        mean=_channel_values("mean", mean, nonzero=False),
        std=_channel_values("std", std, nonzero=True),
        rgb=channel_order == "rgb",
        border_value=border,
        dtype=np.dtype(dtype),
    )


def _check_frame(frame: np.ndarray, name: str) -> None:
    msg = f"affine_warp: {name} must be uint8 of shape (H, W, 3), got "
    if frame.dtype != np.uint8:
        raise TypeError(msg + _describe(frame))
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(msg + _describe(frame))
    if max(frame.shape[:2]) > _MAX_IMAGE_SIDE:
        raise ValueError(
            f"affine_warp: frame sides must be at most {_MAX_IMAGE_SIDE}, got {_describe(frame)}"
        )


def _host_frames(frames: Any) -> list[np.ndarray]:
    """A list of validated (H, W, 3) uint8 host frames (views, no copies)."""
    if isinstance(frames, list | tuple):
        if not frames:
            raise ValueError("affine_warp: frames must hold at least one frame, got an empty list")
        frame_list = [np.asarray(f) for f in frames]
        names = [f"frames[{i}]" for i in range(len(frame_list))]
    else:
        arr = np.asarray(frames)  # no copy for an ndarray: its strides are kept
        if arr.ndim == 4:
            if arr.shape[0] < 1:
                raise ValueError(
                    f"affine_warp: frames must hold at least one frame, got {_describe(arr)}"
                )
            frame_list = list(arr)
            names = [f"frames[{i}]" for i in range(len(frame_list))]
        else:
            frame_list, names = [arr], ["frame"]
    for frame, name in zip(frame_list, names):
        _check_frame(frame, name)
    return frame_list


def _frame_index(frame_index: Any, n: int, num_frames: int) -> np.ndarray | None:
    """(n,) int32 frame of each crop, checked; None for a single frame without an index."""
    if frame_index is None:
        if num_frames != 1:
            raise ValueError(
                f"affine_warp: frame_index is required with {num_frames} frames (which frame "
                "each crop reads)"
            )
        return None
    index = np.asarray(frame_index)
    msg = f"affine_warp: frame_index must be an integer array of shape ({n},), got "
    if index.dtype.kind not in "iu":
        raise TypeError(msg + _describe(index))
    if index.shape != (n,):
        raise ValueError(msg + _describe(index))
    bad = np.flatnonzero((index < 0) | (index >= num_frames))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"affine_warp: frame_index[{i}] = {int(index[i])} is not a frame index in "
            f"[0, {num_frames})"
        )
    return index.astype(np.int32)


def _channel_values(
    name: str, values: Sequence[float], *, nonzero: bool
) -> tuple[float, float, float]:
    try:
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"affine_warp: {name} must be 3 numbers, got {values!r}") from exc
    if flat.size != 3:
        raise ValueError(
            f"affine_warp: {name} must have 3 values (output channel order), got {flat.size}"
        )
    if not np.isfinite(flat).all() or (nonzero and (flat == 0).any()):
        what = "finite and non-zero" if nonzero else "finite"
        raise ValueError(
            f"affine_warp: {name} must be {what} in every channel, got {tuple(flat.tolist())}"
        )
    return (float(flat[0]), float(flat[1]), float(flat[2]))


# --- GPU ----------------------------------------------------------------------------------------


def _is_gpu_call(frames: Any) -> bool:
    if isinstance(frames, list | tuple):
        flags = {arrays.is_device_array(f) for f in frames}
        if len(flags) > 1:
            raise TypeError("affine_warp: frames mixes host and GPU arrays; pass all of one kind")
        return flags == {True}
    return arrays.is_device_array(frames)


def _gpu_frames(call: GpuCall, frames: Any) -> list[tuple[arrays.DeviceView, str]]:
    """Views of every GPU frame: (H, W, 3) uint8, byte strides; an (F, H, W, 3) array splits."""
    items = list(frames) if isinstance(frames, list | tuple) else [frames]
    views: list[tuple[arrays.DeviceView, str]] = []
    for i, item in enumerate(items):
        name = f"frames[{i}]" if isinstance(frames, list | tuple) else "frames"
        view = call.view(item, name)
        if view.dtype != np.uint8:
            raise TypeError(
                f"affine_warp: {name} must be uint8 of shape (H, W, 3) or (F, H, W, 3), got "
                f"{view.dtype} {view.shape}"
            )
        if len(view.shape) == 4:
            f_stride = view.strides[0]
            for f in range(view.shape[0]):
                sub = arrays.DeviceView(
                    view.ptr + f * f_stride,
                    view.shape[1:],
                    view.strides[1:],
                    view.dtype,
                    view.device,
                    view.owner,
                )
                views.append((sub, f"{name}[{f}]"))
        else:
            views.append((view, name))
    for view, name in views:
        shape = view.shape
        if len(shape) != 3 or shape[2] != 3 or shape[0] < 1 or shape[1] < 1:
            raise ValueError(
                f"affine_warp: {name} must be uint8 of shape (H, W, 3), got uint8 {shape}"
            )
    if not views:
        raise ValueError("affine_warp: frames must hold at least one frame")
    if len(views) > _MAX_FRAMES_PER_GPU_CALL:
        raise ValueError(
            f"affine_warp: at most {_MAX_FRAMES_PER_GPU_CALL} frames per GPU call, got "
            f"{len(views)}; split the batch"
        )
    return views


def _warp_gpu(
    frames: Any, matrices: Any, frame_index: Any, params: _Params, stream: Any, out: Any
) -> Any:
    call = GpuCall("affine_warp", stream)
    frame_views = _gpu_frames(call, frames)
    device = call.same_device([v for v, _ in frame_views], [n for _, n in frame_views])
    if arrays.is_device_array(matrices):
        mview = call.view(matrices, "matrices")
        if (
            mview.dtype not in (np.float32, np.float64)
            or len(mview.shape) != 3
            or (mview.shape[1:] != (2, 3))
        ):
            raise ValueError(
                "affine_warp: matrices must be float32 or float64 of shape (N, 2, 3), got "
                f"{mview.dtype} {mview.shape}"
            )
        if not mview.c_contiguous:
            raise ValueError("affine_warp: GPU matrices must be C-contiguous")
        call.same_device([frame_views[0][0], mview], ["frames", "matrices"])
        n, forward_ptr, forward_f64 = mview.shape[0], mview.ptr, mview.dtype == np.float64
    else:
        host = _maps(matrices, None, op="affine_warp", name="matrices")
        _invert_affine(host)  # raises for a singular map, as on the CPU
        n, forward_ptr, forward_f64 = host.shape[0], call.upload(host, device=device), True

    def check_index(iview: arrays.DeviceView) -> None:
        if iview.dtype != np.int32 or iview.shape != (n,) or not iview.c_contiguous:
            raise ValueError(
                f"affine_warp: a GPU frame_index must be C-contiguous int32 of shape ({n},), got "
                f"{iview.dtype} {iview.shape} (its values are not checked on the GPU)"
            )

    def host_index(value: Any) -> np.ndarray:
        index = _frame_index(value, n, len(frame_views))
        assert index is not None  # value is not None
        return index

    index_ptr = 0
    if frame_index is None:
        if len(frame_views) != 1:
            raise ValueError(f"affine_warp: frame_index is required with {len(frame_views)} frames")
    else:
        index_ptr = call.parameter(
            frame_index, "frame_index", device=device, check=check_index, host=host_index
        )
    shape = (n, 3, *params.out_hw)
    result, out_ptr = call.output(out, shape=shape, dtype=params.dtype, device=device)
    out_h, out_w = params.out_hw
    call.launch(
        "affine_warp",
        # uint8: element strides are byte strides
        [(v.ptr, v.shape[0], v.shape[1], *v.strides) for v, _ in frame_views],
        index_ptr,
        forward_ptr,
        forward_f64,
        n,
        out_h,
        out_w,
        list(params.mean),
        list(params.std),
        params.rgb,
        params.border_value,
        0 if params.dtype == np.float32 else 1,
        out_ptr,
        device=device,
    )
    return result
