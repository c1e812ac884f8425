"""TensorRT backend: runs a serialized engine (NVIDIA TensorRT 10/11 or TensorRT-RTX).

Order matters: :func:`~rtpose.cuda.probe.gpu_status` is asked first, and TensorRT is
imported only when a GPU is usable, because TensorRT objects created without a driver return
from their constructors and segfault on first use. Then the engine's manifest
(``<engine>.json``) is checked against this machine
(:func:`~rtpose.backends.tensorrt.manifest.check_runtime_compatible`): a plan is tied to the
TensorRT flavour and version that built it and to a compute capability. Failures to load or run
an engine raise :class:`~rtpose.errors.InferenceError`; :meth:`TensorRTBackend.close` frees the
engine and its contexts at once (garbage collection does it otherwise).

Tensors are addressed by name. Inputs may be numpy arrays (uploaded) or CUDA arrays (cupy,
torch, anything with DLPack / ``__cuda_array_interface__``; used in place when C-contiguous and
of the engine's dtype). Outputs are allocated on the device with cupy (torch when cupy is
absent); :meth:`TensorRTBackend.run` returns them as numpy arrays for numpy inputs and as device
arrays for device inputs.

CUDA graphs (``cuda_graphs=True``) remove the per-layer launch cost, which dominates small
networks at small batches. A graph is bound to fixed shapes and addresses, so batches are padded
up to buckets (1, 2, 4, 8, ... up to the profile's maximum) and each bucket owns its input/output
buffers, its execution context (with its own activation memory) and its graph, made on first use
after one warm-up run. The trade-off: memory grows with the number of buckets used (buffers +
activations per bucket) and a batch just above a bucket pays for up to twice the work; in return
each call is one graph launch plus two copies. Padding rows are zeros or stale rows of an earlier
call; the networks rtpose serves treat samples independently, so they do not change the results.
TensorRT-RTX captures graphs itself (``IRuntimeConfig.cuda_graph_strategy``), and its manual
capture needs engines built with ``REQUIRE_USER_ALLOCATION``; there rtpose uses the built-in
capture on one context, still with padded buckets so that at most one graph per bucket is made.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from rtpose.backends.base import TensorSpec, closed_error
from rtpose.backends.tensorrt.batching import (
    batch_buckets,
    bucket_for,
    check_input_shape,
    pad_batch,
)
from rtpose.backends.tensorrt.flavour import Flavour, detect_flavour
from rtpose.backends.tensorrt.manifest import (
    EngineManifest,
    check_runtime_compatible,
    read_manifest,
)
from rtpose.cuda.arrays import is_device_array, stream_handle
from rtpose.cuda.libraries import ArrayLibName, ArrayLibrary, array_library
from rtpose.cuda.probe import gpu_status
from rtpose.errors import BackendUnavailableError, InferenceError

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    """What a CUDA graph of one batch bucket needs to stay alive."""

    size: int
    context: Any
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    graph: Any  # None under TensorRT-RTX's built-in capture


class TensorRTBackend:
    """Runs a serialized TensorRT engine on one GPU.

    Args:
        engine_path: the plan file.
        manifest: its manifest (an :class:`EngineManifest`, its JSON object or its path);
            default ``<engine>.json`` (else ``<stem>.json``) beside the engine.
        stream: CUDA stream to run on: a ``cudaStream_t`` int, a cupy or torch stream, or None
            for a stream of the backend's own (non-default: TensorRT synchronises the device
            around work on the legacy default stream).
        cuda_graphs: replay a CUDA graph per batch bucket (see the module docstring).
        device: CUDA device ordinal.
        arrays: GPU array library for buffers: "auto" (cupy, else torch), "cupy" or "torch".

    Raises:
        BackendUnavailableError: no usable GPU/driver, or no TensorRT runtime installed.
        FileNotFoundError: ``engine_path`` does not exist.
        InferenceError: the manifest is unreadable or says another flavour/version/GPU, or the
            plan does not deserialize with this TensorRT.
    """

    name = "tensorrt"
    input_names: list[str]
    output_names: list[str]
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    batch_range: tuple[int, int]
    stream_handle: int | None

    def __init__(
        self,
        engine_path: str | os.PathLike,
        *,
        manifest: str | os.PathLike | Mapping[str, Any] | None = None,
        stream: object = None,
        cuda_graphs: bool = False,
        device: int = 0,
        arrays: ArrayLibName = "auto",
    ) -> None:
        status = gpu_status(device=device)
        if not status.available:
            raise BackendUnavailableError(
                f"the TensorRT backend needs a usable NVIDIA GPU/driver; found none "
                f"({status.reason}). TensorRT objects created without a driver crash; "
                "use backend='onnxruntime'"
            )
        self._closed = True  # until fully constructed: close() must not touch missing state
        engine_path = Path(engine_path)
        if not engine_path.is_file():
            raise FileNotFoundError(f"TensorRT engine not found: {engine_path}")
        handle = stream_handle(stream) if stream is not None else None
        self.flavour: Flavour = detect_flavour()
        self.manifest: EngineManifest | None = read_manifest(engine_path, manifest)
        if self.manifest is not None:
            check_runtime_compatible(
                self.manifest,
                flavour=self.flavour,
                compute_capability=status.compute_capability,
                engine_path=engine_path,
            )
        self.engine_path = engine_path
        self.device = device
        self.gpu = status
        self.cuda_graphs = cuda_graphs
        self._arrays: ArrayLibrary = array_library(arrays, device=device)
        if handle is None:
            self._stream, self.stream_handle = self._arrays.new_stream()
        else:
            self._stream, self.stream_handle = self._arrays.external_stream(handle), handle
        self._deserialize(engine_path)
        self._buckets: dict[int, _Bucket] = {}
        self._inflight: list[Any] = []  # buffers queued work still reads (run_async)
        self._closed = False
        log.info(
            "TensorRT engine %s on %s (%s %s, %s buffers, cuda_graphs=%s)",
            engine_path.name,
            status.name or f"device {device}",
            self.flavour.name,
            self.flavour.version,
            self._arrays.name,
            cuda_graphs,
        )

    # ---- construction -----------------------------------------------------------------------
    def _deserialize(self, engine_path: Path) -> None:
        trt = self.flavour.module
        self._logger = _make_logger(trt)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise InferenceError(
                f"{self.flavour.name} {self.flavour.version} could not deserialize "
                f"{engine_path}: {' | '.join(self._logger.errors) or 'no error message'}. "
                "The plan was probably built by another TensorRT version or for another GPU: "
                "rebuild it here with rtpose-build"
            )
        inputs, outputs = [], []
        # profile 0's (min, max) shape per input, and the numpy dtype per tensor
        self._profiles: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._dtypes: dict[str, np.dtype] = {}
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            spec = self._tensor_spec(name)
            self._dtypes[name] = np.dtype(spec.dtype)
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                profile = self._engine.get_tensor_profile_shape(name, 0)
                self._profiles[name] = (tuple(profile[0]), tuple(profile[2]))
                inputs.append(spec)
            else:
                outputs.append(spec)
        self.inputs = {t.name: t for t in inputs}
        self.outputs = {t.name: t for t in outputs}
        self.input_names = list(self.inputs)
        self.output_names = list(self.outputs)
        low, high = self._profiles[inputs[0].name]
        self.batch_range = (low[0], high[0])
        self.buckets = batch_buckets(*self.batch_range)
        rtx_graphs = self.cuda_graphs and self.flavour.name == "tensorrt_rtx"
        if self.cuda_graphs:
            dynamic = [t.name for t in inputs if -1 in t.shape[1:]]
            if dynamic:
                raise ValueError(
                    f"cuda_graphs=True needs inputs whose only dynamic axis is the batch; "
                    f"{dynamic} have other dynamic axes. Use cuda_graphs=False"
                )
        self._context = self._new_context(builtin_graphs=rtx_graphs)

    def _tensor_spec(self, name: str) -> TensorSpec:
        trt_dtype = self._engine.get_tensor_dtype(name)
        try:
            dtype = np.dtype(self.flavour.module.nptype(trt_dtype))
        except TypeError as exc:
            raise InferenceError(
                f"engine tensor {name!r} has dtype {trt_dtype}, which numpy cannot hold; build "
                "the engine with float32/float16/int I/O (keep casts inside the network)"
            ) from exc
        return TensorSpec(name, tuple(self._engine.get_tensor_shape(name)), dtype.name)

    def _new_context(self, *, builtin_graphs: bool) -> Any:
        trt = self.flavour.module
        if builtin_graphs:
            config = self._engine.create_runtime_config()
            config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
            context = self._engine.create_execution_context(config)
        else:
            context = self._engine.create_execution_context()
        if context is None:
            raise InferenceError(
                f"TensorRT could not create an execution context for {self.engine_path} "
                f"(out of GPU memory?): {' | '.join(self._logger.errors)}"
            )
        return context

    # ---- running ----------------------------------------------------------------------------
    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Runs the engine and waits for it.

        Args:
            inputs: one array per input name, batch first, (N, ...) with N in ``batch_range``.

        Returns:
            One array per output name: numpy when every input was numpy, else device arrays
            of the backend's array library (cupy or torch).
        """
        on_device = any(is_device_array(value) for value in inputs.values())
        outputs = self.run_async(inputs)
        if on_device:
            self._arrays.synchronize(self._stream)
            self._inflight.clear()
            return outputs
        host = {name: self._arrays.download(array, self._stream) for name, array in outputs.items()}
        self._inflight.clear()
        return host

    def run_async(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Queues the engine on the backend's stream and returns device outputs at once.

        The outputs are valid once the stream reaches them (``synchronize()``, or order later
        work on ``stream_handle``). Numpy inputs are uploaded first (pageable memory: the copy
        has read them when this returns).
        """
        if self._closed:
            raise closed_error(self, self.engine_path)
        batch = self._check_inputs(inputs)
        with self._arrays.on(self._stream):
            # Graph mode: host inputs are padded to the bucket here, so padding rows are zeros.
            rows = bucket_for(batch, self.buckets) if self.cuda_graphs else batch
            staged = {name: self._stage(name, value, rows) for name, value in inputs.items()}
            if self.cuda_graphs:
                outputs = self._run_bucket(staged, batch)
            else:
                outputs = self._run_direct(staged)
        self._inflight.extend(staged.values())
        return outputs

    def synchronize(self) -> None:
        """Waits for the work queued on the backend's stream (nothing to wait for once closed)."""
        if self._closed:
            return
        self._arrays.synchronize(self._stream)
        self._inflight.clear()

    def _check_inputs(self, inputs: Mapping[str, Any]) -> int:
        missing = [n for n in self.input_names if n not in inputs]
        unexpected = [n for n in inputs if n not in self.inputs]
        if missing or unexpected:
            raise ValueError(
                f"inputs must be exactly {self.input_names}; missing {missing}, "
                f"unexpected {unexpected}"
            )
        batches = set()
        for name, value in inputs.items():
            shape = tuple(int(s) for s in value.shape)
            profile_min, profile_max = self._profiles[name]
            check_input_shape(
                name,
                shape,
                engine_shape=self.inputs[name].shape,
                profile_min=profile_min,
                profile_max=profile_max,
            )
            batches.add(shape[0])
        if len(batches) != 1:
            raise ValueError(f"all inputs must have one batch size, got {sorted(batches)}")
        return batches.pop()

    def _stage(self, name: str, value: Any, rows: int) -> Any:
        """The input as a C-contiguous device array of the engine's dtype (zero-copy if it is);
        host arrays are padded with zero rows to ``rows`` first."""
        dtype = self._dtypes[name]
        if not is_device_array(value):
            host = pad_batch(np.ascontiguousarray(value, dtype=dtype), rows)
            return self._arrays.upload(host)
        array = self._arrays.wrap(value)
        if self._arrays.dtype(array) != dtype or not self._arrays.is_contiguous(array):
            log.debug("input %r copied to a contiguous %s array", name, dtype)
            array = self._arrays.contiguous_as(array, dtype)
        return array

    def _run_direct(self, staged: dict[str, Any]) -> dict[str, Any]:
        context = self._context
        for name, array in staged.items():
            if not context.set_input_shape(name, tuple(array.shape)):
                raise InferenceError(f"TensorRT refused shape {tuple(array.shape)} for {name!r}")
            context.set_tensor_address(name, self._arrays.ptr(array))
        outputs = {}
        for name in self.outputs:
            shape = tuple(context.get_tensor_shape(name))
            if any(size < 0 for size in shape):
                raise InferenceError(
                    f"output {name!r} has a data-dependent shape {shape}, which the TensorRT "
                    "backend does not support; export the network with fixed output shapes"
                )
            outputs[name] = self._arrays.empty(shape, self._dtypes[name])
            context.set_tensor_address(name, self._arrays.ptr(outputs[name]))
        self._execute(context)
        return outputs

    def _execute(self, context: Any) -> None:
        if not context.execute_async_v3(self.stream_handle):
            raise InferenceError(
                f"TensorRT execute_async_v3 failed for {self.engine_path.name}: "
                f"{' | '.join(self._logger.errors[-5:]) or 'no error message'}"
            )

    def _run_bucket(self, staged: dict[str, Any], batch: int) -> dict[str, Any]:
        size = bucket_for(batch, self.buckets)
        bucket = self._buckets.get(size) or self._make_bucket(size)
        for name, array in staged.items():
            self._arrays.copy_into(bucket.inputs[name], array)
        if bucket.graph is not None:
            self._arrays.replay(bucket.graph, self._stream)
        else:  # TensorRT-RTX: its runtime captures and replays per shape
            self._bind(bucket)
            self._execute(bucket.context)
        # Copies, not views: the bucket's buffers are overwritten by the next call.
        return {n: self._arrays.copy(buf[:batch]) for n, buf in bucket.outputs.items()}

    def _make_bucket(self, size: int) -> _Bucket:
        builtin = self.flavour.name == "tensorrt_rtx"
        # One context per bucket for manual capture: a graph bakes in the context's state.
        context = self._context if builtin else self._new_context(builtin_graphs=False)
        inputs = {
            name: self._arrays.zeros((size, *spec.shape[1:]), self._dtypes[name])
            for name, spec in self.inputs.items()
        }
        for name, array in inputs.items():
            if not context.set_input_shape(name, tuple(array.shape)):
                raise InferenceError(f"TensorRT refused shape {tuple(array.shape)} for {name!r}")
        outputs = {}
        for name in self.outputs:
            shape = tuple(context.get_tensor_shape(name))
            if not shape or shape[0] != size:
                raise ValueError(
                    f"cuda_graphs=True needs batch-first outputs; {name!r} has shape {shape} "
                    f"at batch {size}. Use cuda_graphs=False"
                )
            outputs[name] = self._arrays.zeros(shape, self._dtypes[name])
        bucket = _Bucket(size, context, inputs, outputs, graph=None)
        self._bind(bucket)
        self._execute(context)  # warm-up: TensorRT finishes shape-dependent setup here
        self._arrays.synchronize(self._stream)
        if not builtin:
            capturable = getattr(context, "is_stream_capturable", None)
            if capturable is not None and not capturable(self.stream_handle):
                raise InferenceError(
                    f"TensorRT says engine {self.engine_path.name} cannot be captured in a CUDA "
                    "graph on this stream; use cuda_graphs=False"
                )
            bucket.graph = self._arrays.capture(self._stream, lambda: self._execute(context))
        self._buckets[size] = bucket
        log.debug("CUDA graph bucket %d ready for %s", size, self.engine_path.name)
        return bucket

    def _bind(self, bucket: _Bucket) -> None:
        for name, array in bucket.inputs.items():
            bucket.context.set_input_shape(name, tuple(array.shape))
            bucket.context.set_tensor_address(name, self._arrays.ptr(array))
        for name, array in bucket.outputs.items():
            bucket.context.set_tensor_address(name, self._arrays.ptr(array))

    # ---- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Waits for queued work, then frees graphs, contexts, buffers and the engine.

        Idempotent; :meth:`run` afterwards raises :class:`~rtpose.errors.InferenceError`.
        """
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._arrays.synchronize(self._stream)
        # Graphs before the contexts they launch, contexts before the engine, engine before
        # the runtime: TensorRT objects must die in reverse order of creation.
        for bucket in self._buckets.values():
            bucket.graph = None
            bucket.context = None
        self._buckets.clear()
        self._inflight.clear()
        self._context = None
        self._engine = None
        self._runtime = None

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            # At interpreter shutdown CUDA may already be gone; nothing useful can be reported.
            with contextlib.suppress(Exception):
                self.close()


def _make_logger(trt: ModuleType) -> Any:
    """A TensorRT logger that forwards to logging and keeps the error messages."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(msg)
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.Severity.WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return _Logger()
