"""GPU arrays for the ops: reading any CUDA array, allocating outputs, streams, and the count of
the host<->device copies rtpose makes (:data:`transfers`).

The GPU ops take any array that speaks ``__cuda_array_interface__`` (cupy, torch, numba, DALI)
or DLPack (``__dlpack__`` / ``__dlpack_device__``), plus a CUDA stream. They hand raw device
addresses to the kernels in ``rtpose._C.cuda``, so rtpose itself needs neither cupy nor torch.
Outputs the library allocates are :class:`DeviceArray` objects, which speak both protocols
(``cupy.asarray(x)``, ``torch.from_dlpack(x)``) and come from CUDA's stream-ordered allocator:
nothing here blocks the host except :meth:`DeviceArray.get`.

Streams: ``stream`` may be None (the legacy default stream), a ``cudaStream_t`` handle as an int,
a cupy stream (``.ptr``), a torch stream (``.cuda_stream``), or any object with
``__cuda_stream__``. A stream must outlive the arrays allocated on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rtpose import _native
from rtpose.cuda import probe
from rtpose.errors import BackendUnavailableError

# DLPack device types (dlpack.h): CUDA device memory and CUDA managed memory.
_DL_CUDA = 2
_DL_CUDA_MANAGED = 13
_DL_CPU = 1
# DLPack type codes.
_DL_INT, _DL_UINT, _DL_FLOAT, _DL_BOOL = 0, 1, 2, 6


@dataclass(frozen=True)
class DeviceView:
    """A CUDA array as the kernels see it.

    Attributes:
        ptr: device address of element 0.
        shape: sizes per dimension.
        strides: steps per dimension, in elements (not bytes).
        dtype: numpy dtype of the elements.
        device: CUDA device ordinal.
        owner: the object keeping the memory alive (array or DLPack capsule).
    """

    ptr: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: np.dtype
    device: int
    owner: Any

    @property
    def c_contiguous(self) -> bool:
        expected = 1
        for size, stride in zip(reversed(self.shape), reversed(self.strides)):
            if size != 1 and stride != expected:
                return False
            expected *= size
        return True


def is_device_array(obj: object) -> bool:
    """True for arrays in CUDA memory (``__cuda_array_interface__`` or a CUDA DLPack device)."""
    if isinstance(obj, np.ndarray):
        return False
    if hasattr(obj, "__cuda_array_interface__"):
        return True
    dl_device = getattr(obj, "__dlpack_device__", None)
    if dl_device is None:
        return False
    try:
        device_type = int(dl_device()[0])
    except Exception:  # a broken producer is not a CUDA array; the CPU path reports it
        return False
    return device_type in (_DL_CUDA, _DL_CUDA_MANAGED)


def gpu_available() -> bool:
    """True when rtpose's CUDA kernels can run here: rtpose._C was built with CUDA and
    :func:`rtpose.cuda.probe.gpu_status` finds a usable device (the probe asks rtpose._C itself
    first, so the two cannot disagree)."""
    native = _native.load()
    return bool(native is not None and native.has_cuda and probe.gpu_status().available)


def cuda_ops(op: str) -> ModuleType:
    """``rtpose._C.cuda`` for a GPU call of ``op``, or BackendUnavailableError saying why."""
    native = _native.load()
    if native is None:
        raise BackendUnavailableError(
            f"{op}: GPU arrays need the native extension rtpose._C, which does not import "
            f"({_native.error()}); rebuild it: pip install --no-build-isolation -e ."
        )
    if not native.has_cuda:
        raise BackendUnavailableError(
            f"{op}: got a GPU array, but rtpose._C was built without CUDA (no nvcc at build "
            "time). Install the CUDA toolkit and rebuild (pip install --no-build-isolation -e .), "
            "or pass numpy arrays to run on the CPU."
        )
    status = probe.gpu_status()
    if not status.available:
        raise BackendUnavailableError(
            f"{op}: got a GPU array, but no CUDA device is usable ({status.reason})"
        )
    return native.cuda


def stream_handle(stream: object) -> int:
    """The ``cudaStream_t`` handle (an int) of ``stream``; None -> 0 (legacy default stream)."""
    if stream is None:
        return 0
    if isinstance(stream, int | np.integer) and not isinstance(stream, bool):
        if stream < 0:
            raise ValueError(f"stream must be a CUDA stream handle >= 0, got {stream}")
        return int(stream)
    protocol = getattr(stream, "__cuda_stream__", None)
    if protocol is not None:
        _, handle = protocol()
        return int(handle)
    for attribute in ("cuda_stream", "ptr", "handle"):  # torch, cupy, cuda-python
        value = getattr(stream, attribute, None)
        if isinstance(value, int | np.integer):
            return int(value)
    raise TypeError(
        "stream must be None, a cudaStream_t handle (int), a cupy or torch stream, or an object "
        f"with __cuda_stream__; got {type(stream).__name__}"
    )


def _cai_stream_to_handle(value: int) -> int:
    """A CUDA Array Interface / DLPack stream number -> a cudaStream_t handle (1: legacy)."""
    return 0 if value == 1 else value


def device_view(obj: object, *, op: str, name: str, stream: int = 0) -> DeviceView:
    """Reads a CUDA array without copying it.

    When the producer says its data is being written on another stream (CAI v3 ``stream``), the
    kernel's ``stream`` is made to wait for it on the device (no host synchronisation).
    """
    cuda = cuda_ops(op)
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is not None:
        return _from_cai(obj, cai, cuda, op=op, name=name, stream=stream)
    if hasattr(obj, "__dlpack__") and is_device_array(obj):
        return _from_dlpack(obj, cuda, op=op, name=name, stream=stream)
    raise TypeError(
        f"{op}: {name} must be a CUDA array (cupy, torch, DALI, or anything with "
        f"__cuda_array_interface__ / __dlpack__), got {type(obj).__name__}"
    )


def _from_cai(
    obj: object, cai: dict, cuda: ModuleType, *, op: str, name: str, stream: int
) -> DeviceView:
    shape = tuple(int(s) for s in cai["shape"])
    dtype = np.dtype(cai["typestr"])
    ptr = int(cai["data"][0])
    if cai.get("strides") is None:
        strides = _row_major(shape)
    else:
        byte_strides = [int(s) for s in cai["strides"]]
        if any(s % dtype.itemsize for s in byte_strides):
            raise ValueError(
                f"{op}: {name} has strides {tuple(byte_strides)} bytes that are not multiples of "
                f"its itemsize {dtype.itemsize}"
            )
        strides = tuple(s // dtype.itemsize for s in byte_strides)
    size = int(np.prod(shape)) if shape else 1
    device = _device_of(cuda, ptr, op=op, name=name) if size else 0
    producer = cai.get("stream")
    if producer is not None and size:
        cuda.stream_wait(_cai_stream_to_handle(int(producer)), stream, device)
    return DeviceView(ptr, shape, strides, dtype, device, obj)


def _from_dlpack(obj: object, cuda: ModuleType, *, op: str, name: str, stream: int) -> DeviceView:
    native = _native.load()
    assert native is not None  # cuda_ops() checked
    # DLPack stream numbers: 1 is the legacy default stream; 0 is not allowed.
    capsule = obj.__dlpack__(stream=stream if stream != 0 else 1)
    ptr, shape, strides, (code, bits, lanes), (device_type, device_id) = native.dlpack_info(capsule)
    if device_type not in (_DL_CUDA, _DL_CUDA_MANAGED):
        raise TypeError(f"{op}: {name} is not in CUDA memory (DLPack device type {device_type})")
    dtype = _dtype_from_dlpack(code, bits, lanes, op=op, name=name)
    return DeviceView(int(ptr), tuple(shape), tuple(strides), dtype, int(device_id), capsule)


def _dtype_from_dlpack(code: int, bits: int, lanes: int, *, op: str, name: str) -> np.dtype:
    kinds = {_DL_INT: "i", _DL_UINT: "u", _DL_FLOAT: "f", _DL_BOOL: "b"}
    if lanes != 1 or code not in kinds:
        raise TypeError(
            f"{op}: {name} has a DLPack dtype (code {code}, bits {bits}, lanes {lanes}) "
            "numpy cannot represent"
        )
    return np.dtype(f"{kinds[code]}{bits // 8}") if code != _DL_BOOL else np.dtype(bool)


def _device_of(cuda: ModuleType, ptr: int, *, op: str, name: str) -> int:
    try:
        return int(cuda.pointer_device(ptr))
    except ValueError as exc:
        raise TypeError(f"{op}: {name} is not in GPU memory ({exc})") from exc


def _row_major(shape: Sequence[int]) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(int(size), 1)
    return tuple(reversed(strides))


class DeviceArray:
    """A C-contiguous array in GPU memory, allocated by rtpose.

    Exchange it without copies: ``cupy.asarray(a)``, ``torch.as_tensor(a, device="cuda")``,
    ``torch.from_dlpack(a)``. ``get()`` copies it to a numpy array (waits for the stream).

    Attributes:
        shape, dtype, device: as for numpy, plus the CUDA device ordinal.
        stream: the cudaStream_t handle the array was allocated and written on.
    """

    def __init__(self, shape: Sequence[int], dtype: Any, *, device: int, stream: int) -> None:
        cuda = cuda_ops("DeviceArray")
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.device = int(device)
        self.stream = int(stream)
        nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self._buffer = cuda.DeviceBuffer(nbytes, self.device, self.stream)

    @property
    def ptr(self) -> int:
        return int(self._buffer.ptr)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype}, device={self.device})"

    @property
    def __cuda_array_interface__(self) -> dict:
        return {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (self.ptr, False),
            "strides": None,
            "version": 3,
            # The stream the data is written on (1 stands for the legacy default stream).
            "stream": self.stream if self.stream != 0 else 1,
        }

    def __dlpack_device__(self) -> tuple[int, int]:
        return (_DL_CUDA, self.device)

    def __dlpack__(
        self,
        *,
        stream: int | None = None,
        max_version: tuple[int, int] | None = None,
        dl_device: tuple[int, int] | None = None,
        copy: bool | None = None,
    ) -> Any:
        """A DLPack capsule; with ``stream`` (DLPack numbering) the consumer's stream is made to
        wait for ours on the device. Versioned capsules are not produced (max_version ignored)."""
        del max_version  # we only produce unversioned capsules, which every consumer accepts
        if copy:
            raise BufferError("DeviceArray.__dlpack__: copy=True is not supported")
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"DeviceArray.__dlpack__: cannot export to device {dl_device}")
        native = _native.load()
        assert native is not None
        if stream is not None and stream != -1:
            cuda_ops("DeviceArray.__dlpack__").stream_wait(
                self.stream, _cai_stream_to_handle(int(stream)), self.device
            )
        code = {"f": _DL_FLOAT, "i": _DL_INT, "u": _DL_UINT, "b": _DL_BOOL}[self.dtype.kind]
        return native.dlpack_capsule(
            self,
            self.ptr,
            list(self.shape),
            list(_row_major(self.shape)),
            code,
            self.dtype.itemsize * 8,
            _DL_CUDA,
            self.device,
        )

    def get(self) -> np.ndarray:
        """A numpy copy; waits for the work queued on the array's stream (tests, debugging)."""
        host = np.empty(self.shape, dtype=self.dtype)
        cuda_ops("DeviceArray.get").copy_to_host(host, self.ptr, self.device, self.stream)
        transfers.record("d2h", host.nbytes)
        return host


def empty(shape: Sequence[int], dtype: Any, *, device: int, stream: int) -> DeviceArray:
    """An uninitialised C-contiguous :class:`DeviceArray` allocated in ``stream``'s order."""
    return DeviceArray(shape, dtype, device=device, stream=stream)


def upload(array: np.ndarray, *, device: int, stream: int) -> DeviceArray:
    """Copies a host array to a new :class:`DeviceArray` (queued on ``stream``, no host wait)."""
    host = np.ascontiguousarray(array)
    result = DeviceArray(host.shape, host.dtype, device=device, stream=stream)
    cuda_ops("upload").copy_from_host(result.ptr, host, device, stream)
    transfers.record("h2d", host.nbytes)
    return result


def check_out(
    out: object,
    *,
    op: str,
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    device: int,
    stream: int = 0,
) -> DeviceView:
    """Validates a caller-given GPU output: C-contiguous, ``shape``, ``dtype``, on ``device``."""
    dtype = np.dtype(dtype)
    expected = f"a C-contiguous {dtype} GPU array of shape {shape} on device {device}"
    if not is_device_array(out):
        raise TypeError(f"{op}: {name} must be {expected}, got {type(out).__name__}")
    view = device_view(out, op=op, name=name, stream=stream)
    got = f"{view.dtype} {view.shape} on device {view.device}"
    if view.dtype != dtype:
        raise TypeError(f"{op}: {name} must be {expected}, got {got}")
    if view.shape != tuple(shape) or view.device != device:
        raise ValueError(f"{op}: {name} must be {expected}, got {got}")
    if not view.c_contiguous:
        raise ValueError(f"{op}: {name} must be {expected}, got a non-contiguous {got}")
    return view


def same_device(views: Sequence[DeviceView], names: Sequence[str], *, op: str) -> int:
    """The device all ``views`` share, or ValueError naming the ones that differ."""
    devices = {v.device for v in views if int(np.prod(v.shape)) > 0}
    if len(devices) > 1:
        where = ", ".join(f"{n} on device {v.device}" for n, v in zip(names, views))
        raise ValueError(f"{op}: all GPU inputs must be on one device, got {where}")
    return devices.pop() if devices else (views[0].device if views else 0)


class TransferCounter:
    """Counts the host<->device copies rtpose makes (for the stay-on-the-GPU checks).

    Every copy rtpose itself makes between host and GPU memory goes through :func:`to_host` or
    :func:`upload`, which record it here: ``counts[direction]`` copies and ``bytes[direction]``
    bytes, and ``largest[direction]`` the largest single copy (direction ``"d2h"`` or ``"h2d"``).
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.counts = {"d2h": 0, "h2d": 0}
            self.bytes = {"d2h": 0, "h2d": 0}
            self.largest = {"d2h": 0, "h2d": 0}

    def record(self, direction: str, nbytes: int) -> None:
        with self._lock:
            self.counts[direction] += 1
            self.bytes[direction] += int(nbytes)
            self.largest[direction] = max(self.largest[direction], int(nbytes))


transfers = TransferCounter()


def to_host(obj: object, *, stream: object = None) -> np.ndarray:
    """Copies a CUDA array (any producer) to a new numpy array; waits for ``stream``.

    Non-contiguous arrays are refused: copy them on the GPU first (only small results, such as
    keypoints, are meant to cross to the host).
    """
    handle = stream_handle(stream)
    view = device_view(obj, op="to_host", name="array", stream=handle)
    if not view.c_contiguous:
        raise ValueError(
            f"to_host: the array must be C-contiguous, got strides {view.strides} for shape "
            f"{view.shape}"
        )
    host = np.empty(view.shape, dtype=view.dtype)
    if host.size:
        cuda_ops("to_host").copy_to_host(host, view.ptr, view.device, handle)
    transfers.record("d2h", host.nbytes)
    return host
