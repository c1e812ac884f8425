"""How every op reaches its kernels: the CPU/GPU dispatch and the GPU marshalling, written once.

Each op in rtpose.ops validates its arguments in Python (rtpose/ops/_checks.py and the op's own
checks), then runs through this module:

- host arrays: :func:`host_call` runs the C++ kernel of ``rtpose._C``, or the op's numpy
  reference (the fallback, with one warning) when the extension is missing;
- GPU arrays: a :class:`GpuCall` reads the inputs in place (device views, waiting on the device
  for the producer's stream), checks or allocates ``out``, uploads small host parameters on the
  call's stream and keeps them alive until the launch is queued, then launches the kernel of
  ``rtpose._C.cuda``.

Both paths turn a failure inside the extension (pybind11 raises RuntimeError for a C++
``std::runtime_error`` or a CUDA error) into :class:`rtpose.errors.KernelError` naming the op,
chained to the original error. ValueError and TypeError from the bindings are argument errors
and pass unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from rtpose._native import NativeLoader
from rtpose.cuda import arrays
from rtpose.cuda.arrays import DeviceView
from rtpose.errors import KernelError

T = TypeVar("T")


@contextlib.contextmanager
def kernel_errors(op: str) -> Iterator[None]:
    """Re-raises a RuntimeError of the native extension as KernelError naming ``op``."""
    try:
        yield
    except RuntimeError as exc:
        if type(exc) is not RuntimeError:  # RecursionError, NotImplementedError: Python's own
            raise
        raise KernelError(f"{op}: the native kernel failed: {exc}") from exc


def host_call(loader: NativeLoader, native: Callable[[Any], T], reference: Callable[[], T]) -> T:
    """``native(rtpose._C)`` when the extension imports, else ``reference()`` (warning once).

    ``native`` and ``reference`` receive validated arguments; only ``native`` can fail with a
    KernelError.
    """
    module = loader.get()
    if module is None:
        loader.warn_fallback()
        return reference()
    with kernel_errors(loader.op):
        return native(module)


def host_result(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``result``, or the caller's validated ``out`` holding it (no copy when a kernel already
    wrote into ``out``)."""
    if out is None:
        return result
    if not np.may_share_memory(result, out):
        out[...] = result
    return out


class GpuCall:
    """One call of an op on GPU arrays; nothing in it waits for the device.

    Args:
        op: the op's name, for error messages.
        stream: the caller's stream (None, a ``cudaStream_t`` int, a cupy or torch stream, or
            anything with ``__cuda_stream__``); see :func:`rtpose.cuda.arrays.stream_handle`.

    Raises:
        BackendUnavailableError: rtpose._C has no CUDA kernels, or no GPU is usable here.
    """

    def __init__(self, op: str, stream: object) -> None:
        self.op = op
        with kernel_errors(op):
            self._cuda = arrays.cuda_ops(op)
        self.stream = arrays.stream_handle(stream)
        self._keep: list[arrays.DeviceArray] = []

    def view(self, obj: object, name: str) -> DeviceView:
        """A CUDA array read in place; the call's stream waits for the producer's, if any."""
        with kernel_errors(self.op):
            return arrays.device_view(obj, op=self.op, name=name, stream=self.stream)

    def same_device(self, views: Sequence[DeviceView], names: Sequence[str]) -> int:
        """The device every non-empty view is on (ValueError naming them when they differ)."""
        return arrays.same_device(views, names, op=self.op)

    def parameter(
        self,
        value: object,
        name: str,
        *,
        device: int,
        check: Callable[[DeviceView], None],
        host: Callable[[Any], np.ndarray],
    ) -> int:
        """Device address of a parameter array (maps, indices): a CUDA array is used in place
        after ``check(view)`` (it must be on ``device``); anything else is converted and
        validated by ``host`` and uploaded on the call's stream."""
        if arrays.is_device_array(value):
            view = self.view(value, name)
            check(view)
            if int(np.prod(view.shape)) > 0 and view.device != device:
                raise ValueError(
                    f"{self.op}: {name} must be on device {device} like the other GPU inputs, "
                    f"got device {view.device}"
                )
            return view.ptr
        return self.upload(host(value), device=device)

    def upload(self, host: np.ndarray, *, device: int) -> int:
        """Copies ``host`` to the GPU on the call's stream; kept alive until :meth:`launch`."""
        with kernel_errors(self.op):
            uploaded = arrays.upload(host, device=device, stream=self.stream)
        self._keep.append(uploaded)
        return uploaded.ptr

    def output(
        self, out: object, *, shape: tuple[int, ...], dtype: Any, device: int
    ) -> tuple[Any, int]:
        """(result, device address): the caller's ``out`` once checked (C-contiguous, shape,
        dtype, device), or a new :class:`~rtpose.cuda.arrays.DeviceArray` on the call's stream."""
        with kernel_errors(self.op):
            if out is None:
                result = arrays.empty(shape, dtype, device=device, stream=self.stream)
                return result, result.ptr
            view = arrays.check_out(
                out, op=self.op, name="out", shape=shape, dtype=dtype, device=device,
                stream=self.stream,
            )  # fmt: skip
        return out, view.ptr

    def launch(self, kernel: str, *args: Any, device: int) -> None:
        """Queues ``rtpose._C.cuda.<kernel>(*args, device, stream)``; then releases the uploaded
        parameters (their memory is freed in stream order, after the kernel has read it)."""
        try:
            with kernel_errors(self.op):
                getattr(self._cuda, kernel)(*args, device, self.stream)
        finally:
            self._keep.clear()
