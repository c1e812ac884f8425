"""``rtpose.build_engine`` / ``rtpose-build``: a zoo model or an ONNX file -> a TensorRT engine.

Steps (each reported to ``progress``):

1. **export**: the FP32 ONNX with a dynamic batch axis and a fixed input size (zoo models; an
   ONNX file is used as given, with ``model_name`` naming the zoo entry whose pre- and
   post-processing it follows);
2. **precision**: precision lives in the ONNX, so one path serves TensorRT 10, TensorRT 11 and
   TensorRT-RTX: fp16 = a mixed-precision ONNX, int8 = explicit Q/DQ calibrated on real frames
   through the estimators' own preprocessing (:mod:`rtpose.deploy.fp16`, :mod:`rtpose.deploy.int8`);
3. **accuracy gate**: keypoints decoded from the candidate ONNX (ONNX Runtime) and from FP32 on the
   same frames (:mod:`rtpose.deploy.accuracy`); below ``min_oks`` the build fails unless ``force``;
4. **engine**: TensorRT builds the plan with one optimization profile for the batch range, a
   persistent timing cache, written atomically; the engine cache key covers the model hash,
   precision, batch profile, builder flavour/version and compute capability, so an existing
   engine with the same key is reused;
5. **manifest**: ``<engine>.json`` beside the engine: tensors, normalisation, codec, builder
   and GPU (:mod:`rtpose.backends.tensorrt.manifest`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rtpose.deploy.subject import (
    Subject,
    accuracy_gate,
    calibrate_int8,
    check_gate_options,
    export_subject,
    gate_frames,
)
from rtpose.errors import EngineBuildError

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    """What to build. See :func:`build_engine` for the meaning of each field."""

    precision: Precision = "fp16"
    batch: tuple[int, int, int] = (1, 8, 32)
    calib: str | None = None
    calib_frames: int = 64
    eval_frames: int = 16
    gpu_arch: str | None = None
    min_oks: float = 0.95
    force: bool = False
    flavour: Literal["auto", "tensorrt", "tensorrt_rtx"] = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        lo, opt, hi = self.batch
        if not (isinstance(lo, int) and isinstance(opt, int) and isinstance(hi, int)):
            raise ValueError(f"batch must be three ints MIN:OPT:MAX, got {self.batch}")
        if not 1 <= lo <= opt <= hi:
            raise ValueError(f"batch needs 1 <= MIN <= OPT <= MAX, got {lo}:{opt}:{hi}")
        check_gate_options(self.calib_frames, self.eval_frames, self.min_oks)


@dataclass(frozen=True)
class BuildResult:
    """A built (or reused) engine."""

    engine: Path
    manifest: Path
    size_bytes: int
    seconds: float
    reused: bool
    accuracy: dict | None
    forced: bool


def parse_batch(text: str) -> tuple[int, int, int]:
    """``"1:8:32"`` (or ``"8"`` = 8:8:8) -> (1, 8, 32), with a clear error."""
    parts = text.split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise ValueError(f"--batch must be MIN:OPT:MAX (e.g. 1:8:32) or one number, got {text!r}")
    return values[0], values[1], values[2]


# --- the whole build --------------------------------------------------------------------------


def build_engine(
    model: str | os.PathLike,
    *,
    precision: Precision = "fp16",
    weights: str | os.PathLike | None = None,
    model_name: str | None = None,
    calib: str | os.PathLike | None = None,
    calib_frames: int = 64,
    eval_frames: int = 16,
    batch: tuple[int, int, int] = (1, 8, 32),
    gpu_arch: str | None = None,
    out: str | os.PathLike = "engines",
    min_oks: float = 0.95,
    force: bool = False,
    flavour: Literal["auto", "tensorrt", "tensorrt_rtx"] = "auto",
    progress: Progress | None = None,
) -> BuildResult:
    """Build a TensorRT engine (+ manifest) of a zoo model or an ONNX file.

    Args:
        model: zoo name (``"yolo11n-pose"``, ``"rsn18"``, ...) or a ``.onnx`` file.
        precision: "fp32" | "fp16" | "int8".
        weights: checkpoint of a zoo model (YOLO11n-pose: the fetched default).
        model_name: for an ONNX file: the zoo entry whose pre/post-processing it follows.
        calib: int8 calibration frames: a video file or an image folder (default: the sample
            video); ``calib_frames`` of them, evenly spaced. Evaluation frames for the gate come
            from the same source, after the calibration frames.
        batch: (min, opt, max) batch of the optimization profile.
        gpu_arch: compute capability to build for (e.g. "sm80"); TensorRT-RTX needs it on a
            machine without a GPU.
        out: output directory (default ``engines/``).
        min_oks: the accuracy gate's threshold (mean OKS similarity vs FP32).
        force: keep an engine that fails the gate (the manifest says so).
        flavour: which TensorRT to build with ("auto": tensorrt, else TensorRT-RTX).
        progress: called with one line per step.
    """
    opts = BuildOptions(
        precision=precision, batch=tuple(batch), calib=None if calib is None else str(calib),
        calib_frames=calib_frames, eval_frames=eval_frames, gpu_arch=gpu_arch, min_oks=min_oks,
        force=force, flavour=flavour,
    )  # fmt: skip
    say = progress or log.info
    from rtpose.backends.tensorrt.flavour import detect_flavour

    flav = detect_flavour(opts.flavour)  # fail fast when no TensorRT is installed
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rtpose-build-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        subject = export_subject(model, weights, model_name, work)
        say(f"[1/5] fp32 ONNX of {subject.info.name}: {subject.onnx.name} "
            f"({time.perf_counter() - t:.1f} s)")  # fmt: skip
        _check_batch(subject, opts.batch)

        t = time.perf_counter()
        candidate, calib_note = _apply_precision(subject, opts, work)
        say(f"[2/5] {opts.precision} ONNX{calib_note} ({time.perf_counter() - t:.1f} s)")

        t = time.perf_counter()
        report = None
        if opts.precision != "fp32":
            frames = gate_frames(opts.calib, opts.eval_frames, offset=opts.calib_frames)
            report = accuracy_gate(
                subject, candidate, frames, precision=opts.precision, min_oks=opts.min_oks
            )
            say(f"[3/5] accuracy gate: {report.summary()} ({time.perf_counter() - t:.1f} s)")
            if not report.passed and not opts.force:
                raise EngineBuildError(
                    f"{subject.info.name} {opts.precision} failed the accuracy gate: "
                    f"{report.summary()}. Use fp16 / fp32, more or better calibration frames "
                    f"(--calib, --calib-frames), or --force to keep the engine anyway"
                )
            if not report.passed:
                say("[3/5] --force: keeping an engine that FAILED the accuracy gate")
        else:
            say("[3/5] accuracy gate: fp32 is the reference, nothing to compare")

        return _build_and_record(subject, candidate, opts, flav, report, out_dir, say, start)


def _check_batch(subject: Subject, batch: tuple[int, int, int]) -> None:
    import onnx

    graph = onnx.load(str(subject.onnx), load_external_data=False).graph
    dim = next(i for i in graph.input if i.name == subject.input_name).type.tensor_type.shape.dim[0]
    if dim.dim_value and not (batch[0] == batch[2] == dim.dim_value):
        raise ValueError(
            f"{subject.onnx.name} has a fixed batch of {dim.dim_value}; it cannot take the batch "
            f"profile {batch[0]}:{batch[1]}:{batch[2]} (use --batch {dim.dim_value})"
        )


def _apply_precision(subject: Subject, opts: BuildOptions, work: Path) -> tuple[Path, str]:
    from rtpose.deploy.fp16 import convert_fp16

    if opts.precision == "fp32":
        return subject.onnx, ""
    if opts.precision == "fp16":
        return convert_fp16(subject.onnx, work / "model-fp16.onnx"), " (mixed precision)"
    return calibrate_int8(
        subject, work / "model-int8.onnx", calib=opts.calib, calib_frames=opts.calib_frames,
        target="tensorrt",
    )  # fmt: skip


def _build_and_record(subject, candidate, opts, flav, report, out_dir, say, start) -> BuildResult:
    from rtpose.assets import sha256_of
    from rtpose.backends.tensorrt import manifest as mf
    from rtpose.backends.tensorrt.flavour import compute_capability
    from rtpose.deploy.trt_builder import build_serialized_engine

    if opts.gpu_arch:
        cc = compute_capability(opts.gpu_arch)
    else:  # the local GPU (NVIDIA TensorRT, or TensorRT-RTX's CURRENT)
        from rtpose.cuda.probe import gpu_status

        probe = gpu_status()
        if probe.compute_capability is None:
            raise EngineBuildError(
                f"no GPU to build for ({probe.reason}); name the target with gpu_arch= "
                "(--gpu-arch, e.g. sm80) when building with TensorRT-RTX on a machine without one"
            )
        cc = probe.compute_capability
    onnx_sha = sha256_of(candidate)  # what the engine is built from: precision included
    key = mf.engine_cache_key(onnx_sha, opts.precision, opts.batch, flav, cc)
    lo, opt, hi = opts.batch
    stem = f"{subject.info.name}-{opts.precision}-b{lo}_{opt}_{hi}-{flav.name}{flav.version}-{key}"
    engine_path = out_dir / f"{stem}.engine"
    manifest_path = engine_path.with_suffix(".json")
    if engine_path.is_file() and manifest_path.is_file():
        say(f"[4/5] engine cache hit: {engine_path}")
        say("[5/5] manifest exists: " + str(manifest_path))
        old = mf.EngineManifest.load(manifest_path)
        return BuildResult(engine_path, manifest_path, engine_path.stat().st_size,
                           time.perf_counter() - start, True, old.accuracy, old.forced)  # fmt: skip
    t = time.perf_counter()
    info = build_serialized_engine(
        candidate, engine_path, input_name=subject.input_name, batch=opts.batch,
        gpu_arch=opts.gpu_arch, timing_cache=out_dir / f"timing-{flav.name}{flav.version}.cache",
        flavour=flav, fp16_flag=opts.precision == "fp16" and not flav.strongly_typed,
    )  # fmt: skip
    say(f"[4/5] {flav.name} {flav.version} engine: {engine_path.name} "
        f"({info.size_bytes / 2**20:.1f} MiB, {time.perf_counter() - t:.1f} s)")  # fmt: skip
    engine_report = _engine_gate(subject, engine_path, opts, say)
    if engine_report is not None:
        report = engine_report  # the engine itself, where a GPU can run it
    manifest = _manifest(subject, candidate, opts, info, report, engine_path)
    try:
        manifest.save(manifest_path)
    except BaseException:
        engine_path.unlink(missing_ok=True)  # no engine without its manifest
        raise
    say(f"[5/5] manifest: {manifest_path}")
    return BuildResult(
        engine_path, manifest_path, info.size_bytes, time.perf_counter() - start, False,
        None if report is None else report.to_dict(), bool(report and not report.passed),
    )  # fmt: skip


def _engine_gate(subject, engine_path: Path, opts: BuildOptions, say: Progress):
    """On a machine whose GPU can run the new engine: the accuracy gate again, on the engine's
    own outputs (vs fp32 ONNX Runtime). None where no GPU is usable (the ONNX gate stands)."""
    from rtpose.cuda.probe import gpu_status

    status = gpu_status()
    if not status.available:
        say(f"[4/5] the engine itself was not run (no usable GPU here: {status.reason})")
        return None
    from rtpose.backends.tensorrt.runtime import TensorRTBackend

    frames = gate_frames(opts.calib, opts.eval_frames, offset=opts.calib_frames)
    try:
        with TensorRTBackend(engine_path) as engine:  # its manifest is written next
            report = accuracy_gate(
                subject, None, frames, precision=opts.precision, min_oks=opts.min_oks,
                candidate_backend=engine,
            )  # fmt: skip
    except BaseException:
        engine_path.unlink(missing_ok=True)  # no engine that cannot be checked stays behind
        raise
    say(f"[4/5] engine on {status.name}: {report.summary()}")
    if not report.passed and not opts.force:
        engine_path.unlink(missing_ok=True)
        raise EngineBuildError(f"the {opts.precision} engine failed the accuracy gate on the "
                               f"GPU: {report.summary()}; --force keeps it")  # fmt: skip
    return report


def _manifest(subject, candidate, opts, info, report, engine_path):
    """The engine manifest (tensors, normalisation, codec, builder and GPU) of a fresh build."""
    import datetime as dt

    from rtpose.assets import sha256_of
    from rtpose.backends.tensorrt import manifest as mf
    from rtpose.backends.tensorrt.flavour import compute_capability

    inputs, outputs = _tensor_specs(candidate)
    cc = compute_capability(info.compute_capability) if info.compute_capability else (0, 0)
    codec = subject.info.codec
    size = list(subject.info.input_size)
    if subject.info.top_down:
        layout = {"layout": "heatmaps (N, K, h, w)", "codec": dataclasses.asdict(codec),
                  "heatmap_size": list(subject.info.heatmap_size), "input_size": size}  # fmt: skip
    else:
        layout = {"layout": "yolo-pose (N, 4 + 1 + 3K, anchors)", "codec": "yolo",
                  "input_size": size}  # fmt: skip
    return mf.EngineManifest(
        model_name=subject.info.name, model_sha256=sha256_of(candidate), precision=opts.precision,
        inputs=inputs, batch=opts.batch, outputs=outputs, output_codec=layout,
        normalisation=subject.normalisation, keypoint_set=subject.info.skeleton,
        builder=mf.BuilderStamp(info.flavour, info.flavour_version, info.gpu_name, cc),
        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(info.seconds, 3),
        accuracy=None if report is None else report.to_dict(),
        forced=bool(report and not report.passed), engine_file=engine_path.name,
        engine_sha256=sha256_of(engine_path),
    )  # fmt: skip


def _tensor_specs(path: Path):
    """Input and output TensorSpecs of an ONNX file (batch dims as -1)."""
    import onnx

    from rtpose.backends.base import TensorSpec

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def spec(value):
        t = value.type.tensor_type
        dims = tuple(d.dim_value if d.dim_value > 0 else -1 for d in t.shape.dim)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        return TensorSpec(value.name, dims, dtype)

    inputs = tuple(spec(v) for v in graph.input if v.name not in initializers)
    return inputs, tuple(spec(v) for v in graph.output)
