"""The backend protocol, the tensor description every backend and manifest shares, and backend
selection.

A backend runs one network: a dict of arrays keyed by input name in, a dict keyed by output name
out. The estimators also read what the network accepts (input shapes, the batch range) and may
order their GPU work on the backend's stream; :class:`Backend` states all of it, so callers use
attributes instead of probing with ``getattr``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from rtpose.errors import BackendUnavailableError, InferenceError

log = logging.getLogger(__name__)

BackendName = Literal["auto", "onnxruntime", "openvino", "torch", "tensorrt"]
BACKENDS: tuple[str, ...] = ("auto", "onnxruntime", "openvino", "torch", "tensorrt")

# YOLO11n-pose fp32 on 1x3x384x640 letterboxed frames of the sample video, 2 threads on a 2-core
# AMD EPYC (AVX-512): model ms per frame, median of 9 alternating rounds
# (benchmarks/results/2026-12-03-cpu2-backends.json, made by benchmarks/bench_cpu_backends.py).
# OpenVINO (float32, compiled for the stream's shape) is 10% faster than ONNX Runtime, with the
# same predictions (max |diff| 0.003 px). On the CPU, ``auto`` takes the faster one installed.
# tests/backends/test_cpu_backend_choice.py holds this table to the committed measurement.
CPU_BACKEND_MS: dict[str, float] = {"onnxruntime": 31.5, "openvino": 28.3}
# With precision="int8", ``auto`` takes ONNX Runtime: run by OpenVINO 2026.4.1, the int8 CPU model
# of ``rtpose-build --target cpu`` fails the accuracy gate (mean OKS 0.924 vs fp32, a person lost;
# ONNX Runtime on the same file: 0.980), which rtpose.deploy.cpu_build runs per backend.
CPU_INT8_BACKENDS: tuple[str, ...] = ("onnxruntime",)


@dataclass(frozen=True)
class TensorSpec:
    """One network input or output, as a backend reports it and an engine manifest records it.

    Attributes:
        name: tensor name in the network.
        shape: dims, -1 for the batch and any other dynamic (or unknown) dimension.
        dtype: numpy-style name, e.g. ``"float32"``, ``"float16"``, ``"int8"`` (a numpy dtype
            or type is accepted and stored by name); ``np.dtype(spec.dtype)`` gives it back.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if any(d < -1 or d == 0 for d in self.shape):
            raise ValueError(f"tensor {self.name!r}: dims must be > 0 or -1, got {self.shape}")
        if not isinstance(self.dtype, str):
            try:
                name = np.dtype(self.dtype).name
            except TypeError:
                raise TypeError(
                    f"tensor {self.name!r}: dtype must be a numpy dtype or its name such as "
                    f"'float32', got {self.dtype!r}"
                ) from None
            object.__setattr__(self, "dtype", name)


@runtime_checkable
class Backend(Protocol):
    """Runs one network. Inputs and outputs are dicts of arrays keyed by tensor name.

    Every backend (ONNX Runtime, OpenVINO, torch, TensorRT) has all of these members;
    ``isinstance(x, Backend)`` checks that they are present.
    """

    name: str
    """The backend's name, one of :data:`BACKENDS` other than ``"auto"``."""

    input_names: list[str]
    """The network's input tensor names, in the network's order."""

    output_names: list[str]
    """The network's output tensor names, in the order :meth:`run` returns them."""

    inputs: Mapping[str, TensorSpec]
    """The inputs by name with their shapes: a dim is -1 when the backend takes any size there
    (a TensorRT engine has fixed spatial dims; an ONNX export may have dynamic ones)."""

    batch_range: tuple[int, int] | None
    """(min, max) batch the backend accepts (a TensorRT engine's profile), None when any."""

    stream_handle: int | None
    """The ``cudaStream_t`` the backend runs on, so callers can order GPU work after it; None
    for a backend that runs on the host or on the default stream."""

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Runs the network on ``inputs`` (one array per input name, batch first) and returns
        one array per output name. Raises :class:`rtpose.errors.InferenceError` after
        :meth:`close`."""
        ...

    def close(self) -> None:
        """Releases the session, module or engine now rather than at garbage collection.
        Idempotent; :meth:`run` afterwards raises :class:`rtpose.errors.InferenceError`."""
        ...


def closed_error(backend: object, what: object) -> InferenceError:
    """The error a backend raises when it is run after :meth:`Backend.close`."""
    return InferenceError(
        f"{type(backend).__name__} for {what} is closed; create a new backend to run it again"
    )


class HostInputs:
    """Gives a host (CPU) backend its inputs as host arrays: GPU arrays (GPU frames with a CPU
    network) are copied to the host, which is logged once per backend."""

    def __init__(self, runtime: str):
        self.runtime = runtime
        self.warned = False

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        from rtpose.cuda.arrays import is_device_array, to_host

        if not any(is_device_array(v) for v in inputs.values()):
            return inputs
        if not self.warned:
            log.warning(
                "%s on the CPU got GPU arrays: copying the network inputs to the host; use "
                "backend='tensorrt' or 'torch' to stay on the GPU", self.runtime
            )  # fmt: skip
            self.warned = True
        return {k: to_host(v) if is_device_array(v) else v for k, v in inputs.items()}


def resolve_backend_name(backend: str, *, precision: str | None = None) -> str:
    """Validate a backend name and resolve ``"auto"`` to the best one installed here.

    ``auto`` picks TensorRT when an NVIDIA GPU and a TensorRT flavour are both present, else
    the faster of ONNX Runtime and OpenVINO that is installed, by the measurement in
    :data:`CPU_BACKEND_MS` (ONNX Runtime when it is the GPU build and a GPU is there, or for
    ``precision="int8"``: :data:`CPU_INT8_BACKENDS`), else torch. Nothing is imported to decide.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if _tensorrt_usable():
            return "tensorrt"
        cpu = fastest_cpu_backend(precision=precision)
        if cpu == "openvino" and _onnxruntime_on_gpu():
            cpu = "onnxruntime"  # its CUDA provider beats any CPU backend
        if cpu is not None:
            log.debug("backend='auto': %s (CPU_BACKEND_MS %s)", cpu, CPU_BACKEND_MS)
            return cpu
        if importlib.util.find_spec("torch") is not None:
            return "torch"
        raise BackendUnavailableError(
            "no inference backend is installed; install one: pip install onnxruntime "
            "(or pip install 'rtpose[openvino]')"
        )
    return backend


def fastest_cpu_backend(*, precision: str | None = None) -> str | None:
    """The installed CPU backend (``"onnxruntime"`` or ``"openvino"``) that
    :data:`CPU_BACKEND_MS` says is faster, among :data:`CPU_INT8_BACKENDS` for
    ``precision="int8"``; None when none is installed. Imports neither."""
    names = CPU_INT8_BACKENDS if precision == "int8" else CPU_BACKEND_MS
    installed = [name for name in names if importlib.util.find_spec(name) is not None]
    return min(installed, key=CPU_BACKEND_MS.__getitem__, default=None)


def _onnxruntime_on_gpu() -> bool:
    """ONNX Runtime's GPU build is installed (read from its metadata) and a GPU is usable."""
    from importlib import metadata

    try:
        metadata.version("onnxruntime-gpu")
    except metadata.PackageNotFoundError:
        return False
    from rtpose.cuda.probe import gpu_status

    return gpu_status().available


def _tensorrt_usable() -> bool:
    """A TensorRT flavour the TensorRT backend can import is installed, and a GPU is usable
    (probed without TensorRT objects)."""
    from rtpose.backends.tensorrt.flavour import installed_flavours

    if not installed_flavours():
        return False
    from rtpose.cuda.probe import gpu_status

    return gpu_status().available
