"""Heatmap decoding: (N, K, H, W) heatmaps -> (N, K, 3) keypoints (x, y, score) in the image.

``decode_heatmaps`` runs the C++ kernel of ``rtpose._C`` on numpy input (the numpy reference
``decode_heatmaps_reference``, also the test oracle, when the extension is missing) and the CUDA
kernel on GPU arrays. All three compute the same thing, per heatmap (n, k), with the values read
as float32 (float16 converted exactly):

1. **Peak**: the largest non-NaN value; ties go to the smallest flat index ``y * W + x``; NaN is
   ignored. A map without any non-NaN value decodes to (NaN, NaN, NaN), untransformed. A flat
   (e.g. all-zero) map therefore decodes to pixel (0, 0).
2. **Refinement** (x, y: the integer peak):

   - ``"argmax"``: none; score = peak value.
   - ``"quarter"`` (Newell et al. 2016; MMPose ``refine_keypoints``): on the raw map,
     ``x += 0.25 * sign(hm[y, x+1] - hm[y, x-1])`` if ``1 < x < W-1 and 0 < y < H``, and
     ``y += 0.25 * sign(hm[y+1, x] - hm[y-1, x])`` if ``1 < y < H-1 and 0 < x < W``: MMPose's
     tests exactly (its ``1 < x``, not ``0 < x``; a peak on the first row keeps x, on the first
     column keeps y); sign(NaN) = 0; score = peak value.
   - ``"megvii"`` (MSPN, Li et al. 2019; RSN, Cai et al. 2020; MMPose ``MegviiHeatmap``): blur
     B = blur(hm, blur_kernel); peak on B (no non-NaN value in B: NaN row); if
     ``1 < x < W-1 and 1 < y < H-1`` the quarter offset on B on both axes; then *always*
     ``+0.5`` on both axes, as the official Megvii code (``x * 4 + 2``) does everywhere
     (MMPose adds it only inside the border test). MMPose rescales B to the raw maximum; a
     positive scale changes neither the argmax nor a sign, so B is not rescaled.
     Score = max(raw non-NaN values) / 255 + 0.5 (float64).
   - ``"dark"`` (Zhang et al., "Distribution-Aware Coordinate Representation", CVPR 2020;
     MMPose ``refine_keypoints_dark``): peak on the raw map; if ``1 < x < W-2 and 1 < y < H-2``,
     L = log(max(blur(hm, blur_kernel), 1e-10)) (clamp in float32, NaN stays NaN, log in
     float64) at the 13 points of the 5x5 cross + diagonals, the derivatives
     ``dx = 0.5 (L[y,x+1] - L[y,x-1])``, ``dxx = 0.25 (L[y,x+2] - 2 L[y,x] + L[y,x-2])``, the
     same for y, ``dxy = 0.25 (L[y+1,x+1] - L[y-1,x+1] - L[y+1,x-1] + L[y-1,x-1])``,
     ``det = dxx dyy - dxy^2``, and if det != 0 and everything is finite
     ``x -= (dyy dx - dxy dy) / det``, ``y -= (dxx dy - dxy dx) / det`` (float64, this
     evaluation order everywhere). Score = raw peak value.

3. **Transform** (float64, stored as float32): ``[X, Y] = T @ [sx * x, sy * y, 1]`` with
   ``(sx, sy) = (input_w / W, input_h / H)`` when ``input_size`` is given, else (1, 1); T maps
   crop-input pixels to image pixels (the inverse crop map, e.g. from ``box_to_affine``).

**Differences from MMPose** (1.3.2; every one deliberate, each held by a test in
``tests/ops/test_heatmap_decode.py``; this is the one list of them):

- a map whose maximum is <= 0: MMPose's ``get_heatmap_maximum`` returns location -1 (and the
  keypoint is dropped by its score); rtpose returns the argmax under the peak rule above, with
  that maximum as the score, so a caller's threshold decides;
- ``"megvii"``: the ``+0.5`` is added at the border too, as Megvii's own code does; MMPose adds it
  only where the quarter offset applies;
- NaN values are ignored by the peak rule and give sign 0 (MMPose: ``np.argmax`` returns the
  first NaN, and ``np.sign(NaN)`` is NaN).

``blur(hm, k)`` is the separable Gaussian of ``cv2.getGaussianKernel(k, 0)`` (float32 weights,
see :func:`gaussian_kernel`) with zero padding (r = k // 2): first along x,
``t[y, x] = w[r] hm[y, x] + sum_{j=1..r} w[r+j] (hm[y, x-j] + hm[y, x+j])`` accumulated in float32
in this order (0 for taps outside the map), then the same along y on t. The fixed order makes the
three implementations agree bit for bit, and pairing mirrored taps keeps the blur exactly
symmetric: a target symmetric about its peak has exactly equal blurred neighbours, so Megvii's
sign test gives 0 instead of a rounding-noise quarter pixel.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from rtpose._native import NativeLoader
from rtpose.cuda import arrays
from rtpose.ops._checks import host_out as _host_out
from rtpose.ops._dispatch import GpuCall, host_call, host_result

RefineMode = Literal["argmax", "quarter", "megvii", "dark"]

# Same numbers as rtpose::RefineMode (csrc/include/rtpose/heatmap_decode.h).
_MODE_CODES = {"argmax": 0, "quarter": 1, "megvii": 2, "dark": 3}
# COCO settings: MSPN / RSN blur with k = 5; DARK's kernel for sigma-2 targets is 11.
_DEFAULT_BLUR = {"megvii": 5, "dark": 11}
# rtpose::kMaxBlurKernel.
MAX_BLUR_KERNEL = 31
# OpenCV's fixed tables for sigma <= 0 (getGaussianKernelBitExact), in units of 1 / denominator.
_SMALL_KERNELS = {
    1: ([1.0], 1.0),
    3: ([1.0, 2.0, 1.0], 4.0),
    5: ([1.0, 4.0, 6.0, 4.0, 1.0], 16.0),
    7: ([1.0, 3.5, 7.0, 9.0, 7.0, 3.5, 1.0], 32.0),
    9: ([1.0, 3.25, 7.5, 12.75, 15.0, 12.75, 7.5, 3.25, 1.0], 64.0),
}

logger = logging.getLogger(__name__)

_native = NativeLoader("decode_heatmaps", logger)


class _DecodeArgs(NamedTuple):
    heatmaps: np.ndarray  # (N, K, H, W) float32 / float16, any strides
    squeeze: bool  # the caller passed (K, H, W): return (K, 3)
    transforms: np.ndarray | None  # (N, 2, 3) float64 C-contiguous, None = identity
    mode: str
    blur_kernel: int  # 0 for modes that do not blur
    scale: tuple[float, float]  # (sx, sy), heatmap -> crop-input pixels


def gaussian_kernel(size: int) -> np.ndarray:
    """The (size,) float32 blur weights: ``cv2.getGaussianKernel(size, 0)`` cast to float32.

    OpenCV uses fixed dyadic tables for sizes 1..9 and otherwise the sampled Gaussian with
    ``sigma = 0.3 * ((size - 1) / 2 - 1) + 0.8``, normalised in float64 (times the reciprocal
    of the sum, as OpenCV does).
    """
    size = _blur_size(size, "gaussian_kernel: size")
    if size in _SMALL_KERNELS:
        table, denominator = _SMALL_KERNELS[size]
        return (np.asarray(table, dtype=np.float64) / denominator).astype(np.float32)
    sigma = 0.3 * ((size - 1) * 0.5 - 1.0) + 0.8
    x = np.arange(size, dtype=np.float64) - (size - 1) * 0.5
    t = np.exp((-0.5 / (sigma * sigma)) * x * x)
    return (t * (1.0 / t.sum())).astype(np.float32)


def decode_heatmaps(
    heatmaps: Any,
    transforms: Any = None,
    *,
    mode: RefineMode = "quarter",
    blur_kernel: int | None = None,
    input_size: tuple[int, int] | None = None,
    stream: Any = None,
    out: Any = None,
) -> Any:
    """Decodes heatmaps into keypoints (x, y, score) in image coordinates (see module docstring).

    Args:
        heatmaps: (N, K, H, W) or (K, H, W) float32 / float16; any strides. numpy (or anything
            ``np.asarray`` takes) runs on the CPU; a CUDA array (DLPack / __cuda_array_interface__)
            runs on its GPU.
        transforms: None (identity), (N, 2, 3) or (2, 3) (shared by all N) maps from crop-input
            pixels to image pixels. On the GPU a host array is uploaded on ``stream``; a device
            array must be float64, C-contiguous, (N, 2, 3) (or (2, 3) when N == 1).
        mode: refinement, "argmax", "quarter", "megvii" or "dark".
        blur_kernel: odd Gaussian size in [1, 31] for "megvii" (default 5) and "dark" (default 11,
            sigma 2 targets); an error with the other modes, which do not blur.
        input_size: (input_h, input_w) of the network input; coordinates are scaled by
            (input_w / W, input_h / H) before the transform. None: no scaling.
        stream: GPU only: CUDA stream (None: legacy default stream, int handle, cupy / torch
            stream). The call returns without waiting for the work.
        out: optional (N, K, 3) float32 C-contiguous buffer for the result, on the same side
            (numpy for CPU input, a device array on the input's GPU).

    Returns:
        (N, K, 3) float32 x, y, score ((K, 3) for 3-D input): a numpy array for CPU input, a
        DeviceArray (or ``out``) for GPU input.
    """
    if arrays.is_device_array(heatmaps):
        return _decode_gpu(heatmaps, transforms, mode, blur_kernel, input_size, stream, out)
    if stream is not None:
        raise ValueError(
            "decode_heatmaps: stream is for GPU input, got a host array with "
            f"stream={stream!r}; pass a CUDA array or drop stream"
        )
    args = _validate(heatmaps, transforms, mode, blur_kernel, input_size)
    n, k = args.heatmaps.shape[:2]
    if out is not None:
        _host_out(
            out, op="decode_heatmaps", shape=(k, 3) if args.squeeze else (n, k, 3), dtype=np.float32
        )
    sx, sy = args.scale
    result = host_call(
        _native,
        lambda native: native.decode_heatmaps(
            args.heatmaps, args.transforms, sx, sy, _MODE_CODES[args.mode], args.blur_kernel
        ),
        lambda: _decode_heatmaps_numpy(args),
    )
    return host_result(result[0] if args.squeeze else result, out)


def decode_heatmaps_reference(
    heatmaps: Any,
    transforms: Any = None,
    *,
    mode: RefineMode = "quarter",
    blur_kernel: int | None = None,
    input_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The numpy reference of :func:`decode_heatmaps`: the fallback without rtpose._C and the
    test oracle of the C++ and CUDA kernels.

    Same arguments and result as :func:`decode_heatmaps` for host arrays, without ``stream`` and
    ``out``.
    """
    args = _validate(heatmaps, transforms, mode, blur_kernel, input_size)
    result = _decode_heatmaps_numpy(args)
    return result[0] if args.squeeze else result


# --- numpy reference ----------------------------------------------------------------------------


def _decode_heatmaps_numpy(args: _DecodeArgs) -> np.ndarray:
    """The decoder on validated arguments, vectorised over the maps; (N, K, 3) float32."""
    n, k, h, w = args.heatmaps.shape
    maps = args.heatmaps.astype(np.float32).reshape(n * k, h, w)  # (M, H, W), exact for float16
    m = np.arange(n * k)
    raw_index, raw_value, ok = _peaks(maps)  # (M,) each
    score = raw_value.copy()
    with np.errstate(all="ignore"):
        if args.mode == "megvii":
            blurred = _blur(maps, gaussian_kernel(args.blur_kernel))
            index, _, blur_ok = _peaks(blurred)
            ok &= blur_ok
            py, px = np.divmod(index, w)
            x, y = px.astype(np.float64), py.astype(np.float64)
            inside = _inside(px, 1, w - 1) & _inside(py, 1, h - 1)
            sx, sy = _neighbour_signs(blurred, m, px, py)
            x = np.where(inside, x + 0.25 * sx, x) + 0.5
            y = np.where(inside, y + 0.25 * sy, y) + 0.5
            score = (raw_value.astype(np.float64) / 255.0 + 0.5).astype(np.float32)
        else:
            py, px = np.divmod(raw_index, w)
            x, y = px.astype(np.float64), py.astype(np.float64)
            if args.mode == "quarter":
                sx, sy = _neighbour_signs(maps, m, px, py)
                x = np.where(_inside(px, 1, w - 1) & (py > 0), x + 0.25 * sx, x)
                y = np.where(_inside(py, 1, h - 1) & (px > 0), y + 0.25 * sy, y)
            elif args.mode == "dark":
                x, y = _dark(maps, px, py, x, y, ok, gaussian_kernel(args.blur_kernel))
        out = _transform(x, y, args, m // max(k, 1))
    out = np.concatenate([out, score[:, None]], axis=1).astype(np.float32)
    out[~ok] = np.nan
    return out.reshape(n, k, 3)


def _peaks(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Argmax rule over (M, H, W): flat index, value (float32) and whether any value is non-NaN."""
    flat = maps.reshape(len(maps), maps.shape[1] * maps.shape[2])
    valid = ~np.isnan(flat)
    best = np.where(valid, flat, -np.inf).max(axis=1)  # -inf also when only -inf / NaN remain
    index = (flat == best[:, None]).argmax(axis=1)  # first hit; NaN never compares equal
    return index, flat[np.arange(len(flat)), index], valid.any(axis=1)


def _inside(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """lo < v < hi, elementwise (the border tests of the module docstring)."""
    return (v > lo) & (v < hi)


def _sign(d: np.ndarray) -> np.ndarray:
    """sign_of() of common.h: -1, 0, +1 and 0 for NaN (np.sign gives NaN)."""
    return (d > 0).astype(np.float64) - (d < 0)


def _neighbour_signs(
    maps: np.ndarray, m: np.ndarray, px: np.ndarray, py: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """sign(map[y, x+1] - map[y, x-1]) and sign(map[y+1, x] - map[y-1, x]) per map (M,); indices
    are clipped, so values at the border are garbage that the callers' tests discard."""
    h, w = maps.shape[1:]
    right, left = np.minimum(px + 1, w - 1), np.maximum(px - 1, 0)
    down, up = np.minimum(py + 1, h - 1), np.maximum(py - 1, 0)
    sx = _sign(maps[m, py, right] - maps[m, py, left])  # float32 differences, as in C++
    sy = _sign(maps[m, down, px] - maps[m, up, px])
    return sx, sy


def _blur(maps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Zero-padded separable blur of (M, H, W) float32 maps, in the C++ order (module docstring)."""
    return _blur_axis(_blur_axis(maps, weights, axis=2), weights, axis=1)


def _blur_axis(maps: np.ndarray, weights: np.ndarray, *, axis: int) -> np.ndarray:
    """One pass: w[r] * v[i] + sum_{j=1..r} w[r+j] * (v[i-j] + v[i+j]), float32, zero padded."""
    r = len(weights) // 2
    size = maps.shape[axis]
    moved = np.moveaxis(maps, axis, -1)  # (..., L)
    padded = np.zeros((*moved.shape[:-1], size + 2 * r), dtype=np.float32)
    padded[..., r : r + size] = moved
    acc = weights[r] * moved  # np.float32 * float32 array: every step rounds to float32
    for j in range(1, r + 1):
        pair = padded[..., r - j : r - j + size] + padded[..., r + j : r + j + size]
        acc = acc + weights[r + j] * pair
    return np.moveaxis(acc, -1, axis)


# (dy, dx) of the 13 points DARK reads, in the order of dark_point() in heatmap_decode_math.h.
_DARK_POINTS = (
    (0, 0),
    (0, -1),
    (0, 1),
    (0, -2),
    (0, 2),
    (-1, 0),
    (1, 0),
    (-2, 0),
    (2, 0),
    (-1, -1),
    (-1, 1),
    (1, -1),
    (1, 1),
)


def _dark(
    maps: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    ok: np.ndarray,
    weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """DARK's Taylor step (module docstring) on the maps whose peak is 2 px inside the border."""
    h, w = maps.shape[1:]
    sel = np.flatnonzero(ok & _inside(px, 1, w - 2) & _inside(py, 1, h - 2))
    if sel.size == 0:
        return x, y
    blurred = _blur(maps[sel], weights)  # (S, H, W)
    s = np.arange(sel.size)
    clamp = np.float32(1e-10)
    logs = []
    for dy, dx in _DARK_POINTS:
        v = blurred[s, py[sel] + dy, px[sel] + dx]
        logs.append(np.log(np.where(v < clamp, clamp, v).astype(np.float64)))
    L = logs  # the paper's name
    dx = 0.5 * (L[2] - L[1])
    dy = 0.5 * (L[6] - L[5])
    two_c = 2.0 * L[0]
    dxx = 0.25 * ((L[4] - two_c) + L[3])
    dyy = 0.25 * ((L[8] - two_c) + L[7])
    dxy = 0.25 * (((L[12] - L[10]) - L[11]) + L[9])
    det = dxx * dyy - dxy * dxy
    ox = (dyy * dx - dxy * dy) / det
    oy = (dxx * dy - dxy * dx) / det
    terms = np.stack([dx, dy, dxx, dyy, dxy, det, ox, oy])
    step = (det != 0) & np.isfinite(terms).all(axis=0)
    x, y = x.copy(), y.copy()
    x[sel] = np.where(step, x[sel] - ox, x[sel])
    y[sel] = np.where(step, y[sel] - oy, y[sel])
    return x, y


def _transform(x: np.ndarray, y: np.ndarray, args: _DecodeArgs, batch: np.ndarray) -> np.ndarray:
    """(M,) float64 heatmap coordinates -> (M, 2) float64 image coordinates."""
    u = args.scale[0] * x
    v = args.scale[1] * y
    if args.transforms is None:
        return np.stack([u, v], axis=1)
    t = args.transforms[batch]  # (M, 2, 3)
    big_x = t[:, 0, 0] * u + t[:, 0, 1] * v + t[:, 0, 2]  # left to right, as store_keypoint()
    big_y = t[:, 1, 0] * u + t[:, 1, 1] * v + t[:, 1, 2]
    return np.stack([big_x, big_y], axis=1)


# --- GPU ----------------------------------------------------------------------------------------


def _decode_gpu(
    heatmaps: Any,
    transforms: Any,
    mode: str,
    blur_kernel: int | None,
    input_size: tuple[int, int] | None,
    stream: Any,
    out: Any,
) -> Any:
    """Validates in Python, then queues the CUDA kernel on ``stream`` (nothing is waited for)."""
    call = GpuCall("decode_heatmaps", stream)
    hm = call.view(heatmaps, "heatmaps")
    what = f"{hm.dtype} {tuple(hm.shape)} (device {hm.device})"
    msg = "decode_heatmaps: heatmaps must be float32 or float16 of shape (N, K, H, W) or (K, H, W)"
    if hm.dtype not in (np.float32, np.float16):
        raise TypeError(f"{msg}, got {what}")
    if len(hm.shape) not in (3, 4) or hm.shape[-1] < 1 or hm.shape[-2] < 1:
        raise ValueError(f"{msg} with H, W >= 1, got {what}")
    squeeze = len(hm.shape) == 3
    shape = (1, *hm.shape) if squeeze else tuple(hm.shape)
    strides = (0, *hm.strides) if squeeze else tuple(hm.strides)
    n, k, h, w = shape
    mode, blur, scale = _options(mode, blur_kernel, input_size, h, w)

    def check_transforms(tv: arrays.DeviceView) -> None:
        t_shape, t_strides = tuple(tv.shape), tuple(tv.strides)
        if t_shape == (2, 3) and n == 1:
            t_shape, t_strides = (1, 2, 3), (6, *t_strides)
        t_msg = (
            f"decode_heatmaps: device transforms must be C-contiguous float64 of shape "
            f"({n}, 2, 3) on device {hm.device} (or pass a host array), got "
            f"{tv.dtype} {tuple(tv.shape)} (device {tv.device})"
        )
        if tv.dtype != np.float64:
            raise TypeError(t_msg)
        if t_shape != (n, 2, 3) or tv.device != hm.device:
            raise ValueError(t_msg)
        if (n > 0 and t_strides[1:] != (3, 1)) or (n > 1 and t_strides[0] != 6):
            raise ValueError(t_msg + ", not C-contiguous")

    t_ptr = 0  # identity
    if transforms is not None:
        t_ptr = call.parameter(
            transforms, "transforms", device=hm.device, check=check_transforms,
            host=lambda t: _host_transforms(t, n),
        )  # fmt: skip
    out_shape = (k, 3) if squeeze else (n, k, 3)
    result, out_ptr = call.output(out, shape=out_shape, dtype=np.float32, device=hm.device)
    call.launch(
        "decode_heatmaps", hm.ptr, 1 if hm.dtype == np.float16 else 0, shape, strides, t_ptr,
        scale[0], scale[1], _MODE_CODES[mode], blur, out_ptr, device=hm.device,
    )  # fmt: skip
    return result


# --- validation (csrc/bindings/heatmap_decode.cpp repeats it: a direct rtpose._C call is safe) -


def _describe(a: np.ndarray) -> str:
    return f"{a.dtype} {a.shape}"


def _validate(
    heatmaps: Any,
    transforms: Any,
    mode: str,
    blur_kernel: int | None,
    input_size: tuple[int, int] | None,
) -> _DecodeArgs:
    heatmaps = np.asarray(heatmaps)  # no copy for an ndarray: its strides are kept
    msg = "decode_heatmaps: heatmaps must be float32 or float16 of shape (N, K, H, W) or (K, H, W)"
    if heatmaps.dtype not in (np.float32, np.float16):
        raise TypeError(f"{msg}, got {_describe(heatmaps)}")
    if heatmaps.ndim not in (3, 4) or heatmaps.shape[-1] < 1 or heatmaps.shape[-2] < 1:
        raise ValueError(f"{msg} with H, W >= 1, got {_describe(heatmaps)}")
    squeeze = heatmaps.ndim == 3
    if squeeze:
        heatmaps = heatmaps[None]
    n, _, h, w = heatmaps.shape
    mode, blur, scale = _options(mode, blur_kernel, input_size, h, w)
    host = None if transforms is None else _host_transforms(transforms, n)
    return _DecodeArgs(heatmaps, squeeze, host, mode, blur, scale)


def _options(
    mode: str, blur_kernel: int | None, input_size: tuple[int, int] | None, h: int, w: int
) -> tuple[str, int, tuple[float, float]]:
    """Checks the keyword options; returns (mode, blur kernel or 0, (sx, sy))."""
    if not isinstance(mode, str) or mode not in _MODE_CODES:
        raise ValueError(
            f"decode_heatmaps: mode must be one of {', '.join(map(repr, _MODE_CODES))}, "
            f"got {mode!r}"
        )
    if mode in _DEFAULT_BLUR:
        blur = (
            _DEFAULT_BLUR[mode]
            if blur_kernel is None
            else _blur_size(blur_kernel, "decode_heatmaps: blur_kernel")
        )
    elif blur_kernel is not None:
        raise ValueError(
            f"decode_heatmaps: blur_kernel applies to modes 'megvii' and 'dark' only, got "
            f"blur_kernel={blur_kernel!r} with mode={mode!r} (it would be ignored); drop it"
        )
    else:
        blur = 0
    if input_size is None:
        return mode, blur, (1.0, 1.0)
    if not isinstance(input_size, Sequence | np.ndarray) or len(input_size) != 2:
        raise ValueError(
            f"decode_heatmaps: input_size must be (input_h, input_w), got {input_size!r}"
        )
    try:
        in_h, in_w = operator.index(input_size[0]), operator.index(input_size[1])
    except TypeError as exc:
        raise TypeError(
            f"decode_heatmaps: input_size must be two integers (input_h, input_w), "
            f"got {input_size!r}"
        ) from exc
    if in_h < 1 or in_w < 1:
        raise ValueError(
            f"decode_heatmaps: input_size must be (input_h, input_w) >= 1, got {input_size!r}"
        )
    return mode, blur, (in_w / w, in_h / h)


def _blur_size(size: object, what: str) -> int:
    expected = f"{what} must be an odd integer in [1, {MAX_BLUR_KERNEL}], got {size!r}"
    try:
        k = operator.index(size)
    except TypeError as exc:
        raise TypeError(expected) from exc
    if k < 1 or k > MAX_BLUR_KERNEL or k % 2 == 0:
        raise ValueError(expected)
    return k


def _host_transforms(transforms: Any, n: int) -> np.ndarray:
    """(N, 2, 3) or (2, 3) host maps -> (N, 2, 3) float64 C-contiguous (a new array)."""
    t = np.asarray(transforms)
    msg = (
        f"decode_heatmaps: transforms must be None or a float array of shape ({n}, 2, 3) or "
        f"(2, 3), got "
    )
    if t.dtype.kind not in "iuf":
        raise TypeError(msg + _describe(t))
    if t.shape == (2, 3):
        t = np.broadcast_to(t, (n, 2, 3))
    if t.shape != (n, 2, 3):
        raise ValueError(msg + _describe(t))
    return np.array(t, dtype=np.float64, order="C")
