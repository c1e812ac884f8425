"""ONNX Runtime backend: the reference backend and the one CI runs (CPU provider)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from rtpose._deps import require
from rtpose.errors import BackendUnavailableError
from rtpose.ops._device import is_device_array, to_host

log = logging.getLogger(__name__)


class OnnxRuntimeBackend:
    """Runs an ONNX file with ONNX Runtime.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: ONNX Runtime's choice, one per physical core).
        providers: execution providers in priority order (default: CUDA when available, then CPU).
    """

    name = "onnxruntime"

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
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=wanted)
        self.providers = self.session.get_providers()
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._warned_device = False
        log.debug("ONNX Runtime session for %s on %s", path.name, self.providers)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if any(is_device_array(v) for v in inputs.values()):
            # GPU frames with a CPU network: the network input crosses to the host (logged once)
            if not self._warned_device:
                log.warning(
                    "ONNX Runtime on the CPU got GPU arrays: copying the network inputs to the "
                    "host; use backend='tensorrt' or 'torch' to stay on the GPU"
                )
                self._warned_device = True
            inputs = {k: to_host(v) if is_device_array(v) else v for k, v in inputs.items()}
        outputs = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outputs))
