"""Batched affine warp (crop + resize + normalise + HWC→CHW) and the YOLO letterbox geometry.

``affine_warp`` turns one BGR uint8 frame into N normalised float32 crops in one pass; it runs the
C++ kernel in ``rtpose._C`` when the extension is built and otherwise the numpy reference
``affine_warp_reference``, which is also the test oracle. Sampling is exact bilinear with a
constant border, the same as ``cv2.warpAffine(frame.astype(np.float32), M, ...,
flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)``.

Matrices are *forward* maps in the cv2 convention: ``dst = M @ [x_src, y_src, 1]`` with pixel
centres at integer coordinates.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from rtpose.ops._native import NativeLoader

ChannelOrder = Literal["rgb", "bgr"]

# Same limit as rtpose::kMaxImageSide in csrc/include/rtpose/affine_warp.h (int32 pixel indices).
_MAX_IMAGE_SIDE = 1 << 30


logger = logging.getLogger(__name__)

_native = NativeLoader("affine_warp", logger)


def native_available() -> bool:
    """True when the C++ extension ``rtpose._C`` imports (it is then used by ``affine_warp``)."""
    return _native.get() is not None


class _WarpArgs(NamedTuple):
    frame: np.ndarray  # (H, W, 3) uint8, any strides
    matrices: np.ndarray  # (N, 2, 3) float64, C-contiguous forward maps
    out_hw: tuple[int, int]
    mean: tuple[float, float, float]  # output channel order
    std: tuple[float, float, float]
    rgb: bool
    border_value: float


def affine_warp(
    frame: np.ndarray,
    matrices: np.ndarray,
    out_size: tuple[int, int],
    *,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    channel_order: ChannelOrder = "rgb",
    border_value: float = 0.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Warps N crops out of one BGR frame into a normalised (N, 3, out_h, out_w) float32 batch.

    Args:
        frame: (H, W, 3) uint8 BGR image as OpenCV decodes it; any strides (views are fine).
        matrices: (N, 2, 3) or (2, 3) forward maps, frame pixel -> crop pixel (cv2.warpAffine).
        out_size: (out_h, out_w) of every crop.
        mean: per output channel, in pixel units (0..255); the crop holds (sample - mean) / std.
        std: per output channel, in pixel units, non-zero.
        channel_order: "rgb" (frame channels reversed) or "bgr" (as decoded).
        border_value: raw pixel value of every bilinear neighbour outside the frame (YOLO: 114).
        out: optional (N, 3, out_h, out_w) float32 C-contiguous buffer to write in place.

    Returns:
        (N, 3, out_h, out_w) float32, C-contiguous; ``out`` itself when given.
    """
    args = _validate(frame, matrices, out_size, mean, std, channel_order, border_value)
    n = args.matrices.shape[0]
    if out is not None:
        _check_out(out, (n, 3, *args.out_hw))
    native = _native.get()
    if native is not None:
        # The extension checks singular maps itself, with the same message as _invert_affine.
        out_h, out_w = args.out_hw
        return native.affine_warp(
            args.frame,
            args.matrices,
            out_h=out_h,
            out_w=out_w,
            mean=args.mean,
            std=args.std,
            rgb=args.rgb,
            border_value=args.border_value,
            out=out,
        )
    _native.warn_fallback()
    result = _warp_numpy(args)
    if out is None:
        return result
    out[...] = result
    return out


def affine_warp_reference(
    frame: np.ndarray,
    matrices: np.ndarray,
    out_size: tuple[int, int],
    *,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    channel_order: ChannelOrder = "rgb",
    border_value: float = 0.0,
) -> np.ndarray:
    """Numpy reference of :func:`affine_warp` (float64 math): the test oracle and the fallback.

    Same arguments and result as :func:`affine_warp`, without ``out``.
    """
    args = _validate(frame, matrices, out_size, mean, std, channel_order, border_value)
    return _warp_numpy(args)


def _warp_numpy(args: _WarpArgs) -> np.ndarray:
    """The warp in float64 on validated arguments; returns (N, 3, out_h, out_w) float32."""
    out_h, out_w = args.out_hw
    inverse = _invert_affine(args.matrices)  # (N, 2, 3)
    height, width = args.frame.shape[:2]
    # One ring of border_value around the frame: every out-of-frame neighbour index is clipped
    # onto it, which is exactly cv2's BORDER_CONSTANT per-neighbour rule.
    padded = np.full((height + 2, width + 2, 3), args.border_value, dtype=np.float64)
    padded[1:-1, 1:-1] = args.frame
    if args.rgb:
        padded = padded[..., ::-1]
    mean = np.asarray(args.mean, dtype=np.float64)
    std = np.asarray(args.std, dtype=np.float64)
    ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float64)  # (h, w) each
    result = np.empty((len(inverse), 3, out_h, out_w), dtype=np.float32)
    for i, m in enumerate(inverse):  # one crop at a time bounds the temporaries' memory
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
    return result


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


def _describe(a: np.ndarray) -> str:
    return f"{a.dtype} {a.shape}"


def _validate(
    frame: np.ndarray,
    matrices: np.ndarray,
    out_size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    channel_order: str,
    border_value: float,
) -> _WarpArgs:
    """The checks of csrc/bindings.cpp, so the native and numpy paths reject the same calls."""
    frame = np.asarray(frame)  # no copy for an ndarray: its strides are kept
    msg = "affine_warp: frame must be uint8 of shape (H, W, 3), got "
    if frame.dtype != np.uint8:
        raise TypeError(msg + _describe(frame))
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(msg + _describe(frame))
    if max(frame.shape[:2]) > _MAX_IMAGE_SIDE:
        raise ValueError(
            f"affine_warp: frame sides must be at most {_MAX_IMAGE_SIDE}, got {_describe(frame)}"
        )

    matrices = np.asarray(matrices)
    msg = "affine_warp: matrices must be a float or int array of shape (N, 2, 3) or (2, 3), got "
    if matrices.dtype.kind not in "iuf":  # bool, complex, object, strings: caller mistakes
        raise TypeError(msg + _describe(matrices))
    if matrices.shape == (2, 3):
        matrices = matrices[None]
    if matrices.ndim != 3 or matrices.shape[1:] != (2, 3):
        raise ValueError(msg + _describe(matrices))
    matrices = np.ascontiguousarray(matrices, dtype=np.float64)
    out_h, out_w = _pair("affine_warp: out_size", out_size)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"affine_warp: out_size must be (out_h, out_w) >= 1, got {out_size!r}")

    if channel_order not in ("rgb", "bgr"):
        raise ValueError(
            f"affine_warp: channel_order must be 'rgb' or 'bgr', got {channel_order!r}"
        )
    return _WarpArgs(
        frame=frame,
        matrices=matrices,
        out_hw=(out_h, out_w),
        mean=_channel_values("mean", mean, nonzero=False),
        std=_channel_values("std", std, nonzero=True),
        rgb=channel_order == "rgb",
        border_value=float(border_value),
    )


def _pair(what: str, value: object) -> tuple[int, int]:
    """(a, b) of integers from any 2-sequence of ints (tuple, list, numpy ints)."""
    if not isinstance(value, Sequence | np.ndarray) or len(value) != 2:
        raise ValueError(f"{what} must be a pair of integers (height, width), got {value!r}")
    try:
        return operator.index(value[0]), operator.index(value[1])
    except TypeError as exc:
        raise TypeError(
            f"{what} must be a pair of integers (height, width), got {value!r}"
        ) from exc


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


def _check_out(out: np.ndarray, shape: tuple[int, int, int, int]) -> None:
    msg = f"affine_warp: out must be a C-contiguous, writeable float32 array of shape {shape}, got "
    if not isinstance(out, np.ndarray):
        raise TypeError(msg + type(out).__name__)
    if out.dtype != np.float32:
        raise TypeError(msg + _describe(out))
    if out.shape != shape:
        raise ValueError(msg + _describe(out))
    if not out.flags.c_contiguous:
        raise ValueError(msg + _describe(out) + ", not C-contiguous")
    if not out.flags.writeable:
        raise ValueError(msg + _describe(out) + ", read-only")


@dataclass(frozen=True)
class Letterbox:
    """Geometry of a YOLO letterbox: resize keeping the aspect ratio, then pad.

    Reproduces ultralytics' ``LetterBox`` (centred padding, cv2.resize INTER_LINEAR).

    Attributes:
        scale: (sx, sy) = (new_w / w, new_h / h), the per-axis resize factors.
        pad: (left, top) padding in output pixels.
        out_hw: (out_h, out_w) of the letterboxed image.
    """

    scale: tuple[float, float]
    pad: tuple[int, int]
    out_hw: tuple[int, int]

    def __post_init__(self) -> None:
        if not all(s > 0 and math.isfinite(s) for s in self.scale):
            raise ValueError(f"Letterbox: scale must be positive and finite, got {self.scale}")
        if min(self.out_hw) < 1:
            raise ValueError(f"Letterbox: out_hw must be >= 1, got {self.out_hw}")

    @property
    def matrix(self) -> np.ndarray:
        """(2, 3) float64 forward map, source pixel -> letterbox pixel (pixel-centre convention).

        cv2.resize samples with half-pixel centres, so a source pixel centre x maps to
        sx * (x + 0.5) - 0.5, then the padding shifts it by ``left``.
        """
        (sx, sy), (left, top) = self.scale, self.pad
        return np.array(
            [[sx, 0.0, 0.5 * sx - 0.5 + left], [0.0, sy, 0.5 * sy - 0.5 + top]], dtype=np.float64
        )

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """Maps (..., 2+) x, y in letterbox continuous coordinates to source-image coordinates.

        Continuous means pixel i covers [i, i + 1) (what detectors predict), so the map is
        u_src = (u_dst - left) / sx. Columns after the first two (scores, ...) are copied as is.
        Returns a new array (float64 unless ``points`` is already floating).
        """
        points = np.asarray(points)
        if points.ndim < 1 or points.shape[-1] < 2:
            raise ValueError(
                f"Letterbox.to_source: points must have shape (..., 2+), got {points.shape}"
            )
        dtype = points.dtype if np.issubdtype(points.dtype, np.floating) else np.float64
        result = points.astype(dtype, copy=True)
        (sx, sy), (left, top) = self.scale, self.pad
        result[..., 0] = (points[..., 0] - left) / sx
        result[..., 1] = (points[..., 1] - top) / sy
        return result

    def boxes_to_source(self, boxes: np.ndarray) -> np.ndarray:
        """Maps (N, 4) x1, y1, x2, y2 boxes from letterbox to source-image coordinates."""
        boxes = np.asarray(boxes)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"Letterbox.boxes_to_source: boxes must be (N, 4), got {boxes.shape}")
        return self.to_source(boxes.reshape(-1, 2, 2)).reshape(boxes.shape)


def letterbox_matrix(
    src_hw: tuple[int, int],
    dst_hw: int | tuple[int, int],
    *,
    auto: bool = False,
    stride: int = 32,
    scaleup: bool = True,
) -> Letterbox:
    """Letterbox geometry of ultralytics' ``LetterBox`` for a (h, w) image.

    Args:
        src_hw: (h, w) of the source frame.
        dst_hw: target (h, w), or one int for a square target.
        auto: pad only up to the next multiple of ``stride`` (minimal rectangle) instead of to
            ``dst_hw``.
        stride: the network stride used by ``auto``.
        scaleup: allow enlarging; if False small images are only padded.

    Returns:
        A :class:`Letterbox`; ``affine_warp(frame, lb.matrix, lb.out_hw, border_value=114)`` is
        ultralytics' image (they resize the uint8 frame, so theirs is rounded: within 1 pixel
        value). When downscaling the two agree everywhere; when upscaling by s they differ within
        about s / 2 pixels of the image's edge, where cv2.resize replicates edge pixels and the
        warp blends them with the border.
    """
    h, w = _pair("letterbox_matrix: src_hw", src_hw)
    if isinstance(dst_hw, int | np.integer):
        dst_h = dst_w = operator.index(dst_hw)
    else:
        dst_h, dst_w = _pair("letterbox_matrix: dst_hw", dst_hw)
    if min(h, w, dst_h, dst_w) < 1 or stride < 1:
        raise ValueError(
            f"letterbox_matrix: sizes and stride must be >= 1, got src_hw={src_hw}, "
            f"dst_hw={dst_hw}, stride={stride}"
        )
    r = min(dst_h / h, dst_w / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = round(w * r), round(h * r)
    dw, dh = dst_w - new_w, dst_h - new_h
    if auto:
        dw, dh = dw % stride, dh % stride
    out_hw = (new_h + dh, new_w + dw)
    # ultralytics splits odd padding as round(d / 2 - 0.1) before, the rest after.
    left, top = round(dw / 2 - 0.1), round(dh / 2 - 0.1)
    return Letterbox(scale=(new_w / w, new_h / h), pad=(left, top), out_hw=out_hw)
