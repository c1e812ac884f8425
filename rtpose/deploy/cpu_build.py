"""``rtpose-build --target cpu``: the int8 ONNX the CPU backends run, gated and cached.

The same chain as the TensorRT build (:mod:`rtpose.deploy.build`) without the engine:

1. **fp32 ONNX**: the cached export the ONNX Runtime path runs (YOLO: dynamic height and width,
   so the stream's rectangular letterbox runs unchanged), or an ONNX file as given;
2. **int8 ONNX**: Q/DQ with the CPU recipe of :mod:`rtpose.deploy.int8` (``target="cpu"``),
   calibrated on real frames through the estimators' own preprocessing;
3. **accuracy gate**: keypoints of the int8 ONNX and of fp32 on later frames of the same source
   (:func:`rtpose.deploy.subject.accuracy_gate`), run by ONNX Runtime and by the backend that
   will run it; below ``min_oks`` nothing is kept (or run) unless ``force``;
4. **cache**: ``<name>-int8-cpu-<key>.onnx`` and its ``.json`` manifest (recipe, ONNX Runtime
   version, calibration, the gate's report), written atomically. The key covers the fp32 model's
   hash, the recipe, the ONNX Runtime version (its quantizer writes the file), whether the
   weights were reduced to 7 bits (no VNNI) and the calibration settings; a model with the same
   key is reused without recalibrating.

Only int8: fp16 is not faster than fp32 on ONNX Runtime's x86 CPU provider (it has no fp16
convolution kernels; ``benchmarks/bench_cpu_int8.py`` measures it), so the CPU target refuses it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from rtpose._cpu import has_int8_dot_product
from rtpose._io import atomic_path, atomic_write_text
from rtpose.assets import sha256_of
from rtpose.deploy.build import BuildResult, Progress
from rtpose.deploy.subject import (
    accuracy_gate,
    calibrate_int8,
    check_gate_options,
    export_subject,
    gate_frames,
)
from rtpose.errors import EngineBuildError

log = logging.getLogger(__name__)

CPU_INT8_RECIPE = 2  # bump when the CPU recipe in rtpose.deploy.int8 changes
BENCHMARK = "benchmarks/bench_cpu_int8.py"


@dataclass(frozen=True)
class CpuModelManifest:
    """``<model>.json`` beside a CPU int8 model: what it is, how it was made, how it gated."""

    model_name: str
    precision: str
    recipe: int
    onnxruntime: str
    reduce_range: bool
    source_sha256: str  # the fp32 ONNX it was quantized from
    model_sha256: str  # the int8 ONNX itself
    calibration: dict
    gates: dict  # backend name -> the gate's report of the model run by that backend
    forced: bool
    built_at: str
    build_seconds: float

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> CpuModelManifest:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise EngineBuildError(
                f"CPU model manifest {path} cannot be read ({exc}); delete it and its .onnx to "
                "rebuild"
            ) from exc


def build_cpu_model(
    model: str | os.PathLike,
    *,
    precision: str = "int8",
    weights: str | os.PathLike | None = None,
    model_name: str | None = None,
    calib: str | os.PathLike | None = None,
    calib_frames: int = 64,
    eval_frames: int = 16,
    out: str | os.PathLike = "engines",
    min_oks: float = 0.95,
    force: bool = False,
    backend: Literal["onnxruntime", "openvino"] = "onnxruntime",
    progress: Progress | None = None,
) -> BuildResult:
    """Build (or reuse) the gated int8 ONNX of a zoo model or an ONNX file for the CPU backends.

    Arguments as :func:`rtpose.deploy.build.build_engine`; ``BuildResult.engine`` is the int8
    ``.onnx``, ``BuildResult.manifest`` its ``.json``. The model is always gated on ONNX Runtime
    when it is made; ``backend="openvino"`` also gates it as OpenVINO runs it (once per model:
    the report joins the manifest), since each runtime rounds its own way.
    ``BuildResult.accuracy`` is the report of ``backend``.

    Raises:
        ValueError: ``precision`` other than int8 (fp16 is not faster on the CPU; fp32 needs no
            build), bad counts or threshold.
        EngineBuildError: the gate failed on ONNX Runtime (nothing is written unless
            ``force``) or on ``backend``, or a cached model failed it and ``force`` is not given.
    """
    if precision != "int8":
        why = (
            "fp32 needs no build: the CPU backends run the fp32 export directly"
            if precision == "fp32"
            else f"fp16 is not faster than fp32 on the CPU backends (measured by {BENCHMARK})"
            if precision == "fp16"
            else f"unknown precision {precision!r}"
        )
        raise ValueError(f"the CPU target builds int8 models only: {why}")
    check_gate_options(calib_frames, eval_frames, min_oks)
    if backend not in ("onnxruntime", "openvino"):
        raise ValueError(f"backend must be 'onnxruntime' or 'openvino', got {backend!r}")
    import onnxruntime

    say = progress or log.info
    start = time.perf_counter()
    calib = None if calib is None else str(calib)
    out_dir = Path(out)
    with tempfile.TemporaryDirectory(prefix="rtpose-build-cpu-") as tmp:
        t = time.perf_counter()
        subject = export_subject(model, weights, model_name, Path(tmp), target="cpu")
        source_sha = sha256_of(subject.onnx)
        say(f"[1/4] fp32 ONNX of {subject.info.name}: {subject.onnx.name} "
            f"({time.perf_counter() - t:.1f} s)")  # fmt: skip
        reduce_range = not has_int8_dot_product()
        calibration = {"source": calib or "sample video", "frames": calib_frames,
                       "eval_frames": eval_frames}  # fmt: skip
        key = _cache_key(source_sha, onnxruntime.__version__, reduce_range, calibration)
        path = out_dir / f"{subject.info.name}-int8-cpu-{key}.onnx"
        manifest_path = path.with_suffix(".json")
        frames = None
        reused = path.is_file() and manifest_path.is_file()
        if reused:
            manifest = CpuModelManifest.load(manifest_path)
            say(f"[2/4] int8 CPU model cache hit: {path}")
        else:
            t = time.perf_counter()
            candidate, note = calibrate_int8(
                subject, Path(tmp) / "model-int8.onnx", calib=calib, calib_frames=calib_frames,
                target="cpu",
            )  # fmt: skip
            say(f"[2/4] int8 ONNX for the CPU{note} ({time.perf_counter() - t:.1f} s)")
            frames = gate_frames(calib, eval_frames, offset=calib_frames)
            report = _gate(subject, candidate, "onnxruntime", frames, min_oks, say)
            if not report.passed and not force:  # nothing is written
                raise EngineBuildError(
                    f"{subject.info.name} int8 for the CPU failed the accuracy gate: "
                    f"{report.summary()}. Use fp32, more or better calibration frames (--calib, "
                    "--calib-frames), or --force to keep the model anyway"
                )
            manifest = CpuModelManifest(
                model_name=subject.info.name, precision="int8", recipe=CPU_INT8_RECIPE,
                onnxruntime=onnxruntime.__version__, reduce_range=reduce_range,
                source_sha256=source_sha, model_sha256=sha256_of(candidate),
                calibration=calibration, gates={"onnxruntime": report.to_dict()},
                forced=not report.passed,
                built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                build_seconds=round(time.perf_counter() - start, 3),
            )  # fmt: skip
            _store(candidate, path, manifest, manifest_path)
        if backend not in manifest.gates:  # gate the backend that will run it, once
            frames = frames or gate_frames(calib, eval_frames, offset=calib_frames)
            report = _gate(subject, path, backend, frames, min_oks, say)
            manifest = dataclasses.replace(
                manifest, gates={**manifest.gates, backend: report.to_dict()},
                forced=manifest.forced or (force and not report.passed),
            )  # fmt: skip
            manifest.save(manifest_path)
    gate = manifest.gates[backend]
    if gate["oks_mean"] < min_oks and not force:
        raise EngineBuildError(
            f"the int8 CPU model {path} failed the accuracy gate on {backend} (mean OKS "
            f"{gate['oks_mean']:.4f} < {min_oks}, {gate['missed']} persons missed): "
            + ("use backend='onnxruntime' for int8, or " if backend != "onnxruntime" else "")
            + "delete it and its .json to rebuild (--calib, --calib-frames), or pass --force "
            "to use it"
        )
    if gate["oks_mean"] < min_oks:
        say(f"[4/4] --force: using a model that FAILED the accuracy gate on {backend}")
    say(f"[4/4] int8 CPU model: {path} (mean OKS {gate['oks_mean']:.4f} vs fp32 on {backend}"
        + (", reused" if reused else "") + ")")  # fmt: skip
    return BuildResult(
        path, manifest_path, path.stat().st_size, time.perf_counter() - start, reused,
        gate, manifest.forced,
    )  # fmt: skip


def _gate(subject, candidate: Path, backend: str, frames, min_oks: float, say):
    """The accuracy gate of ``candidate`` run by ``backend`` against fp32 ONNX Runtime."""
    t = time.perf_counter()
    runner = None
    if backend == "openvino":
        from rtpose.backends.openvino import OpenVinoBackend

        runner = OpenVinoBackend(candidate)
    try:
        report = accuracy_gate(
            subject, candidate, frames, precision="int8", min_oks=min_oks,
            candidate_backend=runner,
        )  # fmt: skip
    finally:
        if runner is not None:
            runner.close()
    say(f"[3/4] accuracy gate on {backend}: {report.summary()} ({time.perf_counter() - t:.1f} s)")
    return report


def _cache_key(source_sha: str, ort_version: str, reduce_range: bool, calibration: dict) -> str:
    text = json.dumps(
        [source_sha, CPU_INT8_RECIPE, ort_version, reduce_range, calibration], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _store(candidate: Path, path: Path, manifest: CpuModelManifest, manifest_path: Path) -> None:
    """The model, then its manifest; a model is never left behind without its manifest."""
    with atomic_path(path) as part:  # the work directory may be on another file system
        shutil.copyfile(candidate, part)
    try:
        manifest.save(manifest_path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
