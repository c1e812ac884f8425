"""rtpose.ops.decode_simcc: numpy reference, C++ kernel and CUDA kernel, held to each other.

Peak indices must be identical (the argmax rule is exact). Coordinates are compared within
1e-5: every implementation does the same float64 operations in the same order (division, then
T[0] * x + T[1] * y + T[2]) before one rounding to float32, so they are expected to be equal;
the tolerance only leaves room for a compiler that evaluates float64 differently. Scores are
peak values copied unchanged, so they are compared exactly.
"""

from __future__ import annotations

import ctypes
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from native_ext import require_native

from rtpose.ops import _device as real_device
from rtpose.ops import simcc_decode as simcc_module
from rtpose.ops._native import NativeLoader
from rtpose.ops.simcc_decode import decode_simcc, decode_simcc_reference

COORD_ATOL = 1e-5  # see the module docstring


def _native_decode(simcc_x, simcc_y, transforms=None, *, split_ratio=2.0, out=None):
    """rtpose._C.decode_simcc with the reference's signature, bypassing the Python-side checks."""
    return require_native().decode_simcc(simcc_x, simcc_y, transforms, split_ratio, out)


@pytest.fixture(params=["native", "numpy"])
def decode(request):
    """Each CPU implementation, called with decode_simcc_reference's signature (3-D inputs,
    (N, 2, 3) transforms)."""
    return _native_decode if request.param == "native" else decode_simcc_reference


@pytest.fixture
def fallback(monkeypatch) -> None:
    """Makes rtpose._C unimportable for decode_simcc and resets the once-per-process warning."""
    loader = NativeLoader("decode_simcc", simcc_module.logger, force_missing=True)
    monkeypatch.setattr(simcc_module, "_native", loader)


@pytest.fixture(params=["native", "fallback"])
def public(request):
    """decode_simcc (which takes ``out``) through each of its two CPU paths."""
    if request.param == "native":
        require_native()
    else:
        request.getfixturevalue("fallback")
    return decode_simcc


def _vectors(rng, n, k, wx, wy, dtype=np.float32):
    return (
        rng.standard_normal((n, k, wx)).astype(dtype),
        rng.standard_normal((n, k, wy)).astype(dtype),
    )


def _maps(rng, n) -> np.ndarray:
    """(n, 2, 3) crop-input -> image maps: scale, rotation, translation."""
    angle = rng.uniform(-np.pi, np.pi, n)
    scale = rng.uniform(0.5, 3.0, n)
    maps = np.empty((n, 2, 3))
    maps[:, 0, 0], maps[:, 0, 1] = scale * np.cos(angle), -scale * np.sin(angle)
    maps[:, 1, 0], maps[:, 1, 1] = scale * np.sin(angle), scale * np.cos(angle)
    maps[:, :, 2] = rng.uniform(-100, 600, (n, 2))
    return maps


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape and got.flags.c_contiguous
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[..., :2], want[..., :2], rtol=0, atol=COORD_ATOL)
    np.testing.assert_array_equal(got[..., 2], want[..., 2])


def _argmax_first(v: np.ndarray) -> np.ndarray:
    """Independent oracle of the peak rule for NaN-free vectors: numpy's argmax (first max)."""
    return np.argmax(v.astype(np.float32), axis=-1)


# --- C++ against numpy -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("with_maps", [False, True], ids=["crop", "image"])
def test_native_matches_reference(dtype, with_maps):
    require_native()
    rng = np.random.default_rng(0)
    x, y = _vectors(rng, 8, 17, 384, 512, dtype)
    if dtype == np.float16:  # a coarse grid: many ties, which must go to the first index
        x, y = np.round(x * 4).astype(dtype), np.round(y * 4).astype(dtype)
    maps = _maps(rng, 8) if with_maps else None
    got = _native_decode(x, y, maps, split_ratio=2.0)
    want = decode_simcc_reference(x, y, maps, split_ratio=2.0)
    _assert_same(got, want)
    if not with_maps:  # the coordinates are the peak indices themselves
        np.testing.assert_array_equal(got[..., 0] * 2.0, _argmax_first(x))
        np.testing.assert_array_equal(got[..., 1] * 2.0, _argmax_first(y))


def test_large_batch_uses_threads_and_matches():
    """Above the OpenMP threshold the parallel loop gives the same rows."""
    require_native()
    rng = np.random.default_rng(1)
    x, y = _vectors(rng, 64, 17, 384, 512)
    maps = _maps(rng, 64)
    _assert_same(_native_decode(x, y, maps), decode_simcc_reference(x, y, maps))


VIEWS = {
    "reversed": lambda v: v[..., ::-1],
    "step": lambda v: v[..., ::3],
    "keypoints_reversed": lambda v: v[:, ::-1],
    "batch_major_last": lambda v: np.moveaxis(np.ascontiguousarray(np.moveaxis(v, 0, -1)), -1, 0),
}


@pytest.mark.parametrize("view", VIEWS)
def test_strided_inputs(decode, view):
    """A numpy view is read through its strides: same result as its contiguous copy."""
    rng = np.random.default_rng(2)
    x, y = _vectors(rng, 4, 17, 96, 128)
    x, y = VIEWS[view](x), VIEWS[view](y)
    maps = _maps(rng, 4)
    want = decode_simcc_reference(np.ascontiguousarray(x), np.ascontiguousarray(y), maps)
    _assert_same(decode(x, y, maps), want)


def test_known_peaks_with_transform(decode):
    x = np.zeros((2, 2, 10), np.float32)
    y = np.zeros((2, 2, 8), np.float32)
    x[0, 0, 7], y[0, 0, 3] = 0.9, 0.6  # crop point (3.5, 1.5), score 0.6
    x[0, 1, 0], y[0, 1, 7] = 0.2, 0.8  # (0, 3.5), score 0.2
    x[1, 0, 9], y[1, 0, 0] = 1.5, 1.25  # (4.5, 0), score 1.25
    x[1, 1], y[1, 1] = -1.0, -1.0
    x[1, 1, 4], y[1, 1, 5] = -0.5, -0.25  # (2, 2.5), score -0.5: the location is kept
    maps = np.array(
        [
            [[2.0, 0.0, 10.0], [0.0, 3.0, 20.0]],  # scale and shift
            [[0.0, -1.0, 100.0], [1.0, 0.0, 50.0]],  # 90 degree rotation
        ]
    )
    got = decode(x, y, maps, split_ratio=2.0)
    want = np.array(
        [
            [[17.0, 24.5, 0.6], [10.0, 30.5, 0.2]],
            [[100.0, 54.5, 1.25], [97.5, 52.0, -0.5]],
        ],
        np.float32,
    )
    np.testing.assert_array_equal(got, want)
    crop = decode(x, y, None, split_ratio=2.0)
    np.testing.assert_array_equal(crop[0, 0], np.array([3.5, 1.5, 0.6], np.float32))


def test_split_ratio(decode):
    x = np.zeros((1, 1, 30), np.float32)
    y = np.zeros((1, 1, 30), np.float32)
    x[0, 0, 9], y[0, 0, 25] = 1.0, 1.0
    np.testing.assert_array_equal(decode(x, y, split_ratio=1.0)[0, 0], [9.0, 25.0, 1.0])
    want = np.array([3.0, 25 / 3, 1.0], np.float32)
    np.testing.assert_array_equal(decode(x, y, split_ratio=3.0)[0, 0], want)


def test_ties_go_to_the_first_index(decode):
    x = np.array([[[0.0, 5.0, 1.0, 5.0, 5.0]]], np.float32)
    y = np.array([[[2.0, 2.0, 2.0]]], np.float32)
    np.testing.assert_array_equal(decode(x, y, split_ratio=1.0)[0, 0], [1.0, 0.0, 2.0])


def test_nan_is_ignored(decode):
    """A NaN never wins, wherever it is, and -inf is a peak like any other value."""
    x = np.array([[[np.nan, 1.0, np.nan, 3.0, np.nan], [np.nan, -np.inf, np.nan, np.nan, -1e30]]])
    y = np.array([[[np.nan, np.nan, -np.inf], [7.0, np.nan, 7.0]]])
    got = decode(x.astype(np.float32), y.astype(np.float32), split_ratio=1.0)
    want = np.array([[3.0, 2.0, -np.inf], [4.0, 0.0, -1e30]], np.float32)
    np.testing.assert_array_equal(got[0], want)


def test_all_nan_gives_nan_row(decode):
    rng = np.random.default_rng(3)
    x, y = _vectors(rng, 2, 3, 6, 5)
    x[0, 1] = np.nan
    y[1, 2] = np.nan
    got = decode(x, y, _maps(rng, 2))
    assert np.isnan(got[0, 1]).all() and np.isnan(got[1, 2]).all()
    assert np.isnan(got).sum() == 6


def test_different_lengths_and_length_one(decode):
    rng = np.random.default_rng(4)
    for wx, wy in ((1, 1), (1, 37), (200, 3)):
        x, y = _vectors(rng, 3, 5, wx, wy)
        got = decode(x, y, split_ratio=2.0)
        np.testing.assert_array_equal(got[..., 0] * 2.0, _argmax_first(x))
        np.testing.assert_array_equal(got[..., 1] * 2.0, _argmax_first(y))
        np.testing.assert_array_equal(got[..., 2], np.minimum(x.max(-1), y.max(-1)))


def test_float16(decode):
    """float16 values are read exactly: the score is the float16 peak value."""
    rng = np.random.default_rng(5)
    x, y = _vectors(rng, 2, 17, 64, 48, np.float16)
    got = decode(x, y)
    np.testing.assert_array_equal(got[..., 2], np.minimum(x.max(-1), y.max(-1)).astype(np.float32))
    np.testing.assert_array_equal(got[..., 0] * 2, _argmax_first(x))


def test_no_crops_and_single_keypoint(decode):
    got = decode(np.zeros((0, 17, 8), np.float32), np.zeros((0, 17, 6), np.float32))
    assert got.shape == (0, 17, 3) and got.dtype == np.float32
    x = np.array([[[0.0, 2.0, 1.0]]], np.float32)
    np.testing.assert_array_equal(decode(x, x[..., ::-1], split_ratio=1.0), [[[1.0, 1.0, 2.0]]])


# --- decode_simcc: dispatch, 2-D input, broadcast transform, out, fallback --------------------


def test_dispatches_to_native():
    require_native()
    assert simcc_module._native.get() is not None
    rng = np.random.default_rng(6)
    x, y = _vectors(rng, 3, 17, 64, 48)
    maps = _maps(rng, 3)
    np.testing.assert_array_equal(decode_simcc(x, y, maps), _native_decode(x, y, maps))


def test_two_dimensional_input_and_single_transform(public):
    rng = np.random.default_rng(7)
    x, y = _vectors(rng, 1, 17, 64, 48)
    m = _maps(rng, 1)
    got = public(x[0], y[0], m[0].astype(np.float32), split_ratio=2.0)
    assert got.shape == (17, 3)
    want = decode_simcc_reference(x, y, m.astype(np.float32).astype(np.float64))[0]
    _assert_same(got, want)
    out = np.empty((17, 3), np.float32)
    assert public(x[0], y[0], m[0], out=out) is out
    _assert_same(out, decode_simcc_reference(x, y, m)[0])


def test_single_transform_is_broadcast(public):
    rng = np.random.default_rng(8)
    x, y = _vectors(rng, 4, 5, 20, 30)
    m = _maps(rng, 1)
    _assert_same(public(x, y, m[0]), decode_simcc_reference(x, y, np.repeat(m, 4, axis=0)))
    _assert_same(public(x, y, [[1, 0, 0], [0, 1, 0]]), public(x, y))  # int identity


def test_out_is_written_in_place(public):
    rng = np.random.default_rng(9)
    x, y = _vectors(rng, 3, 17, 64, 48)
    out = np.full((3, 17, 3), np.nan, np.float32)
    assert public(x, y, _maps(rng, 3), out=out) is out
    assert not np.isnan(out).any()


def test_fallback_warns_once(fallback, caplog):
    rng = np.random.default_rng(10)
    x, y = _vectors(rng, 2, 17, 64, 48)
    with caplog.at_level(logging.WARNING, logger="rtpose.ops.simcc_decode"):
        first = decode_simcc(x, y)
        decode_simcc(x, y)
    warnings = [r for r in caplog.records if r.name == "rtpose.ops.simcc_decode"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "decode_simcc uses the slower numpy reference" in message
    assert "disabled for a test" in message
    np.testing.assert_array_equal(first, decode_simcc_reference(x, y))


def test_stream_with_host_arrays_is_refused():
    x = np.zeros((1, 3, 4), np.float32)
    with pytest.raises(ValueError, match="stream applies to GPU arrays only"):
        decode_simcc(x, x, stream=0)


# --- validation --------------------------------------------------------------------------------

GX = np.zeros((2, 3, 8), np.float32)
GY = np.zeros((2, 3, 6), np.float32)
BAD_ARGS = [  # simcc_x, simcc_y, transforms, split_ratio, error, message pattern
    pytest.param(
        GX.astype(np.float64), GY.astype(np.float64), None, 2.0, TypeError,
        r"simcc_x must be float32 or float16 of shape \(N, K, L\).*, got float64 \(2, 3, 8\)",
        id="dtype",
    ),
    pytest.param(
        GX[0, 0], GY[0, 0], None, 2.0, ValueError,
        r"simcc_x must be float32 or float16 of shape \(N, K, L\).*, got float32 \(8,\)",
        id="rank",
    ),
    pytest.param(
        GX, GY[..., :0], None, 2.0, ValueError,
        r"simcc_y must be .*got float32 \(2, 3, 0\)", id="empty-vector",
    ),
    pytest.param(
        GX, GY.astype(np.float16), None, 2.0, TypeError,
        r"simcc_y must have the dtype of simcc_x \(float32 \(2, 3, 8\)\), got float16 \(2, 3, 6\)",
        id="dtype-mismatch",
    ),
    pytest.param(
        GX, GY[:, :2], None, 2.0, ValueError,
        r"simcc_y must be \(N, K, Wy\) with the N, K of simcc_x \(float32 \(2, 3, 8\)\), "
        r"got float32 \(2, 2, 6\)", id="shape-mismatch",
    ),
    pytest.param(
        GX, GY, None, 0.0, ValueError, r"split_ratio must be positive and finite, got 0.0",
        id="split-zero",
    ),
    pytest.param(
        GX, GY, None, float("nan"), ValueError,
        r"split_ratio must be positive and finite, got nan", id="split-nan",
    ),
    pytest.param(
        GX, GY, np.zeros((3, 2, 3)), 2.0, ValueError,
        r"transforms must be None or .*got float64 \(3, 2, 3\)", id="transforms-batch",
    ),
    pytest.param(
        GX, GY, np.zeros((2, 3, 3)), 2.0, ValueError,
        r"transforms must be None or .*got float64 \(2, 3, 3\)", id="transforms-shape",
    ),
    pytest.param(
        GX, GY, np.zeros((2, 2, 3), bool), 2.0, TypeError,
        r"transforms must be None or .*got bool \(2, 2, 3\)", id="transforms-dtype",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("x", "y", "maps", "ratio", "error", "match"), BAD_ARGS)
def test_rejects_bad_arguments(decode, x, y, maps, ratio, error, match):
    """Both the numpy path and a direct rtpose._C call (which must never crash) refuse."""
    with pytest.raises(error, match=r"^decode_simcc: " + match):
        decode(x, y, maps, split_ratio=ratio)


def test_rejects_non_number_split_ratio():
    with pytest.raises(TypeError, match=r"^decode_simcc: split_ratio must be a real number"):
        decode_simcc(GX, GY, split_ratio="2")


BAD_OUT = [  # buffer, error, what the message says was received
    pytest.param(np.zeros((2, 3, 3)), TypeError, r"float64 \(2, 3, 3\)", id="dtype"),
    pytest.param(np.zeros((2, 3, 2), np.float32), ValueError, r"float32 \(2, 3, 2\)", id="shape"),
    pytest.param(
        np.zeros((2, 3, 6), np.float32)[..., ::2], ValueError,
        r"float32 \(2, 3, 3\), not C-contiguous", id="strided",
    ),
    pytest.param([[0.0]], TypeError, r"list", id="not-an-array"),
]  # fmt: skip


@pytest.mark.parametrize("path", ["public", "direct"])
@pytest.mark.parametrize(("out", "error", "got"), BAD_OUT)
def test_rejects_bad_out(path, out, error, got):
    call = decode_simcc if path == "public" else _native_decode
    expected = r"^decode_simcc: out must be a C-contiguous, writeable float32 array of shape "
    with pytest.raises(error, match=expected + r"\(2, 3, 3\), got " + got + "$"):
        call(GX, GY, out=out)


def test_rejects_read_only_out(public):
    out = np.zeros((2, 3, 3), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"read-only$"):
        public(GX, GY, out=out)


def test_direct_call_with_unaligned_data_raises():
    require_native()
    raw = np.zeros(2 * 3 * 8 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(GX.shape)
    with pytest.raises(ValueError, match=r"^decode_simcc: simcc_x must be aligned"):
        _native_decode(raw, GY)
    np.testing.assert_array_equal(decode_simcc(raw, GY), decode_simcc_reference(GX, GY))


# --- GPU path, checked on the CPU with a stand-in for rtpose.ops._device -----------------------


def _host_view(ptr: int, shape, strides, dtype) -> np.ndarray:
    """A numpy view of host memory from a pointer and strides in elements."""
    dtype = np.dtype(dtype)
    lo = sum(min(0, (s - 1) * st) for s, st in zip(shape, strides) if s > 0)
    hi = sum(max(0, (s - 1) * st) for s, st in zip(shape, strides) if s > 0)
    size = (hi - lo + 1) * dtype.itemsize
    base = np.frombuffer((ctypes.c_char * size).from_address(ptr + lo * dtype.itemsize), dtype)
    return np.lib.stride_tricks.as_strided(base[-lo:], shape, [s * dtype.itemsize for s in strides])


class _FakeDeviceArray:
    """Host memory posing as a CUDA array: the launchers receive its real address."""

    def __init__(self, host: np.ndarray) -> None:
        self.host = host
        self.ptr = host.ctypes.data
        self.shape, self.dtype = host.shape, host.dtype


class _FakeCuda:
    """rtpose._C.cuda's decode_simcc, run by the CPU kernel on the memory the pointers name."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def decode_simcc(self, xp, xs, xst, yp, ys, yst, code, ratio, maps, out, device, stream):
        self.calls.append((xs, xst, ys, yst, code, ratio, maps, device, stream))
        dtype = np.float16 if code == 1 else np.float32
        n, k = xs[:2]
        _native_decode(
            _host_view(xp, xs, xst, dtype),
            _host_view(yp, ys, yst, dtype),
            None if maps == 0 else _host_view(maps, (n, 2, 3), (6, 3, 1), np.float64).copy(),
            split_ratio=ratio,
            out=_host_view(out, (n, k, 3), (3 * k, 3, 1), np.float32),
        )


@pytest.fixture
def fake_gpu(monkeypatch) -> _FakeCuda:
    require_native()
    cuda = _FakeCuda()

    def view(obj, *, op, name, stream=0):
        if not isinstance(obj, _FakeDeviceArray):
            raise TypeError(f"{op}: {name} must be a CUDA array, got {type(obj).__name__}")
        h = obj.host
        strides = tuple(s // h.itemsize for s in h.strides)
        return SimpleNamespace(
            ptr=obj.ptr, shape=h.shape, strides=strides, dtype=h.dtype, device=0, owner=obj
        )

    def check_out(out, *, op, name, shape, dtype, device, stream=0):
        v = view(out, op=op, name=name)
        if v.shape != tuple(shape) or v.dtype != dtype or not out.host.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be ... got {v.dtype} {v.shape}")
        return v

    fake = SimpleNamespace(
        is_device_array=lambda obj: isinstance(obj, _FakeDeviceArray),
        device_view=view,
        stream_handle=lambda stream: 0 if stream is None else int(stream),
        cuda_ops=lambda op: cuda,
        empty=lambda shape, dtype, *, device, stream: _FakeDeviceArray(np.empty(shape, dtype)),
        upload=lambda a, *, device, stream: _FakeDeviceArray(np.ascontiguousarray(a).copy()),
        check_out=check_out,
        same_device=real_device.same_device,
    )
    monkeypatch.setattr(simcc_module, "_device", fake)
    return cuda


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_gpu_path_passes_pointers_strides_and_maps(fake_gpu, dtype):
    rng = np.random.default_rng(11)
    x, y = _vectors(rng, 4, 17, 96, 128, dtype)
    x, y = x[:, ::-1], y[..., ::2]  # negative and step strides
    maps = _maps(rng, 4)
    got = decode_simcc(_FakeDeviceArray(x), _FakeDeviceArray(y), maps, split_ratio=1.5, stream=9)
    _assert_same(got.host, decode_simcc_reference(x, y, maps, split_ratio=1.5))
    xs, xst, ys, yst, code, ratio, maps_ptr, device, stream = fake_gpu.calls[-1]
    item = np.dtype(dtype).itemsize
    assert xs == (4, 17, 96) and xst == tuple(s // item for s in x.strides)
    assert ys == (4, 17, 64) and yst == tuple(s // item for s in y.strides)
    assert (code, ratio, device, stream) == (int(dtype == np.float16), 1.5, 0, 9)
    assert maps_ptr != 0


def test_gpu_path_identity_device_maps_and_2d(fake_gpu):
    rng = np.random.default_rng(12)
    x, y = _vectors(rng, 1, 17, 64, 48)
    got = decode_simcc(_FakeDeviceArray(x[0]), _FakeDeviceArray(y[0]))
    assert got.shape == (17, 3)
    _assert_same(got.host, decode_simcc_reference(x, y)[0])
    xs, xst, *_, maps_ptr, _, _ = fake_gpu.calls[-1]
    assert xs == (1, 17, 64) and xst == (0, 64, 1) and maps_ptr == 0
    maps = _maps(rng, 1)
    out = _FakeDeviceArray(np.empty((1, 17, 3), np.float32))
    dx, dy = _FakeDeviceArray(x), _FakeDeviceArray(y)
    assert decode_simcc(dx, dy, _FakeDeviceArray(maps), out=out) is out
    _assert_same(out.host, decode_simcc_reference(x, y, maps))
    with pytest.raises(ValueError, match=r"transforms on the GPU must be a C-contiguous float64"):
        decode_simcc(dx, dy, _FakeDeviceArray(maps.astype(np.float32)))
    # A host (2, 3) map is broadcast before the upload.
    x4, y4 = _vectors(rng, 4, 5, 20, 30)
    got = decode_simcc(_FakeDeviceArray(x4), _FakeDeviceArray(y4), maps[0])
    _assert_same(got.host, decode_simcc_reference(x4, y4, np.repeat(maps, 4, axis=0)))


def test_gpu_path_validates_before_launch(fake_gpu):
    dx = _FakeDeviceArray(GX)
    with pytest.raises(TypeError, match=r"decode_simcc: simcc_y must be a GPU array like"):
        decode_simcc(dx, GY)
    with pytest.raises(TypeError, match=r"decode_simcc: simcc_y must have the dtype of simcc_x"):
        decode_simcc(dx, _FakeDeviceArray(GY.astype(np.float16)))
    with pytest.raises(ValueError, match=r"decode_simcc: split_ratio must be positive"):
        decode_simcc(dx, _FakeDeviceArray(GY), split_ratio=-1.0)
    with pytest.raises(ValueError, match=r"decode_simcc: transforms must be None or"):
        decode_simcc(dx, _FakeDeviceArray(GY), np.zeros((3, 2, 3)))
    with pytest.raises(TypeError, match=r"decode_simcc: simcc_y must be on the host like"):
        decode_simcc(GX, _FakeDeviceArray(GY))
    empty = _FakeDeviceArray(np.zeros((0, 3, 8), np.float32))
    assert decode_simcc(empty, empty).shape == (0, 3, 3)
    assert fake_gpu.calls == []


# --- CUDA (run on a GPU machine) ---------------------------------------------------------------


def _device_module():
    from rtpose.ops import _device

    return _device


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("with_maps", [False, True], ids=["crop", "image"])
def test_cuda_matches_cpu(dtype, with_maps):
    _device = _device_module()
    rng = np.random.default_rng(20)
    # Lengths around and far above the warp size; a coarse grid gives many ties.
    for wx, wy in ((384, 512), (1, 33), (31, 32), (1000, 7)):
        x, y = _vectors(rng, 8, 17, wx, wy, dtype)
        x, y = np.round(x * 4).astype(dtype), np.round(y * 4).astype(dtype)
        x[0, 0] = np.nan  # an all-NaN vector
        y[1, 2, ::2] = np.nan
        maps = _maps(rng, 8) if with_maps else None
        dx, dy = _device.upload(x, device=0, stream=0), _device.upload(y, device=0, stream=0)
        got = decode_simcc(dx, dy, maps, split_ratio=2.0).get()
        _assert_same(got, _native_decode(x, y, maps, split_ratio=2.0))


@pytest.mark.gpu
def test_cuda_device_maps_out_and_2d():
    _device = _device_module()
    rng = np.random.default_rng(21)
    x, y = _vectors(rng, 3, 17, 64, 48)
    maps = _maps(rng, 3)
    dx, dy = _device.upload(x, device=0, stream=0), _device.upload(y, device=0, stream=0)
    out = _device.empty((3, 17, 3), np.float32, device=0, stream=0)
    dmaps = _device.upload(maps, device=0, stream=0)
    assert decode_simcc(dx, dy, dmaps, out=out) is out
    _assert_same(out.get(), _native_decode(x, y, maps))
    x0, y0 = _device.upload(x[0], device=0, stream=0), _device.upload(y[0], device=0, stream=0)
    _assert_same(decode_simcc(x0, y0, maps[0]).get(), _native_decode(x[:1], y[:1], maps[:1])[0])
