"""The backend protocol and backend selection."""

from __future__ import annotations

import importlib.util
from typing import Literal, Protocol

import numpy as np

from rtpose.errors import BackendUnavailableError

BackendName = Literal["auto", "onnxruntime", "torch", "tensorrt"]
BACKENDS: tuple[str, ...] = ("auto", "onnxruntime", "torch", "tensorrt")


class Backend(Protocol):
    """Runs one network. Inputs and outputs are dicts of arrays keyed by tensor name."""

    name: str
    input_names: list[str]
    output_names: list[str]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def resolve_backend_name(backend: str) -> str:
    """Validate a backend name and resolve ``"auto"`` to the best one installed here.

    ``auto`` picks ONNX Runtime (the TensorRT backend arrives with ``rtpose-build``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "tensorrt":
        raise BackendUnavailableError(
            "backend='tensorrt' is not wired into the video pipeline yet (it comes with the GPU "
            "pipeline); build engines with rtpose-build and run them with "
            "rtpose.engine.tensorrt.TensorRTBackend, or use backend='onnxruntime' / 'torch'"
        )
    if backend == "auto":
        if importlib.util.find_spec("onnxruntime") is not None:
            return "onnxruntime"
        if importlib.util.find_spec("torch") is not None:
            return "torch"
        raise BackendUnavailableError(
            "no inference backend is installed; install one: pip install onnxruntime"
        )
    return backend
