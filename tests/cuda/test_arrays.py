"""rtpose.cuda.arrays: reading CUDA arrays, DLPack in and out, streams, clear errors without a GPU.

The DLPack code of rtpose._C makes no CUDA call, so it is tested here with numpy's CPU tensors.
"""

from __future__ import annotations

import gc
import importlib
import types

import numpy as np
import pytest

from rtpose.cuda import arrays as _device
from rtpose.errors import BackendUnavailableError


def _native():
    try:
        return importlib.import_module("rtpose._C")
    except ImportError as exc:
        pytest.skip(f"rtpose._C is not built ({exc})")


class _Cai:
    def __init__(self, **cai):
        self.__cuda_array_interface__ = cai


class _DlpackOnly:
    def __init__(self, device_type):
        self._device_type = device_type

    def __dlpack__(self, stream=None):
        raise AssertionError("not called by is_device_array")

    def __dlpack_device__(self):
        return (self._device_type, 0)


def test_is_device_array():
    assert not _device.is_device_array(np.zeros(3))
    assert not _device.is_device_array([1, 2])
    assert _device.is_device_array(_Cai(shape=(1,), typestr="<f4", data=(0, False), version=3))
    assert _device.is_device_array(_DlpackOnly(2))  # kDLCUDA
    assert _device.is_device_array(_DlpackOnly(13))  # kDLCUDAManaged
    assert not _device.is_device_array(_DlpackOnly(1))  # kDLCPU


def test_stream_handle():
    assert _device.stream_handle(None) == 0
    assert _device.stream_handle(12345) == 12345
    assert _device.stream_handle(np.int64(7)) == 7
    assert _device.stream_handle(types.SimpleNamespace(ptr=99)) == 99  # cupy
    assert _device.stream_handle(types.SimpleNamespace(cuda_stream=42)) == 42  # torch

    class Protocol:
        def __cuda_stream__(self):
            return (0, 77)

    assert _device.stream_handle(Protocol()) == 77
    with pytest.raises(TypeError, match=r"stream must be None, a cudaStream_t handle .*got str"):
        _device.stream_handle("default")
    with pytest.raises(ValueError, match=r"stream must be a CUDA stream handle >= 0, got -1"):
        _device.stream_handle(-1)


def test_dlpack_info_reads_numpy_capsules_without_consuming_them():
    native = _native()
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    view = base[1:, ::2]  # offset and strided: (3, 3), element strides (6, 2)
    capsule = view.__dlpack__()
    ptr, shape, strides, dtype, device = native.dlpack_info(capsule)
    assert ptr == view.ctypes.data
    assert (tuple(shape), tuple(strides)) == ((3, 3), (6, 2))
    assert tuple(dtype) == (2, 32, 1)  # float, 32 bits, 1 lane
    assert tuple(device) == (1, 0)  # kDLCPU
    with pytest.raises(ValueError, match=r"not an unconsumed DLPack capsule"):
        native.dlpack_info(_consumed_capsule())


def _consumed_capsule():
    """A capsule numpy has consumed (renamed to used_dltensor)."""
    a = np.zeros(3)
    holder = types.SimpleNamespace()
    capsule = a.__dlpack__()

    class Producer:
        def __dlpack__(self, stream=None, **kwargs):
            return capsule

        def __dlpack_device__(self):
            return (1, 0)

    holder.array = np.from_dlpack(Producer())
    return capsule


def test_dlpack_capsule_round_trip_keeps_the_owner_alive():
    native = _native()
    owner = np.arange(12, dtype=np.int16).reshape(3, 4)
    data = owner.ctypes.data

    class Producer:
        def __init__(self, capsule):
            self.capsule = capsule

        def __dlpack__(self, stream=None, **kwargs):
            return self.capsule

        def __dlpack_device__(self):
            return (1, 0)

    imported = np.from_dlpack(
        Producer(native.dlpack_capsule(owner, data, [3, 4], [4, 1], 0, 16, 1, 0))
    )
    assert imported.dtype == np.int16 and imported.shape == (3, 4)
    assert imported.ctypes.data == data  # shared, not copied
    np.testing.assert_array_equal(imported, np.arange(12).reshape(3, 4))
    del owner
    gc.collect()
    np.testing.assert_array_equal(imported, np.arange(12).reshape(3, 4))  # still alive
    # An unconsumed capsule releases its owner when collected (no leak, no crash).
    capsule = native.dlpack_capsule(imported, data, [12], [1], 0, 16, 1, 0)
    del capsule
    gc.collect()


def test_cuda_ops_says_why_the_gpu_path_is_unavailable(monkeypatch, fresh_gpu_probe):
    monkeypatch.setattr(_device._native, "load", lambda: None)
    monkeypatch.setattr(_device._native, "error", lambda: "ImportError: no _C")
    with pytest.raises(BackendUnavailableError, match=r"op: GPU arrays need the native extension"):
        _device.cuda_ops("op")

    cpu_only = types.SimpleNamespace(has_cuda=False)
    monkeypatch.setattr(_device._native, "load", lambda: cpu_only)
    with pytest.raises(BackendUnavailableError, match=r"built without CUDA .*numpy arrays"):
        _device.cuda_ops("op")

    no_device = types.SimpleNamespace(
        has_cuda=True,
        cuda=types.SimpleNamespace(device_count=lambda: 0, device_error=lambda: "no driver"),
    )
    monkeypatch.setattr(_device._native, "load", lambda: no_device)
    # The reason is the one GPU probe's (rtpose.cuda.probe), which asked this rtpose._C.
    match = r"no CUDA device is usable \(CUDA runtime: no driver\)"
    with pytest.raises(BackendUnavailableError, match=match):
        _device.cuda_ops("op")
    assert not _device.gpu_available()


def test_built_with_cuda_imports_without_a_gpu():
    """CI compiles the CUDA kernels: the module must import on a machine without a driver."""
    native = _native()
    if not native.has_cuda:
        pytest.skip("rtpose._C was built without CUDA (no nvcc)")
    count = native.cuda.device_count()
    assert count >= 0
    if count == 0:
        assert native.cuda.device_error() != ""


@pytest.mark.gpu  # device_view reads CUDA pointer attributes
def test_device_view_rejects_host_arrays():
    with pytest.raises(TypeError, match=r"op: x must be a CUDA array"):
        _device.device_view(np.zeros(3), op="op", name="x")


def test_view_contiguity():
    view = _device.DeviceView(0, (2, 3), (3, 1), np.dtype(np.float32), 0, None)
    assert view.c_contiguous
    assert not _device.DeviceView(0, (2, 3), (1, 2), np.dtype(np.float32), 0, None).c_contiguous
    assert _device.DeviceView(0, (1, 3), (99, 1), np.dtype(np.float32), 0, None).c_contiguous
