"""Inference backends: one protocol, ``run(inputs) -> outputs`` with arrays keyed by tensor name."""

from rtpose.backends.base import Backend, BackendName, TensorSpec, resolve_backend_name

__all__ = ["Backend", "BackendName", "TensorSpec", "resolve_backend_name"]
