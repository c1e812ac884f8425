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

    ``auto`` picks TensorRT when an NVIDIA GPU and a TensorRT runtime are both present, else
    ONNX Runtime, else torch.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if _tensorrt_usable():
            return "tensorrt"
        if importlib.util.find_spec("onnxruntime") is not None:
            return "onnxruntime"
        if importlib.util.find_spec("torch") is not None:
            return "torch"
        raise BackendUnavailableError(
            "no inference backend is installed; install one: pip install onnxruntime"
        )
    return backend


def _tensorrt_usable() -> bool:
    """A TensorRT runtime is installed and a GPU is usable (probed without TensorRT objects)."""
    modules = ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings", "tensorrt_lean")
    if not any(importlib.util.find_spec(m) is not None for m in modules):
        return False
    from rtpose.engine.gpu_probe import gpu_status

    return gpu_status().available
