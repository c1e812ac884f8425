"""rtpose.ops.affine: the C++ kernel and the numpy reference, held to cv2 and to each other.

Tolerances (normalised units unless said otherwise):
- 1e-4 against cv2.warpAffine on a float32 frame when cv2's own arithmetic is exact (see
  ``_random_maps(dyadic=True)``); for arbitrary maps cv2 rounds source coordinates to float32 and
  the bound grows with the coordinates' size (``_cv2_float32_tolerance``).
- 1e-5 between the C++ kernel (float32 interpolation) and the float64 reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from gpu_support import HostCudaArray, upload
from native_ext import native_module, require_native

from rtpose._native import NativeLoader
from rtpose.cuda import arrays
from rtpose.cuda.arrays import DeviceArray
from rtpose.ops import affine, box_to_affine
from rtpose.ops.affine import affine_warp, affine_warp_reference

IMAGENET = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))  # RGB mean, std in pixel units
YOLO = ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0))
NORMS = {"imagenet": IMAGENET, "yolo": YOLO}

Warp = Callable[..., np.ndarray]  # the signature of affine_warp_reference


def _native_warp(
    frame,
    matrices,
    out_size,
    *,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    channel_order="rgb",
    border_value=0.0,
    out=None,
):
    """rtpose._C.affine_warp with the Python signature, bypassing the Python-side checks."""
    native, _ = native_module()
    rgb = channel_order == "rgb"
    return native.affine_warp(
        [frame], matrices, None, *out_size, mean, std, rgb, border_value, "float32", out
    )


@pytest.fixture(params=["native", "numpy"])
def warp(request) -> Warp:
    """Each implementation, called with affine_warp_reference's signature."""
    if request.param == "native":
        require_native()
        return _native_warp
    return affine_warp_reference


@pytest.fixture
def fallback(monkeypatch) -> None:
    """Makes rtpose._C unimportable and resets the once-per-process warning."""
    monkeypatch.setattr(
        affine, "_native", NativeLoader("affine_warp", affine.logger, force_missing=True)
    )


@pytest.fixture(params=["native", "fallback"])
def warp_with_out(request) -> Warp:
    """affine_warp (which takes ``out``) through each of its two paths."""
    if request.param == "native":
        require_native()
        return _native_warp
    request.getfixturevalue("fallback")
    return affine_warp


def _frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # (H, W, 3) BGR


def _random_maps(rng, frame_hw, out_hw, n, *, dyadic=False, axis_aligned=False) -> np.ndarray:
    """(n, 2, 3) forward maps of crops with random centre (up to 60% outside the frame), scale
    0.2..3, rotation and shear.

    dyadic: round the *inverse* map to multiples of 2**-8, so that cv2, which evaluates it in
    float32, computes every source coordinate exactly and becomes an exact bilinear oracle.
    """
    (h, w), (oh, ow) = frame_hw, out_hw
    maps = np.empty((n, 2, 3))
    for i in range(n):
        scale = rng.uniform(0.2, 3.0)
        angle = 0.0 if axis_aligned else rng.uniform(-np.pi, np.pi)
        shear = 0.0 if axis_aligned else rng.uniform(-0.3, 0.3)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        a = scale * rot @ np.array([[1.0, shear], [0.0, 1.0]])
        centre = (rng.uniform(-0.6, 1.6, 2) * [w, h]).round(2)
        maps[i, :, :2] = a
        maps[i, :, 2] = np.array([ow / 2, oh / 2]) - a @ centre
        if dyadic:
            inverse = np.round(cv2.invertAffineTransform(maps[i]) * 256) / 256
            maps[i] = cv2.invertAffineTransform(inverse)
    return maps


def _cv2_warp(frame, maps, out_hw, *, mean, std, channel_order, border_value) -> np.ndarray:
    """(N, 3, h, w) float64: cv2.warpAffine on the float32 frame, reordered and normalised."""
    (oh, ow), b = out_hw, float(border_value)
    crops = [
        cv2.warpAffine(
            frame.astype(np.float32),
            m,
            (ow, oh),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(b, b, b),
        )
        for m in maps
    ]
    out = np.stack(crops).reshape(len(maps), oh, ow, 3).astype(np.float64)
    if channel_order == "rgb":
        out = out[..., ::-1]
    return ((out - np.asarray(mean)) / np.asarray(std)).transpose(0, 3, 1, 2)


def _cv2_float32_tolerance(maps, out_hw, std) -> float:
    """Bound on cv2's error for arbitrary maps, in normalised units.

    cv2 computes a source coordinate as fma(M0, x, float32(y * M1 + M2)) in float32: two roundings,
    each at most 2**-24 of the largest intermediate C, per axis. Bilinear sampling changes by at
    most 255 per pixel of displacement along each axis, hence 255 * 2 axes * 2 roundings.
    """
    oh, ow = out_hw
    inverse = np.stack([cv2.invertAffineTransform(m) for m in maps])  # (N, 2, 3)
    c = np.abs(inverse[..., 0]) * (ow - 1) + np.abs(inverse[..., 1]) * (oh - 1)
    c = (c + np.abs(inverse[..., 2])).max(initial=1.0)
    return 1e-4 + 255 * 4 * 2.0**-24 * c / min(std)


CASES = [  # (frame_hw, out_hw, n)
    ((37, 53), (17, 11), 8),
    ((37, 53), (1, 1), 4),
    ((240, 320), (64, 48), 6),
    ((480, 640), (256, 192), 3),
    ((5, 4), (9, 7), 4),  # frame smaller than the crop: mostly edge and border pixels
    ((1, 1), (3, 3), 4),  # no pixel has all four neighbours inside
    ((2, 3), (5, 4), 4),
]


@pytest.mark.parametrize("channel_order", ["rgb", "bgr"])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(("frame_hw", "out_hw", "n"), CASES)
def test_matches_cv2_exact(warp, frame_hw, out_hw, n, norm, channel_order):
    rng = np.random.default_rng(0)
    frame = _frame(rng, *frame_hw)
    maps = np.concatenate(
        [
            _random_maps(rng, frame_hw, out_hw, n, dyadic=True),
            _random_maps(rng, frame_hw, out_hw, 2, dyadic=True, axis_aligned=True),
        ]
    )
    mean, std = NORMS[norm]
    kw = dict(mean=mean, std=std, channel_order=channel_order, border_value=114.0)
    got = warp(frame, maps, out_hw, **kw)
    assert got.shape == (len(maps), 3, *out_hw) and got.dtype == np.float32
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got, _cv2_warp(frame, maps, out_hw, **kw), rtol=0, atol=1e-4)


@pytest.mark.parametrize(("frame_hw", "out_hw", "n"), CASES)
def test_matches_cv2_arbitrary_maps(warp, frame_hw, out_hw, n):
    rng = np.random.default_rng(1)
    frame = _frame(rng, *frame_hw)
    maps = _random_maps(rng, frame_hw, out_hw, n)
    mean, std = IMAGENET
    kw = dict(mean=mean, std=std, channel_order="rgb", border_value=0.0)
    got = warp(frame, maps, out_hw, **kw)
    atol = _cv2_float32_tolerance(maps, out_hw, std)
    np.testing.assert_allclose(got, _cv2_warp(frame, maps, out_hw, **kw), rtol=0, atol=atol)


@pytest.mark.parametrize("axis_aligned", [False, True], ids=["general", "axis_aligned"])
def test_native_matches_reference(axis_aligned):
    require_native()
    rng = np.random.default_rng(2)
    frame = _frame(rng, 1080, 1920)
    maps = _random_maps(rng, (1080, 1920), (256, 192), 64, axis_aligned=axis_aligned)
    mean, std = IMAGENET
    kw = dict(mean=mean, std=std, channel_order="rgb", border_value=114.0)
    got = _native_warp(frame, maps, (256, 192), **kw)
    np.testing.assert_allclose(got, affine_warp_reference(frame, maps, (256, 192), **kw), atol=1e-5)


def test_native_matches_reference_raw_values():
    """Without normalisation values reach 255: float32 interpolation is good to ~1e-4 there."""
    require_native()
    rng = np.random.default_rng(3)
    frame = _frame(rng, 97, 131)
    maps = _random_maps(rng, (97, 131), (33, 29), 16)
    got = _native_warp(frame, maps, (33, 29), border_value=7.0)
    np.testing.assert_allclose(
        got, affine_warp_reference(frame, maps, (33, 29), border_value=7.0), rtol=0, atol=1e-4
    )


VIEWS = {
    "rows_step": lambda f: f[::2],
    "cols_step": lambda f: f[:, ::2],
    "crop": lambda f: f[10:60, 20:90],
    "flip_x": lambda f: f[:, ::-1],
    "flip_y": lambda f: f[::-1],
    "channels_reversed": lambda f: f[..., ::-1],
    "fortran": np.asfortranarray,
}


@pytest.mark.parametrize("view", VIEWS)
def test_strided_frames(warp, view):
    """A numpy view is read through its strides: same result as its contiguous copy."""
    rng = np.random.default_rng(4)
    frame = VIEWS[view](_frame(rng, 120, 160))
    maps = np.concatenate(
        [
            _random_maps(rng, frame.shape[:2], (21, 19), 4),
            _random_maps(rng, frame.shape[:2], (21, 19), 2, axis_aligned=True),
        ]
    )
    mean, std = IMAGENET
    got = warp(frame, maps, (21, 19), mean=mean, std=std)
    want = warp(np.ascontiguousarray(frame), maps, (21, 19), mean=mean, std=std)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_no_crops(warp):
    frame = np.zeros((10, 12, 3), np.uint8)
    got = warp(frame, np.zeros((0, 2, 3)), (7, 5))
    assert got.shape == (0, 3, 7, 5) and got.dtype == np.float32


def test_identity_and_border(warp):
    """Identity map reproduces the frame; points beyond one pixel outside are pure border."""
    frame = _frame(np.random.default_rng(5), 6, 8)
    shift = np.array([[[1.0, 0, 0], [0, 1, 0]], [[1.0, 0, 100], [0, 1, 0]]])  # 2nd: far away
    got = warp(frame, shift, (6, 8), channel_order="bgr", border_value=50.0)
    np.testing.assert_array_equal(got[0], frame.transpose(2, 0, 1).astype(np.float32))
    np.testing.assert_array_equal(got[1], np.full((3, 6, 8), 50.0, np.float32))


def test_channel_order(warp):
    rng = np.random.default_rng(6)
    frame, maps = _frame(rng, 30, 40), _random_maps(rng, (30, 40), (8, 9), 3)
    rgb = warp(frame, maps, (8, 9), mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0), channel_order="rgb")
    bgr = warp(frame, maps, (8, 9), mean=(3.0, 2.0, 1.0), std=(6.0, 5.0, 4.0), channel_order="bgr")
    np.testing.assert_array_equal(rgb, bgr[:, ::-1])


# --- affine_warp: dispatch, out, single matrix, fallback ---------------------------------------


def test_affine_warp_dispatches_to_native():
    require_native()
    assert affine.native_available()
    rng = np.random.default_rng(7)
    frame, maps = _frame(rng, 40, 50), _random_maps(rng, (40, 50), (12, 10), 3)
    np.testing.assert_array_equal(
        affine_warp(frame, maps, (12, 10), border_value=3.0),
        _native_warp(frame, maps, (12, 10), border_value=3.0),
    )


def test_out_is_written_in_place(warp_with_out):
    rng = np.random.default_rng(8)
    frame, maps = _frame(rng, 40, 50), _random_maps(rng, (40, 50), (12, 10), 3)
    out = np.full((3, 3, 12, 10), np.nan, np.float32)
    result = warp_with_out(frame, maps, (12, 10), border_value=3.0, out=out)
    assert result is out
    np.testing.assert_allclose(
        out, affine_warp_reference(frame, maps, (12, 10), border_value=3.0), rtol=0, atol=1e-4
    )


def test_single_matrix_and_lists():
    frame = _frame(np.random.default_rng(9), 20, 30)
    single = affine_warp(frame, [[1, 0, 2], [0, 1, 3]], [5, 6])  # int matrix, list size
    assert single.shape == (1, 3, 5, 6)
    batched = affine_warp(frame, np.array([[[1.0, 0, 2], [0, 1, 3]]], np.float32), (5, 6))
    np.testing.assert_array_equal(single, batched)


def test_fallback_warns_once(fallback, caplog):
    assert not affine.native_available()
    rng = np.random.default_rng(10)
    frame, maps = _frame(rng, 40, 50), _random_maps(rng, (40, 50), (12, 10), 2)
    with caplog.at_level(logging.WARNING, logger="rtpose.ops.affine"):
        first = affine_warp(frame, maps, (12, 10))
        affine_warp(frame, maps, (12, 10))
    warnings = [r for r in caplog.records if r.name == "rtpose.ops.affine"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "rtpose._C is not available" in message and "numpy reference" in message
    assert "disabled for a test" in message  # the ImportError's text: why, not only that
    np.testing.assert_array_equal(first, affine_warp_reference(frame, maps, (12, 10)))


# --- validation --------------------------------------------------------------------------------

GOOD = dict(
    frame=np.zeros((480, 640, 3), np.uint8),
    matrices=np.array([[[1.0, 0, 0], [0, 1, 0]]] * 2),
    out_size=(8, 8),
)
BAD_ARGS = [  # argument overrides, error, message pattern
    pytest.param(
        dict(frame=np.zeros((480, 640), np.float32)), TypeError,
        r"frames?(\[0\])? must be uint8 of shape \(H, W, 3\), got float32 \(480, 640\)",
        id="frame-dtype",
    ),
    pytest.param(
        dict(frame=np.zeros((480, 640), np.uint8)), ValueError,
        r"frames?(\[0\])? must be uint8 of shape \(H, W, 3\), got uint8 \(480, 640\)",
        id="frame-2d",
    ),
    pytest.param(
        dict(frame=np.zeros((480, 640, 4), np.uint8)), ValueError,
        r"frames?(\[0\])? must be .*got uint8 \(480, 640, 4\)", id="frame-4-channels",
    ),
    pytest.param(
        dict(frame=np.zeros((0, 640, 3), np.uint8)), ValueError,
        r"frames?(\[0\])? must be .*got uint8 \(0, 640, 3\)", id="frame-empty",
    ),
    pytest.param(
        dict(matrices=np.ones((2, 2, 3), bool)), TypeError,
        r"matrices must be .*got bool \(2, 2, 3\)", id="matrices-dtype",
    ),
    pytest.param(
        dict(matrices=np.ones((2, 3, 3))), ValueError,
        r"matrices must be .*got float64 \(2, 3, 3\)", id="matrices-shape",
    ),
    pytest.param(
        dict(matrices=np.array([[[1.0, 0, 0], [0, 1, 0]], [[1.0, 2, 0], [0.5, 1, 0]]])),
        ValueError, r"matrices\[1\] is not invertible", id="matrices-singular",
    ),
    pytest.param(
        dict(matrices=np.array([[[1.0, 0, np.nan], [0, 1, 0]]])), ValueError,
        r"matrices\[0\] is not invertible", id="matrices-nan",
    ),
    pytest.param(
        dict(out_size=(0, 8)), ValueError, r"out_(size|h and out_w) must be .*>= 1",
        id="out-size",
    ),
    pytest.param(
        dict(std=(58.4, 0.0, 57.4)), ValueError,
        r"std must be finite and non-zero in every channel, got \(58.4, 0.0, 57.4\)",
        id="std-zero",
    ),
    pytest.param(
        dict(mean=(1.0, 2.0)), ValueError,
        r"mean must have 3 values \(output channel order\), got 2", id="mean-length",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("override", "error", "match"), BAD_ARGS)
def test_rejects_bad_arguments(warp, override, error, match):
    args = {**GOOD, **override}
    frame, matrices, out_size = args.pop("frame"), args.pop("matrices"), args.pop("out_size")
    with pytest.raises(error, match=r"^affine_warp: " + match):
        warp(frame, matrices, out_size, **args)


def test_rejects_bad_channel_order():
    with pytest.raises(ValueError, match="channel_order must be 'rgb' or 'bgr', got 'RGB'"):
        affine_warp(GOOD["frame"], GOOD["matrices"], (8, 8), channel_order="RGB")


BAD_OUT = [  # buffer, error, what the message says was received
    pytest.param(np.zeros((2, 3, 8, 8)), TypeError, r"float64 \(2, 3, 8, 8\)", id="dtype"),
    pytest.param(
        np.zeros((1, 3, 8, 8), np.float32), ValueError, r"float32 \(1, 3, 8, 8\)", id="shape"
    ),
    pytest.param(
        np.zeros((2, 3, 8, 16), np.float32)[..., ::2], ValueError,
        r"float32 \(2, 3, 8, 8\), not C-contiguous", id="strided",
    ),
    pytest.param([[0.0]], TypeError, r"list", id="not-an-array"),
]  # fmt: skip


@pytest.mark.parametrize(("out", "error", "got"), BAD_OUT)
def test_rejects_bad_out(warp_with_out, out, error, got):
    expected = r"^affine_warp: out must be a C-contiguous, writeable float32 array of shape "
    with pytest.raises(error, match=expected + r"\(2, 3, 8, 8\), got " + got + "$"):
        warp_with_out(GOOD["frame"], GOOD["matrices"], GOOD["out_size"], out=out)


def test_rejects_read_only_out(warp_with_out):
    out = np.zeros((2, 3, 8, 8), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"read-only$"):
        warp_with_out(GOOD["frame"], GOOD["matrices"], GOOD["out_size"], out=out)


# --- float16 output ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "std",
    [
        pytest.param(1.0, id="normal"),
        pytest.param(1e-3, id="overflow-to-inf"),  # |values| up to 2.5e5 > 65504
        pytest.param(1e6, id="subnormal"),  # |values| <= 2.6e-4: many below 6.1e-5
        pytest.param(1e9, id="underflow-to-zero"),
    ],
)
def test_float16_is_float32_rounded_to_nearest_even(std):
    """The C++ kernel computes in float32 and rounds once to float16 (its own bit conversion):
    bit for bit numpy's astype(float16) of the float32 result, also for inf, subnormals, 0."""
    require_native()
    rng = np.random.default_rng(20)
    frame, maps = _frame(rng, 50, 60), _random_maps(rng, (50, 60), (13, 17), 4)
    kw = dict(mean=(127.0, 128.0, 129.0), std=(std, std, std), border_value=300.0)
    half = affine_warp(frame, maps, (13, 17), dtype="float16", **kw)
    single = affine_warp(frame, maps, (13, 17), **kw)
    assert half.dtype == np.float16 and half.shape == (4, 3, 13, 17)
    with np.errstate(over="ignore"):  # the overflow-to-inf case overflows on purpose
        expected = single.astype(np.float16)
    np.testing.assert_array_equal(half.view(np.uint16), expected.view(np.uint16))


def test_float16_reference_and_out():
    rng = np.random.default_rng(21)
    frame, maps = _frame(rng, 40, 30), _random_maps(rng, (40, 30), (9, 11), 3)
    kw = dict(mean=IMAGENET[0], std=IMAGENET[1])
    reference = affine_warp_reference(frame, maps, (9, 11), dtype="float16", **kw)
    assert reference.dtype == np.float16
    out = np.empty((3, 3, 9, 11), np.float16)
    got = affine_warp(frame, maps, (9, 11), dtype="float16", out=out, **kw)
    assert got is out
    # float32 (C++) vs float64 (numpy) before rounding: at most one float16 step apart.
    np.testing.assert_allclose(out, reference, rtol=1e-3, atol=1e-3)
    with pytest.raises(TypeError, match=r"out must be a C-contiguous, writeable float16 array"):
        affine_warp(frame, maps, (9, 11), dtype="float16", out=np.empty((3, 3, 9, 11), np.float32))
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float16', got 'int8'"):
        affine_warp(frame, maps, (9, 11), dtype="int8")


# --- several frames in one call ------------------------------------------------------------------


@pytest.mark.parametrize("implementation", ["native", "numpy"])
def test_multi_frame_equals_one_call_per_frame(implementation):
    if implementation == "native":
        require_native()
    fn = affine_warp if implementation == "native" else affine_warp_reference
    rng = np.random.default_rng(22)
    sizes = [(40, 50), (31, 23), (64, 48)]
    frames = [_frame(rng, *hw) for hw in sizes]
    frames[1] = frames[1][::-1]  # a negative-stride view among them
    index = np.array([2, 0, 1, 2, 0, 0], np.int64)
    maps = np.stack([_random_maps(rng, sizes[f], (10, 12), 1)[0] for f in index])
    kw = dict(mean=IMAGENET[0], std=IMAGENET[1], border_value=114.0)
    got = fn(frames, maps, (10, 12), frame_index=index, **kw)
    expected = np.concatenate(
        [fn(frames[f], maps[i : i + 1], (10, 12), **kw) for i, f in enumerate(index)]
    )
    np.testing.assert_array_equal(got, expected)


def test_multi_frame_array_form_and_matches_reference():
    require_native()
    rng = np.random.default_rng(23)
    frames = np.stack([_frame(rng, 30, 40) for _ in range(3)])  # (F, H, W, 3)
    index = np.array([1, 1, 0, 2], np.int32)
    maps = _random_maps(rng, (30, 40), (8, 9), 4)
    got = affine_warp(frames, maps, (8, 9), frame_index=index)
    np.testing.assert_allclose(
        got, affine_warp_reference(frames, maps, (8, 9), frame_index=index), rtol=0, atol=1e-4
    )
    # The native binding takes the same list the Python layer builds.
    native, _ = native_module()
    direct = native.affine_warp(
        list(frames), maps, index, 8, 9, (0, 0, 0), (1, 1, 1), True, 0.0, "float32"
    )
    np.testing.assert_array_equal(direct, got)


@pytest.mark.parametrize(
    ("frames", "index", "error", "match"),
    [
        ("two", None, ValueError, r"frame_index is required with 2 frames"),
        ("two", [0, 2], ValueError, r"frame_index\[1\] = 2 is not a frame index in \[0, 2\)"),
        ("two", [0, -1], ValueError, r"frame_index\[1\] = -1 is not a frame index"),
        ("two", [0], ValueError, r"frame_index must be an integer array of shape \(2,\)"),
        ("two", [0.0, 1.0], TypeError, r"frame_index must be an integer array"),
        ("empty", None, ValueError, r"frames must hold at least one frame"),
        ("bad-second", [0, 1], TypeError, r"frames\[1\] must be uint8 of shape \(H, W, 3\)"),
    ],
)
def test_multi_frame_rejects_bad_arguments(warp_impl, frames, index, error, match):
    rng = np.random.default_rng(24)
    good = _frame(rng, 20, 20)
    frame_list = {
        "two": [good, good],
        "empty": [],
        "bad-second": [good, good.astype(np.float32)],
    }[frames]
    maps = _random_maps(rng, (20, 20), (5, 5), 2)
    with pytest.raises(error, match=r"^affine_warp: " + match):
        warp_impl(frame_list, maps, (5, 5), frame_index=index)


@pytest.fixture(params=["native", "numpy"])
def warp_impl(request) -> Warp:
    """affine_warp (native) and affine_warp_reference, with the public signature."""
    if request.param == "native":
        require_native()
        return affine_warp
    return affine_warp_reference


def test_native_binding_rejects_bad_frame_index():
    """A direct call of rtpose._C cannot read out of bounds: it checks the indices itself."""
    require_native()
    native, _ = native_module()
    frame = np.zeros((10, 10, 3), np.uint8)
    maps = np.tile(np.eye(2, 3), (2, 1, 1))
    args = (maps, np.array([0, 5]), 4, 4, (0, 0, 0), (1, 1, 1), True, 0.0, "float32")
    with pytest.raises(ValueError, match=r"frame_index\[1\] = 5 is not a frame index in \[0, 1\)"):
        native.affine_warp([frame], *args)
    with pytest.raises(ValueError, match=r"frame_index is required with 2 frames"):
        native.affine_warp([frame, frame], maps, None, 4, 4, (0, 0, 0), (1, 1, 1), True, 0.0,
                           "float32")  # fmt: skip


def test_gpu_arrays_without_a_gpu_fail_clearly(monkeypatch):
    """A CUDA array on a machine where the GPU path cannot run: a clear error, no crash. (The
    GPU probe is told there is no GPU, so this runs on GPU machines too.)"""
    from rtpose.cuda import probe
    from rtpose.errors import BackendUnavailableError

    no_gpu = probe.GpuStatus(available=False, reason="no NVIDIA driver (test)")
    monkeypatch.setattr(probe, "gpu_status", lambda *, device=0: no_gpu)

    class FakeCudaArray:
        __cuda_array_interface__ = {  # noqa: RUF012
            "shape": (10, 10, 3), "typestr": "|u1", "data": (1 << 40, False), "version": 3,
        }  # fmt: skip

    with pytest.raises(BackendUnavailableError, match=r"^affine_warp: got a GPU array, but "):
        affine_warp(FakeCudaArray(), np.eye(2, 3), (4, 4))


# --- GPU path, checked on the CPU with the emulated GPU (tests/gpu_support.py) -----------------


def test_gpu_path_multi_frame_device_index_matrices_and_out(emulated_gpu):
    _multi_frame_device_index_matrices_and_out()
    name, args = emulated_gpu.launches[0]
    assert name == "affine_warp" and len(args[0]) == 2  # both frames in one launch


def test_gpu_path_frame_batch_views_and_stream(emulated_gpu):
    rng = np.random.default_rng(34)
    batch = np.stack([_frame(rng, 40, 50) for _ in range(3)])[:, 5:35, ::-1]  # (F, H, W, 3) view
    maps = _random_maps(rng, (30, 50), (8, 6), 4)
    index = np.array([2, 0, 1, 2], np.int32)
    kw = dict(mean=IMAGENET[0], std=IMAGENET[1], dtype="float16")
    got = affine_warp(HostCudaArray(batch), maps, (8, 6), frame_index=index, stream=5, **kw)
    assert got.stream == 5
    want = affine_warp(list(batch), maps, (8, 6), frame_index=index, **kw)
    np.testing.assert_array_equal(got.get(), want)
    ((_, args),) = emulated_gpu.launches
    assert [f[3:] for f in args[0]] == [batch.strides[1:]] * 3 and args[-1] == 5


def test_gpu_path_validates_before_launch(emulated_gpu):
    frame = HostCudaArray(np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(TypeError, match=r"affine_warp: frames must be uint8"):
        affine_warp(HostCudaArray(np.zeros((10, 12, 3), np.float32)), np.eye(2, 3), (4, 4))
    with pytest.raises(ValueError, match=r"matrices\[0\] is not invertible"):
        affine_warp(frame, np.zeros((2, 3)), (4, 4))
    with pytest.raises(ValueError, match=r"GPU frame_index must be C-contiguous int32"):
        affine_warp([frame, frame], np.eye(2, 3), (4, 4),
                    frame_index=HostCudaArray(np.zeros(1, np.int64)))  # fmt: skip
    with pytest.raises(ValueError, match=r"out must be a C-contiguous float32 GPU array"):
        affine_warp(
            frame, np.eye(2, 3), (4, 4), out=HostCudaArray(np.zeros((1, 3, 4, 5), np.float32))
        )
    assert emulated_gpu.launches == []


# --- CUDA (marker gpu: skipped without a GPU) ----------------------------------------------------


def _gpu_warp_case(rng, n=16):
    frame = _frame(rng, 300, 400)
    maps = np.concatenate(
        [
            _random_maps(rng, (300, 400), (64, 48), n // 2),
            _random_maps(rng, (300, 400), (64, 48), n - n // 2, axis_aligned=True),
        ]
    )
    return frame, maps


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("channel_order", ["rgb", "bgr"])
def test_gpu_matches_cpu_bitwise(dtype, channel_order):
    """CUDA and C++ share the per-pixel code (affine_warp_math.h) and avoid FMA contraction."""
    rng = np.random.default_rng(30)
    frame, maps = _gpu_warp_case(rng)
    kw = dict(mean=IMAGENET[0], std=IMAGENET[1], channel_order=channel_order,
              border_value=114.0, dtype=dtype)  # fmt: skip
    cpu = affine_warp(frame, maps, (64, 48), **kw)
    gpu = affine_warp(upload(frame), maps, (64, 48), **kw)
    assert isinstance(gpu, DeviceArray) and gpu.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(gpu.get(), cpu)


@pytest.mark.gpu
def test_gpu_multi_frame_device_index_matrices_and_out():
    _multi_frame_device_index_matrices_and_out()


def _multi_frame_device_index_matrices_and_out():
    rng = np.random.default_rng(31)
    frames = [_frame(rng, 120, 160), _frame(rng, 90, 70)]
    boxes = np.array([[10, 20, 60, 100], [5, 5, 50, 80], [30, 10, 150, 110.0]])
    index = np.array([0, 1, 0], np.int32)
    maps = box_to_affine(boxes, (64, 48)).forward
    cpu = affine_warp(frames, maps, (64, 48), frame_index=index)
    dev_frames = [upload(f) for f in frames]
    out = arrays.empty((3, 3, 64, 48), np.float32, device=0, stream=0)
    got = affine_warp(dev_frames, upload(maps), (64, 48), frame_index=upload(index), out=out)
    assert got is out
    np.testing.assert_array_equal(out.get(), cpu)
    # float32 device matrices and a host frame_index.
    maps32 = maps.astype(np.float32)
    got32 = affine_warp(dev_frames, upload(maps32), (64, 48), frame_index=index)
    np.testing.assert_array_equal(got32.get(), affine_warp(frames, maps32, (64, 48),
                                                           frame_index=index))  # fmt: skip


@pytest.mark.gpu
def test_gpu_edge_cases():
    rng = np.random.default_rng(32)
    frame = upload(_frame(rng, 50, 60))
    empty = affine_warp(frame, np.zeros((0, 2, 3)), (8, 8))
    assert empty.shape == (0, 3, 8, 8)
    # A singular map on the device cannot raise: its crop is the border value.
    singular = upload(np.zeros((1, 2, 3)))
    filled = affine_warp(frame, singular, (4, 5), mean=(1, 2, 3), std=(2, 2, 2), border_value=9)
    np.testing.assert_array_equal(filled.get()[0, :, 0, 0], [(9 - 1) / 2, (9 - 2) / 2, (9 - 3) / 2])
    with pytest.raises(ValueError, match=r"matrices\[0\] is not invertible"):
        affine_warp(frame, np.zeros((1, 2, 3)), (4, 5))  # host maps are checked on the host


@pytest.mark.gpu
def test_gpu_strided_frames_and_interop(cupy):
    cp = cupy
    rng = np.random.default_rng(33)
    host = _frame(rng, 200, 260)
    maps = _random_maps(rng, (100, 130), (32, 24), 6)
    view_host = host[50:150, ::-2]  # offset, negative and non-unit strides
    view_dev = cp.asarray(host)[50:150, ::-2]
    cpu = affine_warp(view_host, maps, (32, 24), dtype="float16")
    gpu = affine_warp(view_dev, maps, (32, 24), dtype="float16")
    np.testing.assert_array_equal(cp.asarray(gpu).get(), cpu)  # via __cuda_array_interface__

    class DlpackOnly:  # a producer that speaks only DLPack
        def __init__(self, array):
            self.array = array

        def __dlpack__(self, stream=None, **kwargs):
            return self.array.__dlpack__(stream=stream)

        def __dlpack_device__(self):
            return self.array.__dlpack_device__()

    contiguous = cp.ascontiguousarray(view_dev)
    via_dlpack = affine_warp(DlpackOnly(contiguous), maps, (32, 24), dtype="float16")
    np.testing.assert_array_equal(cp.from_dlpack(via_dlpack).get(), cpu)
