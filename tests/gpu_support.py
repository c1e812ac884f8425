"""The GPU helpers every test shares (the fixtures built on them are in tests/conftest.py).

- On a GPU machine: :func:`gpu_skip_reason` (why tests marked ``gpu`` are skipped here),
  :func:`require_cupy`, :func:`upload` and :func:`upload_view` (host arrays to the GPU, keeping a
  view's strides).
- On any machine: :func:`emulate_gpu`, a stand-in for ``rtpose._C.cuda`` on host memory. Device
  pointers are host addresses and every launcher runs the CPU kernel of ``rtpose._C`` on numpy
  views rebuilt from the pointers, shapes and strides it received, so the whole GPU marshalling
  of rtpose.ops (device views, streams, ``out=``, uploads) runs, and its results equal the CPU
  path's bit for bit. :class:`HostCudaArray` dresses a numpy array as a CUDA array for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest


def gpu_skip_reason() -> str | None:
    """None where the CUDA kernels can run, else why tests marked ``gpu`` are skipped."""
    from rtpose.cuda import arrays, probe

    if arrays.gpu_available():
        return None
    return f"needs a CUDA GPU and rtpose._C built with CUDA ({probe.gpu_status().reason})"


def require_cupy() -> ModuleType:
    """cupy, or skip the test."""
    return pytest.importorskip("cupy")


def upload(array: np.ndarray, *, stream: int = 0) -> Any:
    """A C-contiguous copy of ``array`` on GPU 0 (a DeviceArray)."""
    from rtpose.cuda import arrays

    return arrays.upload(np.ascontiguousarray(array), device=0, stream=stream)


def upload_view(view: np.ndarray, base: np.ndarray) -> Any:
    """A CUDA array with the shape and strides of ``view``, a view of the C-contiguous ``base``
    (which is uploaded whole)."""
    whole = upload(base)
    offset = view.ctypes.data - base.ctypes.data
    return _CaiView(whole, whole.ptr + offset, view.shape, view.dtype, view.strides)


class _CaiView:
    """``__cuda_array_interface__`` over memory that ``owner`` keeps alive."""

    def __init__(self, owner: Any, ptr: int, shape: tuple, dtype: np.dtype, strides: tuple):
        self.owner = owner
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.__cuda_array_interface__ = {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (ptr, False),
            "strides": tuple(strides),
            "version": 3,
            "stream": 1,
        }


# --- the emulated GPU ----------------------------------------------------------------------------


class HostCudaArray:
    """A numpy array posing as a CUDA array (``__cuda_array_interface__`` on host memory) for the
    emulated GPU; views keep their strides and ``host`` is the array itself."""

    def __init__(self, host: np.ndarray, *, stream: int | None = None) -> None:
        self.host = host
        self.shape, self.dtype = host.shape, host.dtype
        self.stream = stream

    @property
    def __cuda_array_interface__(self) -> dict:
        cai = {
            "shape": self.host.shape,
            "typestr": self.host.dtype.str,
            "data": (self.host.ctypes.data, False),
            "strides": self.host.strides,
            "version": 3,
        }
        if self.stream is not None:
            cai["stream"] = self.stream
        return cai


def host_view(ptr: int, shape: Any, strides: Any, dtype: Any) -> np.ndarray:
    """A numpy view of the memory at ``ptr`` (element ``strides``, any sign), written in place."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    strides = tuple(int(s) for s in strides)
    if 0 in shape:
        return np.empty(shape, dtype)
    lo = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    buffer = (ctypes.c_char * ((hi - lo + 1) * dtype.itemsize)).from_address(
        ptr + lo * dtype.itemsize
    )
    byte_strides = tuple(s * dtype.itemsize for s in strides)
    return np.ndarray(
        shape, dtype, buffer=buffer, offset=-lo * dtype.itemsize, strides=byte_strides
    )


def _row_major(shape: Any) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(tuple(shape)):
        strides.append(step)
        step *= int(size)
    return tuple(reversed(strides))


class _HostBuffer:
    """rtpose._C.cuda.DeviceBuffer on host memory (ptr 0 for an empty buffer, as on a GPU)."""

    def __init__(self, nbytes: int, device: int, stream: int) -> None:
        self._memory = np.empty(max(int(nbytes), 1), np.uint8)
        self.ptr = self._memory.ctypes.data if nbytes else 0
        self.nbytes, self.device, self.stream = int(nbytes), device, stream


class EmulatedCuda:
    """``rtpose._C.cuda`` on host memory; see the module docstring.

    Attributes:
        launches: (launcher name, its arguments) of every kernel launch, in order.
        waits: (producer, consumer, device) of every cross-stream wait.
        failures: launcher name -> message; that launcher raises RuntimeError(message), as the
            real one does for a CUDA error.
    """

    def __init__(self, cpu: ModuleType) -> None:
        self._cpu = cpu
        self.launches: list[tuple[str, tuple]] = []
        self.waits: list[tuple[int, int, int]] = []
        self.failures: dict[str, str] = {}
        self.DeviceBuffer = _HostBuffer

    # runtime ------------------------------------------------------------------------------------
    def device_count(self) -> int:
        return 1

    def device_error(self) -> str:
        return ""

    def pointer_device(self, address: int) -> int:
        return 0

    def stream_wait(self, producer: int, consumer: int, device: int) -> None:
        self.waits.append((producer, consumer, device))

    def synchronize(self, device: int, stream: int) -> None:
        pass

    def copy_from_host(self, dst: int, src: np.ndarray, device: int, stream: int) -> None:
        if src.nbytes:
            ctypes.memmove(dst, src.ctypes.data, src.nbytes)

    def copy_to_host(self, dst: np.ndarray, src: int, device: int, stream: int) -> None:
        if dst.nbytes:
            ctypes.memmove(dst.ctypes.data, src, dst.nbytes)

    # launchers ----------------------------------------------------------------------------------
    def _launch(self, name: str, args: tuple) -> None:
        self.launches.append((name, args))
        if name in self.failures:
            raise RuntimeError(self.failures[name])

    def affine_warp(self, *args: Any) -> None:
        self._launch("affine_warp", args)
        frames, frame_index, forward, forward_f64, n, out_h, out_w = args[:7]
        mean, std, rgb, border_value, out_dtype, out, _device, _stream = args[7:]
        images = [host_view(p, (h, w, 3), (sy, sx, sc), np.uint8) for p, h, w, sy, sx, sc in frames]
        maps = host_view(forward, (n, 2, 3), (6, 3, 1), np.float64 if forward_f64 else np.float32)
        index = None if frame_index == 0 else host_view(frame_index, (n,), (1,), np.int32)
        dtype = np.dtype(np.float16 if out_dtype else np.float32)
        shape = (n, 3, out_h, out_w)
        result = host_view(out, shape, _row_major(shape), dtype)
        if n:
            self._cpu.affine_warp(
                images, maps, index, out_h, out_w, mean, std, rgb, border_value, dtype.name, result
            )

    def flip_merge(self, *args: Any) -> None:
        self._launch("flip_merge", args)
        a, a_strides, b, b_strides, dtype_code, shape, flip_index, shift, out = args[:9]
        dtype = np.float16 if dtype_code else np.float32
        index = host_view(flip_index, (shape[1],), (1,), np.int32).copy()
        self._cpu.flip_merge(
            host_view(a, shape, a_strides, dtype),
            host_view(b, shape, b_strides, dtype),
            index,
            shift,
            host_view(out, shape, _row_major(shape), dtype),
        )

    def decode_heatmaps(self, *args: Any) -> None:
        self._launch("decode_heatmaps", args)
        heatmaps, dtype, shape, strides, transforms, scale_x, scale_y, mode, blur, out = args[:10]
        n, k = shape[:2]
        maps = host_view(heatmaps, shape, strides, np.float16 if dtype else np.float32)
        t = None if transforms == 0 else host_view(transforms, (n, 2, 3), (6, 3, 1), np.float64)
        result = self._cpu.decode_heatmaps(maps, t, scale_x, scale_y, mode, blur)
        host_view(out, (n, k, 3), (3 * k, 3, 1), np.float32)[...] = result


class _EmulatedNative:
    """rtpose._C with its ``cuda`` submodule replaced by an :class:`EmulatedCuda`."""

    has_cuda = True

    def __init__(self, real: ModuleType, cuda: EmulatedCuda) -> None:
        self._real = real
        self.cuda = cuda

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextlib.contextmanager
def emulate_gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedCuda]:
    """Makes rtpose see an emulated GPU (rtpose._C.cuda on host memory) for the block.

    The GPU probe's cached answers are dropped on entry and exit, so it answers from the
    emulated rtpose._C inside and from the real machine after. Skips without rtpose._C.
    """
    from rtpose import _native
    from rtpose.cuda import probe

    try:
        real = importlib.import_module("rtpose._C")
    except ImportError as exc:
        pytest.skip(f"rtpose._C is not built ({exc}); run: pip install --no-build-isolation -e .")
    cuda = EmulatedCuda(real)
    monkeypatch.setattr(_native, "load", lambda: _EmulatedNative(real, cuda))
    probe.clear_cache()
    try:
        yield cuda
    finally:
        probe.clear_cache()
