"""rtpose.ops.flip: numpy reference, C++ kernel and CUDA kernel, held to each other bitwise.

Every implementation computes (a + b) * 0.5 in float32, one rounding per step, and stores the
result in the input dtype, so results are compared bit for bit (no tolerance).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from gpu_support import HostCudaArray, upload, upload_view
from native_ext import require_native

from rtpose._native import NativeLoader
from rtpose.cuda import arrays
from rtpose.cuda.arrays import DeviceArray
from rtpose.ops import flip as flip_merge_module
from rtpose.ops.flip import flip_merge, flip_merge_reference
from rtpose.skeletons import COCO17

FLIP17 = np.array(COCO17.flip_index)


def _native_merge(heatmaps, flipped, flip_indices, *, shift=False, out=None):
    """rtpose._C.flip_merge with the reference's signature, bypassing the Python-side checks."""
    return require_native().flip_merge(heatmaps, flipped, np.asarray(flip_indices), shift, out)


@pytest.fixture(params=["native", "numpy"])
def merge(request):
    """Each CPU implementation, called with flip_merge_reference's signature (4-D inputs)."""
    return _native_merge if request.param == "native" else flip_merge_reference


@pytest.fixture
def fallback(monkeypatch) -> None:
    """Makes rtpose._C unimportable for flip_merge and resets the once-per-process warning."""
    loader = NativeLoader("flip_merge", flip_merge_module.logger, force_missing=True)
    monkeypatch.setattr(flip_merge_module, "_native", loader)


@pytest.fixture(params=["native", "fallback"])
def public(request):
    """flip_merge (which takes ``out``) through each of its two CPU paths."""
    if request.param == "native":
        require_native()
    else:
        request.getfixturevalue("fallback")
    return flip_merge


def _maps(rng, shape, dtype=np.float32) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def _assert_bitwise(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.flags.c_contiguous
    uint = np.uint16 if got.dtype == np.float16 else np.uint32
    np.testing.assert_array_equal(got.view(uint), want.view(uint))


# Views of a (2N, K, H, W) batch (or of a bigger array) that are read in place through strides.
VIEWS = {
    "halves": lambda b: (b[:3], b[3:]),
    "interleaved": lambda b: (b[0::2], b[1::2]),
    "strided_xy": lambda b: (b[:3, :, ::2, 1::2], b[3:, :, 1::2, ::2]),
    "negative": lambda b: (b[:3, :, ::-1, ::-1], b[:2:-1, ::-1]),
    "transposed_hw": lambda b: (b[:3].transpose(0, 1, 3, 2), b[3:].transpose(0, 1, 3, 2)),
}


@pytest.mark.parametrize("shift", [False, True], ids=["no_shift", "shift"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("view", VIEWS)
def test_native_matches_reference_bitwise(view, dtype, shift):
    require_native()
    batch = _maps(np.random.default_rng(0), (6, 17, 24, 18), dtype) * 4
    a, b = VIEWS[view](batch)
    want = flip_merge_reference(a, b, FLIP17, shift=shift)
    _assert_bitwise(_native_merge(a, b, FLIP17, shift=shift), want)
    # The strided view and its contiguous copy give the same bits.
    contiguous = flip_merge_reference(np.ascontiguousarray(a), np.ascontiguousarray(b), FLIP17)
    _assert_bitwise(flip_merge_reference(a, b, FLIP17), contiguous)


def test_large_batch_uses_threads_and_matches():
    """Above the OpenMP threshold (2**16 elements) the parallel loop gives the same bits."""
    require_native()
    batch = _maps(np.random.default_rng(1), (16, 17, 64, 48))
    for shift in (False, True):
        _assert_bitwise(
            _native_merge(batch[:8], batch[8:], FLIP17, shift=shift),
            flip_merge_reference(batch[:8], batch[8:], FLIP17, shift=shift),
        )


def test_float16_rounds_like_numpy():
    """Sums that land exactly halfway between two float16 values round to even (numpy astype)."""
    require_native()
    # 1 + 2**-11 is halfway between 1 and 1 + 2**-10: the mean of 1 and 1 + 2**-10 rounds to 1;
    # the mean of 1 + 2**-10 and 1 + 2**-9 is 1 + 3 * 2**-11, halfway, rounds to 1 + 2**-9.
    a = np.array([[[[1.0, 1.0 + 2**-10]]]], np.float16)
    b = np.array([[[[1.0 + 2**-9, 1.0 + 2**-10]]]], np.float16)  # flipped back: reversed
    want = np.array([[[[1.0, 1.0 + 2**-9]]]], np.float16)
    _assert_bitwise(_native_merge(a, b, [0]), want)
    _assert_bitwise(flip_merge_reference(a, b, [0]), want)


HAND_A = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.float32)[None, :, None]  # (1, 3, 1, 3)
HAND_B = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], np.float32)[None, :, None]
HAND_WANT = {
    # k=0 reads flipped[0] reversed, k=1 flipped[2] reversed, k=2 flipped[1] reversed.
    False: [[15.5, 11.0, 6.5], [47.0, 42.5, 38.0], [33.5, 29.0, 24.5]],
    # Shift: columns read [W-1, W-1, W-2] = [2, 2, 1].
    True: [[15.5, 16.0, 11.5], [47.0, 47.5, 43.0], [33.5, 34.0, 29.5]],
}


@pytest.mark.parametrize("shift", [False, True], ids=["no_shift", "shift"])
def test_hand_checked_example(merge, shift):
    got = merge(HAND_A, HAND_B, [0, 2, 1], shift=shift)
    want = np.array(HAND_WANT[shift], np.float32)[None, :, None]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shift", [False, True], ids=["no_shift", "shift"])
def test_width_one(merge, shift):
    """W = 1: the only column is its own mirror, with or without shift."""
    rng = np.random.default_rng(2)
    a, b = _maps(rng, (2, 3, 5, 1)), _maps(rng, (2, 3, 5, 1))
    want = (a + b[:, [1, 0, 2]]) * np.float32(0.5)
    _assert_bitwise(merge(a, b, [1, 0, 2], shift=shift), want)


def test_no_crops(merge):
    a = np.zeros((0, 17, 8, 6), np.float16)
    got = merge(a, a, FLIP17)
    assert got.shape == (0, 17, 8, 6) and got.dtype == np.float16


def test_single_keypoint(merge):
    rng = np.random.default_rng(3)
    a, b = _maps(rng, (2, 1, 4, 5)), _maps(rng, (2, 1, 4, 5))
    _assert_bitwise(merge(a, b, [0]), (a + b[..., ::-1]) * np.float32(0.5))


@pytest.mark.parametrize("shift", [False, True], ids=["no_shift", "shift"])
def test_three_dimensional_input(public, shift):
    """(K, H, W) maps give a (K, H, W) result equal to the batched one."""
    rng = np.random.default_rng(4)
    a, b = _maps(rng, (17, 8, 6)), _maps(rng, (17, 8, 6))
    got = public(a, b, FLIP17, shift=shift)
    _assert_bitwise(got, flip_merge_reference(a[None], b[None], FLIP17, shift=shift)[0])
    out = np.empty((17, 8, 6), np.float32)
    assert public(a, b, FLIP17, shift=shift, out=out) is out
    _assert_bitwise(out, got)


def test_flipping_twice_is_identity(merge):
    """Merging maps with their own flip (channels swapped, columns mirrored) returns them:
    flipping back undoes both, and (h + h) * 0.5 == h exactly in float32."""
    h = _maps(np.random.default_rng(5), (3, 17, 16, 12))
    flipped = h[:, FLIP17][..., ::-1]
    _assert_bitwise(merge(h, flipped, FLIP17), h)


def test_nan_passes_through(merge):
    rng = np.random.default_rng(6)
    a, b = _maps(rng, (2, 3, 4, 5)), _maps(rng, (2, 3, 4, 5))
    a[0, 1, 2, 3] = np.nan
    b[1, 2, 0, 0] = np.inf
    a[1, 1, 0, 4] = -np.inf  # meets b[1, 2, 0, 0] = inf: inf - inf is NaN
    got = merge(a, b, [0, 2, 1])
    assert np.isnan(got[0, 1, 2, 3]) and np.isnan(got[1, 1, 0, 4])
    assert np.isnan(got).sum() == 2
    np.testing.assert_array_equal(got, flip_merge_reference(a, b, [0, 2, 1]))


def test_flip_indices_forms(public):
    """Lists, tuples and any integer dtype are accepted."""
    rng = np.random.default_rng(7)
    a, b = _maps(rng, (2, 17, 4, 5)), _maps(rng, (2, 17, 4, 5))
    want = flip_merge_reference(a, b, FLIP17)
    for index in (COCO17.flip_index, list(COCO17.flip_index), FLIP17.astype(np.uint8)):
        _assert_bitwise(public(a, b, index), want)


# --- flip_merge: dispatch, out, fallback -------------------------------------------------------


def test_dispatches_to_native():
    require_native()
    assert flip_merge_module._native.get() is not None
    rng = np.random.default_rng(8)
    a, b = _maps(rng, (2, 17, 6, 5), np.float16), _maps(rng, (2, 17, 6, 5), np.float16)
    _assert_bitwise(flip_merge(a, b, FLIP17, shift=True), _native_merge(a, b, FLIP17, shift=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_out_is_written_in_place(public, dtype):
    rng = np.random.default_rng(9)
    a, b = _maps(rng, (2, 17, 6, 5), dtype), _maps(rng, (2, 17, 6, 5), dtype)
    out = np.full((2, 17, 6, 5), np.nan, dtype)
    assert public(a, b, FLIP17, shift=True, out=out) is out
    _assert_bitwise(out, flip_merge_reference(a, b, FLIP17, shift=True))


def test_fallback_warns_once(fallback, caplog):
    rng = np.random.default_rng(10)
    a, b = _maps(rng, (2, 17, 6, 5)), _maps(rng, (2, 17, 6, 5))
    with caplog.at_level(logging.WARNING, logger="rtpose.ops.flip"):
        first = flip_merge(a, b, FLIP17)
        flip_merge(a, b, FLIP17)
    warnings = [r for r in caplog.records if r.name == "rtpose.ops.flip"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "flip_merge uses the slower numpy reference" in message
    assert "disabled for a test" in message
    _assert_bitwise(first, flip_merge_reference(a, b, FLIP17))


def test_stream_with_host_arrays_is_refused():
    a = np.zeros((1, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="stream applies to GPU arrays only"):
        flip_merge(a, a, [0, 1, 2], stream=0)


# --- validation --------------------------------------------------------------------------------

GOOD = np.zeros((2, 3, 4, 5), np.float32)
BAD_ARGS = [  # heatmaps, flipped, flip_indices, error, message pattern
    pytest.param(
        GOOD.astype(np.float64), GOOD.astype(np.float64), [0, 2, 1], TypeError,
        r"heatmaps must be float32 or float16 of shape \(N, K, H, W\).*, got float64 "
        r"\(2, 3, 4, 5\)", id="dtype",
    ),
    pytest.param(
        GOOD[0, 0], GOOD[0, 0], [0, 2, 1], ValueError,
        r"heatmaps must be float32 or float16 of shape \(N, K, H, W\).*, got float32 \(4, 5\)",
        id="rank",
    ),
    pytest.param(
        GOOD[..., :0], GOOD[..., :0], [0, 2, 1], ValueError,
        r"heatmaps must be .*got float32 \(2, 3, 4, 0\)", id="width-zero",
    ),
    pytest.param(
        GOOD, GOOD.astype(np.float16), [0, 2, 1], TypeError,
        r"flipped must have the dtype of heatmaps \(float32 \(2, 3, 4, 5\)\), "
        r"got float16 \(2, 3, 4, 5\)", id="dtype-mismatch",
    ),
    pytest.param(
        GOOD, GOOD[:, :, :, :4], [0, 2, 1], ValueError,
        r"flipped must have the shape of heatmaps \(float32 \(2, 3, 4, 5\)\), "
        r"got float32 \(2, 3, 4, 4\)", id="shape-mismatch",
    ),
    pytest.param(
        GOOD, GOOD, [0, 2], ValueError,
        r"flip_indices must be an integer array of shape \(3,\) \(a permutation of range\(K\)\), "
        r"got int64 \(2,\)", id="length",
    ),
    pytest.param(
        GOOD, GOOD, [0.0, 2.0, 1.0], TypeError,
        r"flip_indices must be an integer array of shape \(3,\).*got float64 \(3,\)",
        id="float-indices",
    ),
    pytest.param(
        GOOD, GOOD, [0, 3, 1], ValueError,
        r"flip_indices must be a permutation of range\(3\), got 3 at position 1",
        id="out-of-range",
    ),
    pytest.param(
        GOOD, GOOD, [0, -1, 1], ValueError,
        r"flip_indices must be a permutation of range\(3\), got -1 at position 1", id="negative",
    ),
    pytest.param(
        GOOD, GOOD, [1, 2, 1], ValueError,
        r"flip_indices must be a permutation of range\(3\), got 1 twice \(positions 0 and 2\)",
        id="duplicate",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("heatmaps", "flipped", "index", "error", "match"), BAD_ARGS)
def test_rejects_bad_arguments(merge, heatmaps, flipped, index, error, match):
    """Both the numpy path and a direct rtpose._C call (which must never crash) refuse."""
    with pytest.raises(error, match=r"^flip_merge: " + match):
        merge(heatmaps, flipped, index)


BAD_OUT = [  # buffer, error, what the message says was received
    pytest.param(np.zeros((2, 3, 4, 5)), TypeError, r"float64 \(2, 3, 4, 5\)", id="dtype"),
    pytest.param(
        np.zeros((1, 3, 4, 5), np.float32), ValueError, r"float32 \(1, 3, 4, 5\)", id="shape"
    ),
    pytest.param(
        np.zeros((2, 3, 4, 10), np.float32)[..., ::2], ValueError,
        r"float32 \(2, 3, 4, 5\), not C-contiguous", id="strided",
    ),
    pytest.param([[0.0]], TypeError, r"list", id="not-an-array"),
]  # fmt: skip


@pytest.mark.parametrize("path", ["public", "direct"])
@pytest.mark.parametrize(("out", "error", "got"), BAD_OUT)
def test_rejects_bad_out(path, out, error, got):
    call = flip_merge if path == "public" else _native_merge
    expected = r"^flip_merge: out must be a C-contiguous, writeable float32 array of shape "
    with pytest.raises(error, match=expected + r"\(2, 3, 4, 5\), got " + got + "$"):
        call(GOOD, GOOD, [0, 2, 1], out=out)


def test_rejects_read_only_out(public):
    out = np.zeros_like(GOOD)
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"read-only$"):
        public(GOOD, GOOD, [0, 2, 1], out=out)


def test_direct_call_with_unaligned_strides_raises():
    """Byte strides that are not whole elements are refused by the binding, not read wrongly."""
    require_native()
    raw = np.zeros(2 * 3 * 4 * 5 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(GOOD.shape)
    with pytest.raises(ValueError, match=r"^flip_merge: heatmaps must be aligned"):
        _native_merge(raw, GOOD, [0, 2, 1])
    # The public function copies such rare views instead.
    _assert_bitwise(flip_merge(raw, GOOD, [0, 2, 1]), flip_merge_reference(GOOD, GOOD, [0, 2, 1]))


# --- GPU path, checked on the CPU with the emulated GPU (tests/gpu_support.py) -----------------


def _launch_args(emulated_gpu):
    """(a_strides, b_strides, dtype_code, shape, shift, device, stream) of the last launch."""
    name, (_, sa, _, sb, code, shape, _, shift, _, device, stream) = emulated_gpu.launches[-1]
    assert name == "flip_merge"
    return sa, sb, code, shape, shift, device, stream


@pytest.mark.parametrize("shift", [False, True], ids=["no_shift", "shift"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_gpu_path_passes_pointers_strides_and_index(emulated_gpu, dtype, shift):
    batch = _maps(np.random.default_rng(11), (6, 17, 10, 8), dtype)
    a, b = batch[:3, :, ::-1, ::2], batch[3:, :, :, ::2]  # negative and step strides
    got = flip_merge(HostCudaArray(a), HostCudaArray(b), FLIP17, shift=shift, stream=7)
    assert isinstance(got, DeviceArray) and got.stream == 7
    _assert_bitwise(got.get(), flip_merge_reference(a, b, FLIP17, shift=shift))
    (sa, sb, code, shape, shift_arg, device, stream) = _launch_args(emulated_gpu)
    item = np.dtype(dtype).itemsize
    assert sa == tuple(s // item for s in a.strides) and sb == tuple(s // item for s in b.strides)
    assert code == (1 if dtype == np.float16 else 0)
    assert (shape, shift_arg, device, stream) == ((3, 17, 10, 4), shift, 0, 7)


def test_gpu_path_three_dimensional_and_out(emulated_gpu):
    rng = np.random.default_rng(12)
    a, b = _maps(rng, (17, 6, 5)), _maps(rng, (17, 6, 5))
    out = HostCudaArray(np.empty((17, 6, 5), np.float32))
    assert flip_merge(HostCudaArray(a), HostCudaArray(b), FLIP17, out=out) is out
    _assert_bitwise(out.host, flip_merge_reference(a, b, FLIP17))
    sa, _, _, shape, *_ = _launch_args(emulated_gpu)
    assert shape == (1, 17, 6, 5) and sa == (0, 30, 5, 1)


def test_gpu_path_device_flip_indices(emulated_gpu):
    rng = np.random.default_rng(13)
    a, b = _maps(rng, (2, 17, 6, 5)), _maps(rng, (2, 17, 6, 5))
    index = HostCudaArray(FLIP17.astype(np.int32))
    got = flip_merge(HostCudaArray(a), HostCudaArray(b), index)
    _assert_bitwise(got.get(), flip_merge_reference(a, b, FLIP17))
    with pytest.raises(ValueError, match=r"flip_indices on the GPU must be a contiguous int32"):
        flip_merge(HostCudaArray(a), HostCudaArray(b), HostCudaArray(FLIP17))


def test_gpu_path_validates_before_launch(emulated_gpu):
    a = HostCudaArray(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(TypeError, match=r"flip_merge: flipped must be a GPU array like heatmaps"):
        flip_merge(a, GOOD, [0, 2, 1])
    with pytest.raises(TypeError, match=r"flip_merge: flipped must have the dtype of heatmaps"):
        flip_merge(a, HostCudaArray(GOOD.astype(np.float16)), [0, 2, 1])
    with pytest.raises(ValueError, match=r"flip_merge: flipped must have the shape of heatmaps"):
        flip_merge(a, HostCudaArray(GOOD[:1]), [0, 2, 1])
    with pytest.raises(ValueError, match=r"got 1 twice"):
        flip_merge(a, a, [1, 2, 1])
    with pytest.raises(TypeError, match=r"flip_merge: flipped must be on the host like heatmaps"):
        flip_merge(GOOD, a, [0, 2, 1])
    assert emulated_gpu.launches == []


def test_gpu_path_empty_batch_launches_nothing(emulated_gpu):
    a = HostCudaArray(np.zeros((0, 17, 4, 5), np.float16))
    got = flip_merge(a, a, FLIP17)
    assert got.shape == (0, 17, 4, 5) and emulated_gpu.launches == []


# --- CUDA (run on a GPU machine) ---------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("shift", [False, True], ids=["no_shift", "shift"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_cuda_matches_cpu_bitwise(dtype, shift):
    batch = _maps(np.random.default_rng(20), (16, 17, 64, 48), dtype) * 4
    a, b = batch[:8], batch[8:]
    want = _native_merge(a, b, FLIP17, shift=shift)
    got = flip_merge(upload_view(a, batch), upload_view(b, batch), FLIP17, shift=shift)
    _assert_bitwise(got.get(), want)


@pytest.mark.gpu
@pytest.mark.parametrize("view", VIEWS)
def test_cuda_strided_views(view):
    batch = _maps(np.random.default_rng(21), (6, 17, 24, 18), np.float16)
    a, b = VIEWS[view](batch)
    got = flip_merge(upload_view(a, batch), upload_view(b, batch), FLIP17, shift=True)
    _assert_bitwise(got.get(), _native_merge(a, b, FLIP17, shift=True))


@pytest.mark.gpu
def test_cuda_out_and_device_indices():
    rng = np.random.default_rng(22)
    a, b = _maps(rng, (3, 17, 16, 12)), _maps(rng, (3, 17, 16, 12))
    da, db = upload(a), upload(b)
    out = arrays.empty(a.shape, np.float32, device=0, stream=0)
    index = upload(FLIP17.astype(np.int32))
    assert flip_merge(da, db, index, shift=True, out=out) is out
    _assert_bitwise(out.get(), _native_merge(a, b, FLIP17, shift=True))
    # (K, H, W) and an empty batch.
    got = flip_merge(upload(a[0]), upload(b[0]), FLIP17)
    _assert_bitwise(got.get(), _native_merge(a[:1], b[:1], FLIP17)[0])
    empty = upload(np.zeros((0, 17, 4, 4), np.float32))
    assert flip_merge(empty, empty, FLIP17).get().shape == (0, 17, 4, 4)
