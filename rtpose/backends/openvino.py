"""OpenVINO backend: the same ONNX exports as ONNX Runtime, run by Intel's OpenVINO on the CPU.

FP32 files run in float32, explicitly: on CPUs with AVX-512 BF16 or AMX, OpenVINO's default
inference precision is bfloat16, which moves YOLO11n-pose's box coordinates by up to ~15 px
against ONNX Runtime. INT8 files are ONNX models with QuantizeLinear / DequantizeLinear (Q/DQ)
pairs (:func:`rtpose.deploy.int8.quantize_int8` writes them): OpenVINO turns each pair into a
FakeQuantize and runs the quantized convolutions in int8 itself. On rtpose's int8 CPU model of
YOLO11n-pose (``rtpose-build --target cpu``) OpenVINO 2026.4.1 keeps fewer people than ONNX
Runtime does on the same file: the gate, run as OpenVINO runs it, measured mean OKS 0.924 with a
person lost (ONNX Runtime: 0.980, none lost), below the 0.95 threshold. So ``precision="int8"``
with ``backend="openvino"`` is refused by the gate, and ``backend="auto"`` runs int8 with ONNX
Runtime (:data:`rtpose.backends.base.CPU_INT8_BACKENDS`).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rtpose._cpu import usable_cores
from rtpose._deps import require
from rtpose.backends.base import HostInputs, TensorSpec, closed_error
from rtpose.errors import InferenceError

log = logging.getLogger(__name__)

# A model compiled for the one input shape of a stream (YOLO11n-pose 1x3x384x640, fp32, 2 threads
# on a 2-core EPYC) ran in 28.3 ms against 30.9 ms for the model compiled with dynamic dims
# (median of 9 alternating rounds, benchmarks/results/2026-12-03-cpu2-backends.json), and
# compiling takes ~0.4 s. So a shape that comes twice in a row gets a model of its own, compiled
# in the background, up to ``static_shapes`` of them; every other shape runs on the dynamic model.
DEFAULT_STATIC_SHAPES = 4


class OpenVinoBackend:
    """Runs an ONNX file (fp32, or int8 with Q/DQ nodes) with OpenVINO on the CPU.

    Args:
        path: the ``.onnx`` file.
        threads: inference threads (default: the cores this process may use,
            :func:`rtpose._cpu.usable_cores`).
        static_shapes: how many input shapes may get a model compiled for exactly that shape
            (a little faster than the dynamic-shape model, see :data:`DEFAULT_STATIC_SHAPES`),
            compiled in the background; 0 runs every shape on the dynamic model.

    Runs on the host: ``stream_handle`` is None. An export with a dynamic batch has
    ``batch_range`` None; one with a static batch B has (B, B). :meth:`run` may be called from
    several threads; calls run one at a time.
    """

    name = "openvino"
    stream_handle: int | None = None

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        threads: int | None = None,
        static_shapes: int = DEFAULT_STATIC_SHAPES,
    ):
        ov = require("openvino", purpose="the OpenVINO backend")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        if threads is not None and not _is_int(threads, at_least=1):
            raise ValueError(f"threads must be an integer >= 1 or None, got {threads!r}")
        if not _is_int(static_shapes, at_least=0):
            raise ValueError(f"static_shapes must be an integer >= 0, got {static_shapes!r}")
        self.path = path
        self.threads = threads or usable_cores()
        self._errors = _openvino_errors(ov)
        self._version = ov.__version__.split("-")[0]
        self._core = ov.Core()
        self._config = {
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",  # one request at a time, all threads on it
            "INFERENCE_PRECISION_HINT": "f32",  # not the bf16 default of AVX-512 BF16 CPUs
        }
        self._model = self._read(ov, path)
        self.inputs = {p.get_any_name(): _spec(p) for p in self._model.inputs}
        self.input_names = list(self.inputs)
        self.output_names = [p.get_any_name() for p in self._model.outputs]
        batches = {spec.shape[0] for spec in self.inputs.values() if spec.shape}
        self.batch_range: tuple[int, int] | None = None
        if len(batches) == 1 and (batch := batches.pop()) > 0:
            self.batch_range = (batch, batch)
        self._dynamic = any(-1 in spec.shape for spec in self.inputs.values())
        self._static_limit = static_shapes if self._dynamic else 0
        # the model as read: the one request of a static model, the fallback of a dynamic one;
        # compiled now so that a model OpenVINO cannot compile fails here, not on the first frame
        self._request: Any = self._compile(self._model, "as read")
        self._by_shape: dict[tuple[tuple[int, ...], ...], Any] = {}
        self._pending: dict[tuple[tuple[int, ...], ...], Future] = {}
        self._failed: set[tuple[tuple[int, ...], ...]] = set()
        self._compiler: ThreadPoolExecutor | None = None
        self._last_shape: tuple[tuple[int, ...], ...] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._host_inputs = HostInputs("OpenVINO")
        log.debug("OpenVINO %s model for %s, %d threads", "dynamic" if self._dynamic else
                  "static", path.name, self.threads)  # fmt: skip

    def run(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Runs the model; GPU arrays are copied to the host first (logged once).

        Returns new numpy arrays (OpenVINO's output buffers are copied), one per output name.
        Raises ValueError / TypeError for inputs whose names, shapes or dtypes the model does
        not take (OpenVINO itself would convert the dtype, and a dynamic model reads a wrong
        channel count without complaint).
        """
        if self._closed:
            raise closed_error(self, self.path)
        inputs = self._host_inputs(inputs)  # GPU frames with a CPU network: copied (logged once)
        arrays = self._checked(inputs)
        shapes = tuple(arrays[name].shape for name in self.input_names)
        with self._lock:
            if self._closed:
                raise closed_error(self, self.path)
            request = self._request_for(shapes)
            try:
                # share_outputs=False: the results are copies the caller may keep
                result = request.infer(arrays, share_outputs=False)
            except self._errors as exc:
                raise InferenceError(
                    f"OpenVINO failed to run {self.path} on inputs {_shapes_text(arrays)}: {exc}"
                ) from exc
        return dict(zip(self.output_names, result.to_tuple()))

    def close(self) -> None:
        """Releases the compiled models and their requests. Idempotent."""
        self._closed = True
        if self._compiler is not None:
            self._compiler.shutdown(wait=True, cancel_futures=True)
            self._compiler = None
        self._request = None
        self._by_shape, self._pending = {}, {}
        self._model = None

    def __enter__(self) -> OpenVinoBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- internals --------------------------------------------------------------------------

    def _read(self, ov, path: Path):
        """The model of an ONNX file, through OpenVINO's ONNX front end only (``read_model``
        would also try the TensorFlow reader on a damaged file and log parse errors)."""
        frontend = ov.frontend.FrontEndManager().load_by_framework("onnx")
        try:
            return frontend.convert(frontend.load(str(path)))
        except self._errors as exc:
            raise InferenceError(
                f"OpenVINO cannot read {path} as an ONNX model ({_first_line(exc)}); "
                "check that it is a complete .onnx file; if it is damaged, delete it (a cached "
                "export is exported again on next use) or re-export it"
            ) from exc

    def _compile(self, model, what: str):
        try:
            compiled = self._core.compile_model(model, "CPU", self._config)
        except self._errors as exc:
            raise InferenceError(
                f"OpenVINO {self._version} cannot compile {self.path} ({what}) for the CPU: "
                f"{_first_line(exc)}. Run this model with backend='onnxruntime'"
            ) from exc
        return compiled.create_infer_request()

    def _request_for(self, shapes: tuple[tuple[int, ...], ...]):
        """The request of the model compiled for ``shapes`` when it is ready; else the dynamic
        model's. A shape that came on the previous call too gets its model compiled in the
        background (while there is room), so no call waits for a compile: a live stream would
        otherwise stall for the compile's ~0.4-1 s on its second frame."""
        self._collect(wait=False)
        request = self._by_shape.get(shapes)
        room = len(self._by_shape) + len(self._pending) < self._static_limit
        known = request is not None or shapes in self._pending or shapes in self._failed
        if not known and room and shapes == self._last_shape:
            model = self._model.clone()
            model.reshape(dict(zip(self.input_names, (list(s) for s in shapes))))
            if self._compiler is None:
                self._compiler = ThreadPoolExecutor(1, thread_name_prefix="rtpose-openvino")
            what = f"for inputs {shapes}"
            self._pending[shapes] = self._compiler.submit(self._compile, model, what)
        self._last_shape = shapes
        return request if request is not None else self._request

    def finish_compiling(self) -> None:
        """Wait for the background compiles (:meth:`_request_for`) to finish; benchmarks and
        tests call it to time or check the shape-compiled models."""
        with self._lock:
            self._collect(wait=True)

    def _collect(self, *, wait: bool) -> None:
        """Move finished background compiles into ``_by_shape``; a failed one is logged and that
        shape stays on the dynamic model."""
        for shapes, future in list(self._pending.items()):
            if not (wait or future.done()):
                continue
            del self._pending[shapes]
            try:
                self._by_shape[shapes] = future.result()
                log.debug("OpenVINO: compiled %s for input shapes %s", self.path.name, shapes)
            except InferenceError as exc:
                self._failed.add(shapes)
                log.warning("%s; inputs %s keep running on the dynamic-shape model", exc, shapes)

    def _checked(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """The inputs as C-contiguous numpy arrays, after checking names, ranks, fixed dims and
        dtypes against :attr:`inputs`."""
        if not isinstance(inputs, dict) or set(inputs) != set(self.input_names):
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                f"OpenVinoBackend for {self.path.name}: expected a dict with the inputs "
                f"{self.input_names}, got {got}"
            )
        arrays = {}
        for name in self.input_names:
            spec, x = self.inputs[name], np.asarray(inputs[name])
            if x.dtype != np.dtype(spec.dtype):
                raise TypeError(
                    f"OpenVinoBackend for {self.path.name}: input {name!r} must be {spec.dtype}, "
                    f"got {x.dtype}; convert it with .astype(np.{spec.dtype})"
                )
            if x.ndim != len(spec.shape) or any(
                d != -1 and d != n for d, n in zip(spec.shape, x.shape)
            ):
                want = "x".join("?" if d == -1 else str(d) for d in spec.shape)
                raise ValueError(
                    f"OpenVinoBackend for {self.path.name}: input {name!r} must have shape {want} "
                    f"(? = any size), got {tuple(x.shape)}"
                )
            arrays[name] = np.ascontiguousarray(x)
        return arrays


def _is_int(value: object, *, at_least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= at_least


def _spec(port) -> TensorSpec:
    """A model input as a TensorSpec: dynamic (or bounded) dims become -1."""
    shape = tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())
    return TensorSpec(port.get_any_name(), shape, np.dtype(port.get_element_type().to_dtype()).name)


def _openvino_errors(ov) -> tuple[type[BaseException], ...]:
    """What OpenVINO raises: RuntimeError from the runtime, its front-end failures (which
    derive from Exception only) from reading a model."""
    fe = ov.frontend
    return (
        RuntimeError,
        fe.GeneralFailure,
        fe.InitializationFailure,
        fe.NotImplementedFailure,
        fe.OpConversionFailure,
        fe.OpValidationFailure,
    )


def _first_line(exc: BaseException) -> str:
    """The informative part of an OpenVINO message (they start with source locations)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from", "Check '"))]
    return " ".join(useful or lines) or type(exc).__name__


def _shapes_text(arrays: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {v.dtype} {tuple(v.shape)}" for k, v in arrays.items())
