"""ONNX -> serialized TensorRT engine (plan), for TensorRT 10, TensorRT 11 and TensorRT-RTX.

One code path, a chain of small steps (as in Polygraphy): resolve the target GPU, parse the ONNX,
add one batch optimization profile, configure precision and the timing cache, build, write the
plan atomically. The differences between flavours are asked of
:class:`rtpose.backends.tensorrt.flavour.Flavour`:

- TensorRT >= 11 and TensorRT-RTX build strongly typed networks: FP16 comes from a mixed-precision
  ONNX and INT8 from explicit QuantizeLinear/DequantizeLinear nodes; TensorRT 10 is weakly typed
  and takes ``BuilderFlag.FP16``.
- TensorRT-RTX builds for a named compute capability without a GPU; NVIDIA TensorRT builds for the
  GPU it runs on.
- TensorRT-RTX has no timing cache (its timing-cache calls are documented no-ops since 1.2).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtpose._io import atomic_write_bytes
from rtpose.backends.tensorrt.flavour import (
    Flavour,
    compute_capability,
    format_compute_capability,
    rtx_compute_capability,
)
from rtpose.cuda.probe import gpu_status
from rtpose.errors import EngineBuildError

_log = logging.getLogger(__name__)  # not ``log``: that is a parameter of the builder

Shape = tuple[int, ...]


@dataclass(frozen=True)
class BuildInfo:
    """What :func:`build_serialized_engine` produced.

    Attributes:
        path: the plan file.
        size_bytes: its size.
        seconds: wall time of parse + build + write.
        flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        flavour_version: the TensorRT version that built it.
        compute_capability: the target, e.g. ``"SM80"``; None when TensorRT-RTX built for
            ``CURRENT`` on a GPU the driver did not name (not expected).
        gpu_name: the local GPU the engine was built on/for, None when built by architecture name.
        input_name: the profiled input.
        min_shape, opt_shape, max_shape: its optimization profile, (B, ...) each.
        timing_cache: the timing cache file written, or None.
        timing_cache_note: what happened to the timing cache, in words.
    """

    path: Path
    size_bytes: int
    seconds: float
    flavour: str
    flavour_version: str
    compute_capability: str | None
    gpu_name: str | None
    input_name: str
    min_shape: Shape
    opt_shape: Shape
    max_shape: Shape
    timing_cache: Path | None
    timing_cache_note: str


@dataclass(frozen=True)
class _Target:
    cc: tuple[int, int] | None
    gpu_name: str | None
    rtx_member: Any  # ComputeCapability member for TensorRT-RTX, else None


@contextlib.contextmanager
def _collector_paused():
    """No garbage collection while TensorRT objects of this build are alive and calling back.

    TensorRT calls the Python logger while it holds an internal lock. A collection triggered in
    that callback that frees a TensorRT object of an earlier build (left in a reference cycle)
    waits for the same lock: the process hangs (seen in the test suite:
    ``createInferBuilder -> PyLogger.log -> gc -> ~IBuilder -> pthread_mutex_lock``). So collect
    before the build, pause the collector during it, and collect again after, outside TensorRT.
    """
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


@_collector_paused()
def build_serialized_engine(
    onnx_path: Path,
    out_path: Path,
    *,
    input_name: str,
    batch: tuple[int, int, int],
    gpu_arch: str | None,
    timing_cache: Path | None,
    flavour: Flavour,
    fp16_flag: bool = False,
    workspace_mb: int | None = None,
    log: Callable[[str], None] | None = None,
) -> BuildInfo:
    """Build a TensorRT engine from ``onnx_path`` and write it to ``out_path``, atomically.

    Args:
        onnx_path: the model; external-data files beside it are found (parsed by path).
        out_path: where the plan goes; its directory is created. Nothing is left there on failure.
        input_name: the input that gets the batch profile; its other dims must be static.
        batch: (min, opt, max) batch sizes of the optimization profile.
        gpu_arch: target GPU ("sm80", "8.6", ...). TensorRT-RTX: required without a local GPU,
            default the local GPU. NVIDIA TensorRT: None or the local GPU's architecture.
        timing_cache: file to read (if present) and update after the build; ignored, with a log
            line, by TensorRT-RTX, which has none.
        flavour: the TensorRT to build with (:func:`detect_flavour`).
        fp16_flag: TensorRT 10 only: allow FP16 kernels (``BuilderFlag.FP16``). Strongly typed
            flavours take their precision from the ONNX and reject this flag.
        workspace_mb: workspace memory pool limit; None keeps TensorRT's default.
        log: called with each progress line (besides the module logger).

    Raises:
        FileNotFoundError: ``onnx_path`` does not exist.
        ValueError: a malformed ``batch``, ``workspace_mb`` or option combination.
        EngineBuildError: the ONNX does not parse (every parser error is listed), the model's
            input cannot take the batch profile, the target GPU is not possible here, or
            TensorRT failed to build (its error lines are quoted).
    """
    started = time.perf_counter()
    say = _sayer(log)
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    _check_arguments(onnx_path, batch, workspace_mb, fp16_flag, flavour)
    target = _resolve_target(flavour, gpu_arch)
    trt = flavour.module
    trt_logger = _make_logger(trt)
    builder = trt.Builder(trt_logger)
    # the parser owns objects the network refers to: keep it alive until the build is done
    network, _parser = _parse_onnx(trt, builder, trt_logger, onnx_path, flavour)
    min_shape, opt_shape, max_shape = _profile_shapes(network, input_name, batch)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, min_shape, opt_shape, max_shape)
    config.add_optimization_profile(profile)
    if workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if target.rtx_member is not None:
        config.num_compute_capabilities = 1
        config.set_compute_capability(target.rtx_member, 0)
    cache_note = _load_timing_cache(trt, config, flavour, timing_cache, say)
    cc_text = format_compute_capability(target.cc) if target.cc else None
    say(f"building {onnx_path.name} with {flavour.display} for {cc_text or 'the current GPU'}")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError(
            f"{flavour.display} failed to build {onnx_path}: "
            + (
                "; ".join(trt_logger.errors)
                or "no error message; enable DEBUG logging for rtpose.deploy.trt_builder "
                "to see TensorRT's INFO/VERBOSE lines"
            )
        )
    size = atomic_write_bytes(out_path, memoryview(plan)).stat().st_size
    written_cache = None
    if timing_cache is not None and flavour.name != "tensorrt_rtx":
        atomic_write_bytes(timing_cache, memoryview(config.get_timing_cache().serialize()))
        written_cache = Path(timing_cache)
        cache_note += f"; saved to {timing_cache}"
    seconds = time.perf_counter() - started
    say(f"wrote {out_path} ({size} bytes) in {seconds:.1f} s")
    return BuildInfo(
        path=out_path,
        size_bytes=size,
        seconds=seconds,
        flavour=flavour.name,
        flavour_version=flavour.version,
        compute_capability=cc_text,
        gpu_name=target.gpu_name,
        input_name=input_name,
        min_shape=min_shape,
        opt_shape=opt_shape,
        max_shape=max_shape,
        timing_cache=written_cache,
        timing_cache_note=cache_note,
    )


def _sayer(callback: Callable[[str], None] | None) -> Callable[[str], None]:
    def say(line: str) -> None:
        _log.info("%s", line)
        if callback is not None:
            callback(line)

    return say


def _check_arguments(
    onnx_path: Path,
    batch: tuple[int, int, int],
    workspace_mb: int | None,
    fp16_flag: bool,
    flavour: Flavour,
) -> None:
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX model {onnx_path} does not exist (or is not a file)")
    if (
        not isinstance(batch, tuple)
        or len(batch) != 3
        or not all(isinstance(b, int) and not isinstance(b, bool) for b in batch)
    ):
        raise ValueError(f"batch must be a tuple of 3 ints (min, opt, max), got {batch!r}")
    lo, opt, hi = batch
    if lo < 1 or not lo <= opt <= hi:
        raise ValueError(f"batch profile needs 1 <= min <= opt <= max, got {lo}:{opt}:{hi}")
    if workspace_mb is not None and (not isinstance(workspace_mb, int) or workspace_mb <= 0):
        raise ValueError(f"workspace_mb must be a positive int or None, got {workspace_mb!r}")
    if flavour.module is None:
        raise ValueError(f"flavour {flavour!r} carries no module: get it from detect_flavour()")
    if fp16_flag and flavour.strongly_typed:
        raise ValueError(
            f"fp16_flag=True, but {flavour.display} builds strongly typed networks, which have no "
            "FP16 flag: export a mixed-precision (FP16) ONNX instead and leave fp16_flag False"
        )


def _resolve_target(flavour: Flavour, gpu_arch: str | None) -> _Target:
    """Which GPU to build for; probes the driver before any TensorRT object exists."""
    wanted = compute_capability(gpu_arch) if gpu_arch is not None else None
    if flavour.name == "tensorrt_rtx":
        if wanted is not None:
            return _Target(wanted, None, rtx_compute_capability(flavour, wanted))
        gpu = gpu_status()
        if not gpu.available:
            raise EngineBuildError(
                f"{flavour.display} builds for the current GPU by default, but this machine has "
                f"none ({gpu.reason}); name the target GPU with gpu_arch / --gpu-arch "
                "(e.g. sm80, sm86, sm89, sm120)"
            )
        return _Target(gpu.compute_capability, gpu.name, flavour.module.ComputeCapability.CURRENT)
    gpu = gpu_status()
    if not gpu.available:
        raise EngineBuildError(
            f"{flavour.display} builds engines for the GPU it runs on, and this machine has none "
            f"({gpu.reason}). Build on the target machine, or install TensorRT-RTX "
            "(pip install tensorrt-rtx-cu13-bindings tensorrt-rtx-cu13-libs), which builds for "
            "a named --gpu-arch without a GPU"
        )
    if gpu.compute_capability is None:  # the probe found a GPU but could not name it
        return _Target(wanted, gpu.name, None)
    if wanted is not None and wanted != gpu.compute_capability:
        raise EngineBuildError(
            f"gpu_arch {gpu_arch!r} ({format_compute_capability(wanted)}) asked for, but "
            f"{flavour.display} builds for the local GPU, {gpu.name} "
            f"({format_compute_capability(gpu.compute_capability)}); drop --gpu-arch or build on "
            "a machine with that GPU"
        )
    return _Target(gpu.compute_capability, gpu.name, None)


def _make_logger(trt: Any) -> Any:
    """A TensorRT logger that forwards to :mod:`logging` and keeps the error lines."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            level = {
                trt.ILogger.Severity.INTERNAL_ERROR: logging.ERROR,
                trt.ILogger.Severity.ERROR: logging.ERROR,
                trt.ILogger.Severity.WARNING: logging.WARNING,
                trt.ILogger.Severity.INFO: logging.DEBUG,
            }.get(severity, logging.DEBUG)
            if level == logging.ERROR:
                self.errors.append(msg)
            _log.log(level, "TensorRT: %s", msg)

    return _Logger()


def _parse_onnx(
    trt: Any, builder: Any, trt_logger: Any, onnx_path: Path, flavour: Flavour
) -> tuple[Any, Any]:
    """(network, parser) of ``onnx_path``, or EngineBuildError listing every parser error."""
    flags = 0
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flavour.strongly_typed and strongly_typed is not None:
        # (a TensorRT without the flag is strongly typed by default)
        flags = 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger)
    # by path, not bytes: the parser then finds external-data files next to the model
    if parser.parse_from_file(str(onnx_path)):
        if network.num_inputs == 0 or network.num_outputs == 0:
            # protobuf accepts many byte strings as an empty message: say it is not a model
            raise EngineBuildError(
                f"{flavour.display} could not parse {onnx_path}: it reads as an ONNX graph with "
                f"{network.num_inputs} inputs and {network.num_outputs} outputs; is it an ONNX "
                "model (not truncated, not an external-data file)?"
            )
        return network, parser
    problems = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        where = (
            f"node {err.node()} '{err.node_name()}' (op {err.node_operator()})"
            if err.node() >= 0
            else "model"
        )
        problems.append(f"  {where}: {err.code().name}: {err.desc()}")
    raise EngineBuildError(
        f"{flavour.display} could not parse {onnx_path} ({len(problems)} error(s)):\n"
        + "\n".join(problems)
    )


def _profile_shapes(
    network: Any, input_name: str, batch: tuple[int, int, int]
) -> tuple[Shape, Shape, Shape]:
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    if input_name not in inputs:
        raise EngineBuildError(
            f"the model has no input named {input_name!r}; its inputs are "
            + ", ".join(f"{n} {tuple(t.shape)}" for n, t in inputs.items())
        )
    for name, tensor in inputs.items():
        dims = tuple(tensor.shape)
        if name != input_name and any(d < 0 for d in dims):
            raise EngineBuildError(
                f"input {name!r} has dynamic shape {dims}, but only {input_name!r} gets an "
                "optimization profile: export the model with that input static"
            )
    shape = tuple(inputs[input_name].shape)  # (B, ...) with -1 for dynamic dims
    text = "(" + ", ".join("?" if d < 0 else str(d) for d in shape) + ")"
    if not shape:
        raise EngineBuildError(f"input {input_name!r} is a scalar; it needs a batch dimension")
    if any(d < 0 for d in shape[1:]):
        raise EngineBuildError(
            f"input {input_name!r} has shape {text}: only the batch (first) dimension may be "
            "dynamic; export it with a fixed size (e.g. dynamic_size=False)"
        )
    lo, opt, hi = batch
    if shape[0] >= 0 and not lo == opt == hi == shape[0]:
        raise EngineBuildError(
            f"input {input_name!r} has static shape {text}, which cannot take batch profile "
            f"{lo}:{opt}:{hi}; use --batch {shape[0]}:{shape[0]}:{shape[0]} or export the model "
            "with a dynamic batch axis"
        )
    rest = shape[1:]
    return (lo, *rest), (opt, *rest), (hi, *rest)


def _load_timing_cache(
    trt: Any, config: Any, flavour: Flavour, path: Path | None, say: Callable[[str], None]
) -> str:
    if path is None:
        return "no timing cache requested"
    path = Path(path)
    if flavour.name == "tensorrt_rtx":
        note = f"{flavour.display} has no timing cache; {path} neither read nor written"
        say(note)
        return note
    blob = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(blob)
    if blob and not config.set_timing_cache(cache, ignore_mismatch=False):
        # made by another TensorRT version or GPU: start afresh rather than fail the build
        say(f"timing cache {path} does not match {flavour.display} / this GPU; starting a new one")
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        return f"timing cache {path} did not match; rebuilt"
    if not blob:
        config.set_timing_cache(cache, ignore_mismatch=False)
        return f"timing cache {path} created"
    say(f"timing cache loaded from {path} ({len(blob)} bytes)")
    return f"timing cache loaded from {path}"
