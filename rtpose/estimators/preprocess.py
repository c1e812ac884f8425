"""Network inputs, built once: letterboxed whole frames (one-stage) and person crops (top-down).

The estimators, the INT8 calibration and the accuracy gate of ``rtpose-build`` all build their
network inputs here, so an engine is calibrated and checked on exactly what it will see at run
time. Frames may be host (numpy) or GPU arrays; one :func:`rtpose.ops.affine_warp` call warps,
resizes, normalises and lays out a whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from rtpose.models.zoo import Normalisation
from rtpose.ops import affine_warp, box_to_affine, letterbox_matrix
from rtpose.ops.box_affine import DEFAULT_PADDING
from rtpose.ops.letterbox import Letterbox

PAD_VALUE = 114.0  # grey the YOLO models were trained with around letterboxed images


def check_image(image: Any) -> None:
    """A single image must be (H, W, 3) uint8 BGR numpy; say what was received otherwise."""
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"image must be a numpy array (H, W, 3) uint8 BGR, got {type(image).__name__}"
        )
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be (H, W, 3) uint8 BGR, got {image.dtype} with shape {image.shape}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: shape {image.shape}")


def warp_channel_order(want: str, image_order: str) -> Literal["rgb", "bgr"]:
    """The ``channel_order`` argument of :func:`rtpose.ops.affine_warp` (which reverses the
    channels for "rgb") that gives ``want`` from images in ``image_order``."""
    if image_order == "bgr":
        return want  # type: ignore[return-value]
    return "bgr" if want == "rgb" else "rgb"


def yolo_letterbox(frame_hw: tuple[int, int], size: tuple[int, int], *, fixed: bool) -> Letterbox:
    """The letterbox of a ``frame_hw`` frame for a YOLO input of ``size`` (h, w): rectangular,
    padded to stride 32, unless the network takes one fixed size (a TensorRT engine, a static
    ONNX), when the input is exactly ``size``."""
    return letterbox_matrix(frame_hw, size, auto=not fixed, stride=32)


def letterbox_batch(
    images: Sequence[Any],
    lb: Letterbox,
    norm: Normalisation,
    *,
    image_order: str = "bgr",
    stream: Any = None,
    out: Any = None,
) -> Any:
    """(B, 3, h, w) float32 network input of ``images`` (all of one size), letterboxed by
    ``lb`` and normalised by ``norm``; one kernel call for the batch (on the GPU for GPU
    images, with ``stream``)."""
    matrices = np.repeat(lb.matrix[None], len(images), axis=0)
    single = len(images) == 1
    return affine_warp(
        images[0] if single else list(images), matrices, lb.out_hw,
        frame_index=None if single else np.arange(len(images)),
        mean=norm.mean, std=norm.std,
        channel_order=warp_channel_order(norm.channel_order, image_order),
        border_value=PAD_VALUE, stream=stream, out=out,
    )  # fmt: skip


def crop_batch(
    images: Sequence[Any],
    boxes: Sequence[np.ndarray],
    input_size: tuple[int, int],
    norm: Normalisation,
    *,
    padding: float = DEFAULT_PADDING,
    image_order: str = "bgr",
    stream: Any = None,
) -> tuple[Any, np.ndarray]:
    """Person crops of every box of every image in one warp.

    Args:
        images: (H, W, 3) uint8 images (host or GPU, one channel order).
        boxes: per image, an (n_i, >=4) array of x1, y1, x2, y2 (at least one box in all).
        input_size: the network's (height, width).

    Returns:
        (N, 3, H, W) float32 crops, normalised as the weights expect, in box order; and the
        (N, 2, 3) crop-input -> image maps.
    """
    counts = [len(b) for b in boxes]
    all_boxes = np.concatenate([np.asarray(b)[:, :4] for b in boxes if len(b)])
    maps = box_to_affine(all_boxes, input_size, padding=padding)
    single = len(images) == 1
    crops = affine_warp(
        images[0] if single else list(images), maps.forward, input_size,
        frame_index=None if single else np.repeat(np.arange(len(images)), counts),
        mean=norm.mean, std=norm.std,
        channel_order=warp_channel_order(norm.channel_order, image_order), stream=stream,
    )  # fmt: skip
    return crops, maps.inverse
