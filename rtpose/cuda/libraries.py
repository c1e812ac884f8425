"""The array library (cupy or torch) that holds the TensorRT backend's GPU buffers, streams and
CUDA graphs, behind one interface: :class:`ArrayLibrary`.

TensorRT takes raw device addresses and a ``cudaStream_t``; something must own the memory. rtpose
does not depend on either library: :func:`array_library` picks cupy when installed (it is the
lighter one), else torch, and both are driven through the same small interface here so the
backend has one code path. Arrays of either library speak DLPack / ``__cuda_array_interface__``,
so callers can exchange them without copies.

Not to be confused with :class:`rtpose.cuda.arrays.DeviceArray`, one GPU array that rtpose's own
kernels allocate without any array library.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np

ArrayLibName = Literal["auto", "cupy", "torch"]


def _import(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def array_library(prefer: ArrayLibName = "auto", *, device: int = 0) -> ArrayLibrary:
    """The array library the TensorRT backend allocates with.

    Raises:
        ImportError: neither cupy nor torch (with CUDA) is installed, naming the pip commands.
        ValueError: ``prefer`` is not one of "auto", "cupy", "torch".
    """
    if prefer not in ("auto", "cupy", "torch"):
        raise ValueError(f"array library must be 'auto', 'cupy' or 'torch', got {prefer!r}")
    if prefer in ("auto", "cupy"):
        cupy = _import("cupy")
        if cupy is not None:
            return CupyLibrary(cupy, device)
        if prefer == "cupy":
            raise ImportError(
                "the TensorRT backend was asked to use cupy, which is not installed: "
                "pip install cupy-cuda13x (or cupy-cuda12x for a CUDA 12 driver)"
            )
    torch = _import("torch")
    if torch is not None and torch.cuda.is_available():
        return TorchLibrary(torch, device)
    raise ImportError(
        "the TensorRT backend needs cupy or a CUDA build of torch to hold GPU buffers; "
        "install one: pip install cupy-cuda13x"
        + ("" if torch is None else f" (torch {torch.__version__} is installed without CUDA)")
    )


class ArrayLibrary(abc.ABC):
    """One array library driven through the operations the TensorRT backend needs (one
    subclass per library: :class:`CupyLibrary`, :class:`TorchLibrary`)."""

    name: str

    def __init__(self, module: Any, device: int) -> None:
        self.xp = module
        self.device = device

    # streams -----------------------------------------------------------------------------
    @abc.abstractmethod
    def new_stream(self) -> tuple[Any, int]:
        """A new non-blocking stream and its ``cudaStream_t`` handle."""

    @abc.abstractmethod
    def external_stream(self, handle: int) -> Any:
        """Wraps a caller's ``cudaStream_t`` (not owned: never destroyed here)."""

    @abc.abstractmethod
    def on(self, stream: Any) -> contextlib.AbstractContextManager:
        """Makes ``stream`` current, so that allocations and copies are ordered on it."""

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    # arrays ------------------------------------------------------------------------------
    @abc.abstractmethod
    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any: ...

    @abc.abstractmethod
    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> Any: ...

    @abc.abstractmethod
    def upload(self, host: np.ndarray) -> Any:
        """Host -> device on the current stream."""

    @abc.abstractmethod
    def download(self, array: Any, stream: Any) -> np.ndarray:
        """Device -> host; waits for ``stream``."""

    @abc.abstractmethod
    def wrap(self, obj: Any) -> Any:
        """A zero-copy view of a caller's CUDA array (CAI or DLPack) as this library's array."""

    @abc.abstractmethod
    def ptr(self, array: Any) -> int: ...

    @abc.abstractmethod
    def dtype(self, array: Any) -> np.dtype: ...

    @abc.abstractmethod
    def is_contiguous(self, array: Any) -> bool: ...

    @abc.abstractmethod
    def contiguous_as(self, array: Any, dtype: np.dtype) -> Any:
        """A C-contiguous copy with ``dtype`` (on the current stream)."""

    def copy_into(self, dst: Any, src: Any) -> None:
        """``dst[:len(src)] = src`` on the current stream."""
        dst[: src.shape[0]] = src

    @abc.abstractmethod
    def copy(self, array: Any) -> Any: ...

    # graphs ------------------------------------------------------------------------------
    @abc.abstractmethod
    def capture(self, stream: Any, launch: Callable[[], None]) -> Any:
        """Captures what ``launch`` queues on ``stream`` into a CUDA graph."""

    @abc.abstractmethod
    def replay(self, graph: Any, stream: Any) -> None: ...


class CupyLibrary(ArrayLibrary):
    name = "cupy"

    def __init__(self, module: Any, device: int) -> None:
        super().__init__(module, device)
        module.cuda.Device(device).use()

    def new_stream(self) -> tuple[Any, int]:
        with self.xp.cuda.Device(self.device):
            stream = self.xp.cuda.Stream(non_blocking=True)
        return stream, int(stream.ptr)

    def external_stream(self, handle: int) -> Any:
        return self.xp.cuda.ExternalStream(handle, self.device)

    @contextlib.contextmanager
    def on(self, stream: Any) -> Iterator[None]:
        with self.xp.cuda.Device(self.device), stream:
            yield

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.xp.zeros(shape, dtype=dtype)

    def upload(self, host: np.ndarray) -> Any:
        array = self.xp.empty(host.shape, dtype=host.dtype)
        array.set(np.ascontiguousarray(host))  # on the current stream
        return array

    def download(self, array: Any, stream: Any) -> np.ndarray:
        host = array.get(stream=stream)
        stream.synchronize()
        return host

    def wrap(self, obj: Any) -> Any:
        if isinstance(obj, self.xp.ndarray):
            return obj
        if hasattr(obj, "__cuda_array_interface__"):
            return self.xp.asarray(obj)  # zero-copy view
        return self.xp.from_dlpack(obj)

    def ptr(self, array: Any) -> int:
        return int(array.data.ptr)

    def dtype(self, array: Any) -> np.dtype:
        return np.dtype(array.dtype)

    def is_contiguous(self, array: Any) -> bool:
        return bool(array.flags.c_contiguous)

    def contiguous_as(self, array: Any, dtype: np.dtype) -> Any:
        return self.xp.ascontiguousarray(array.astype(dtype, copy=False))

    def copy(self, array: Any) -> Any:
        return array.copy()

    def capture(self, stream: Any, launch: Callable[[], None]) -> Any:
        with self.xp.cuda.Device(self.device):
            stream.begin_capture()
            try:
                launch()
            finally:
                graph = stream.end_capture()  # always end, or the stream stays unusable
        return graph

    def replay(self, graph: Any, stream: Any) -> None:
        graph.launch(stream=stream)


_TORCH_DTYPES = {
    "float32": "float32",
    "float16": "float16",
    "int8": "int8",
    "uint8": "uint8",
    "int32": "int32",
    "int64": "int64",
    "bool": "bool",
}


class TorchLibrary(ArrayLibrary):
    name = "torch"

    def __init__(self, module: Any, device: int) -> None:
        super().__init__(module, device)
        module.cuda.set_device(device)
        self._device = module.device("cuda", device)

    def _torch_dtype(self, dtype: np.dtype) -> Any:
        name = _TORCH_DTYPES.get(np.dtype(dtype).name)
        if name is None:
            raise TypeError(f"no torch dtype for numpy {np.dtype(dtype)}")
        return getattr(self.xp, name)

    def new_stream(self) -> tuple[Any, int]:
        stream = self.xp.cuda.Stream(device=self._device)
        return stream, int(stream.cuda_stream)

    def external_stream(self, handle: int) -> Any:
        return self.xp.cuda.ExternalStream(handle, device=self._device)

    def on(self, stream: Any) -> contextlib.AbstractContextManager:
        return self.xp.cuda.stream(stream)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.xp.empty(shape, dtype=self._torch_dtype(dtype), device=self._device)

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.xp.zeros(shape, dtype=self._torch_dtype(dtype), device=self._device)

    def upload(self, host: np.ndarray) -> Any:
        return self.xp.from_numpy(np.ascontiguousarray(host)).to(self._device, non_blocking=True)

    def download(self, array: Any, stream: Any) -> np.ndarray:
        with self.xp.cuda.stream(stream):
            host = array.cpu()  # ordered on `stream`, blocks until done
        return host.numpy()

    def wrap(self, obj: Any) -> Any:
        if isinstance(obj, self.xp.Tensor):
            return obj
        if hasattr(obj, "__cuda_array_interface__"):
            return self.xp.as_tensor(obj, device=self._device)  # zero-copy view
        return self.xp.from_dlpack(obj)

    def ptr(self, array: Any) -> int:
        return int(array.data_ptr())

    def dtype(self, array: Any) -> np.dtype:
        return np.dtype(str(array.dtype).removeprefix("torch."))

    def is_contiguous(self, array: Any) -> bool:
        return bool(array.is_contiguous())

    def contiguous_as(self, array: Any, dtype: np.dtype) -> Any:
        return array.to(self._torch_dtype(dtype)).contiguous()

    def copy(self, array: Any) -> Any:
        return array.clone()

    def capture(self, stream: Any, launch: Callable[[], None]) -> Any:
        graph = self.xp.cuda.CUDAGraph()
        # torch.cuda.graph makes `stream` current and captures everything queued on it.
        with self.xp.cuda.graph(graph, stream=stream):
            launch()
        return graph

    def replay(self, graph: Any, stream: Any) -> None:
        with self.xp.cuda.stream(stream):
            graph.replay()
