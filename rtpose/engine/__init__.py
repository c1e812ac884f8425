"""Inference backends: one protocol, ``run(inputs) -> outputs`` with arrays keyed by tensor name."""

from rtpose.engine.base import Backend, BackendName, resolve_backend_name

__all__ = ["Backend", "BackendName", "resolve_backend_name"]
