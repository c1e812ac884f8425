"""ONNX Runtime backend: the reference backend and the one CI runs (CPU provider)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from rtpose._cpu import usable_cores
from rtpose._deps import require
from rtpose.backends.base import HostInputs, TensorSpec, closed_error
from rtpose.errors import BackendUnavailableError

log = logging.getLogger(__name__)

# ONNX Runtime's type names ("tensor(float)") -> numpy names; others keep ORT's inner name
_ORT_DTYPES = {"float": "float32", "double": "float64", "string": "object"}


class OnnxRuntimeBackend:
    """Runs an ONNX file with ONNX Runtime.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: the cores this process may use,
            :func:`rtpose._cpu.usable_cores`; ONNX Runtime's own default counts the machine's
            cores and pins its threads outside the process's CPU mask).
        providers: execution providers in priority order (default: CUDA when available, then CPU).

    The session runs on ONNX Runtime's own streams: ``stream_handle`` is None. An export with a
    dynamic batch has ``batch_range`` None; one with a static batch B has (B, B).
    """

    name = "onnxruntime"
    stream_handle: int | None = None

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        threads: int | None = None,
        providers: list[str] | None = None,
    ):
        ort = require("onnxruntime", purpose="the ONNX Runtime backend")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        available = ort.get_available_providers()
        wanted = providers or [
            p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available
        ]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise BackendUnavailableError(
                f"ONNX Runtime providers {missing} are not available here (available: {available})"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or usable_cores()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=wanted)
        self.providers = self.session.get_providers()
        self.inputs = {i.name: _spec(i) for i in self.session.get_inputs()}
        self.input_names = list(self.inputs)
        self.output_names = [o.name for o in self.session.get_outputs()]
        batches = {spec.shape[0] for spec in self.inputs.values() if spec.shape}
        self.batch_range: tuple[int, int] | None = None
        if len(batches) == 1 and (batch := batches.pop()) > 0:
            self.batch_range = (batch, batch)
        self._host_inputs = HostInputs("ONNX Runtime")
        log.debug("ONNX Runtime session for %s on %s", path.name, self.providers)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the session; GPU arrays are copied to the host first (logged once)."""
        if self.session is None:
            raise closed_error(self, self.path)
        inputs = self._host_inputs(inputs)  # GPU frames with a CPU network: copied (logged once)
        outputs = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outputs))

    def close(self) -> None:
        """Releases the inference session (its memory and threads). Idempotent."""
        self.session = None

    def __enter__(self) -> OnnxRuntimeBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _spec(node) -> TensorSpec:
    """A session input as a TensorSpec: symbolic or unknown dims become -1."""
    shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in (node.shape or ()))
    inner = str(node.type).removeprefix("tensor(").removesuffix(")")
    return TensorSpec(node.name, shape, _ORT_DTYPES.get(inner, inner))
