"""The engine manifest: ``<engine>.json`` beside every built engine (ARCHITECTURE.md section 3).

A TensorRT plan says nothing about how to feed it or read it: the manifest carries what the
runtime needs (tensor names, shapes, normalisation, codec, keypoint set) and what decides whether
the plan can run here at all (which TensorRT built it, for which GPU). Plans are not portable
across TensorRT versions or GPU architectures, so :func:`check_runtime_compatible` refuses a
mismatch with a message that says how to rebuild, instead of a crash inside TensorRT.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rtpose.engine.tensorrt_flavour import Flavour, format_compute_capability
from rtpose.errors import EngineBuildError
from rtpose.models.zoo import Normalisation

Precision = Literal["fp32", "fp16", "int8"]
SCHEMA_VERSION = 1
_FLAVOUR_DISPLAY = {"tensorrt": "TensorRT", "tensorrt_rtx": "TensorRT-RTX"}


@dataclass(frozen=True)
class TensorSpec:
    """One engine input or output.

    Attributes:
        name: tensor name in the engine.
        shape: dims, -1 for the batch (and any other dynamic) dimension.
        dtype: numpy-style name, e.g. ``"float32"``, ``"float16"``, ``"int8"``.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if any(d < -1 or d == 0 for d in self.shape):
            raise ValueError(f"tensor {self.name!r}: dims must be > 0 or -1, got {self.shape}")


@dataclass(frozen=True)
class BuilderStamp:
    """Which TensorRT built the engine, for which GPU.

    Attributes:
        flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        version: that TensorRT's version.
        gpu_name: the GPU it was built on, None when built for an architecture by name.
        compute_capability: the target GPU architecture, (major, minor).
    """

    flavour: Literal["tensorrt", "tensorrt_rtx"]
    version: str
    gpu_name: str | None
    compute_capability: tuple[int, int]

    def __post_init__(self) -> None:
        if self.flavour not in _FLAVOUR_DISPLAY:
            raise ValueError(
                f"flavour must be one of {sorted(_FLAVOUR_DISPLAY)}, got {self.flavour!r}"
            )
        object.__setattr__(self, "compute_capability", tuple(self.compute_capability))
        if len(self.compute_capability) != 2:
            raise ValueError(
                f"compute_capability must be (major, minor), got {self.compute_capability}"
            )


@dataclass(frozen=True)
class EngineManifest:
    """Everything the runtime needs to know about an engine besides the plan itself.

    Attributes:
        model_name: zoo name or the ONNX file's stem.
        model_sha256: digest of the ONNX the engine was built from.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        inputs, outputs: the engine's tensors (batch dimension -1).
        batch: the optimization profile's (min, opt, max) batch sizes.
        output_codec: how to read the outputs (layout, codec name and parameters); JSON values.
        normalisation: what the input wants: ``(pixel - mean) / std`` in ``channel_order``.
        keypoint_set: the skeleton name (see :mod:`rtpose.skeletons`).
        builder: which TensorRT built it and for which GPU.
        built_at: ISO 8601 time of the build.
        build_seconds: wall time of the build.
        accuracy: the accuracy report against FP32 (JSON values), None when not measured.
        forced: True when built although the accuracy check failed (``--force``).
        engine_file: the plan's file name, relative to the manifest's directory.
        engine_sha256: digest of the plan.
        schema: manifest format version.
    """

    model_name: str
    model_sha256: str
    precision: Precision
    inputs: tuple[TensorSpec, ...]
    batch: tuple[int, int, int]
    outputs: tuple[TensorSpec, ...]
    output_codec: dict[str, Any]
    normalisation: Normalisation
    keypoint_set: str
    builder: BuilderStamp
    built_at: str
    build_seconds: float
    accuracy: dict[str, Any] | None
    forced: bool
    engine_file: str
    engine_sha256: str
    schema: int = field(default=SCHEMA_VERSION)

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "fp16", "int8"):
            raise ValueError(f"precision must be fp32, fp16 or int8, got {self.precision!r}")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "batch", tuple(self.batch))
        lo, opt, hi = self.batch
        if lo < 1 or not lo <= opt <= hi:
            raise ValueError(f"batch must satisfy 1 <= min <= opt <= max, got {self.batch}")
        if not self.inputs or not self.outputs:
            raise ValueError("a manifest needs at least one input and one output")
        if Path(self.engine_file).name != self.engine_file:
            raise ValueError(
                "engine_file must be a bare file name beside the manifest, "
                f"got {self.engine_file!r}"
            )
        if self.schema != SCHEMA_VERSION:
            raise ValueError(
                f"manifest schema {self.schema} is not the one this rtpose reads "
                f"({SCHEMA_VERSION}); rebuild the engine with this rtpose-build"
            )

    def to_json(self) -> str:
        """The manifest as indented JSON (tuples become lists)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> EngineManifest:
        """Parse :meth:`to_json` output; ValueError naming what is missing or malformed."""
        try:
            raw = json.loads(text)
            return cls(
                **{
                    **raw,
                    "inputs": tuple(TensorSpec(**t) for t in raw["inputs"]),
                    "outputs": tuple(TensorSpec(**t) for t in raw["outputs"]),
                    "normalisation": Normalisation(
                        tuple(raw["normalisation"]["mean"]),
                        tuple(raw["normalisation"]["std"]),
                        raw["normalisation"]["channel_order"],
                    ),
                    "builder": BuilderStamp(**raw["builder"]),
                }
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(
                f"not an rtpose engine manifest ({type(exc).__name__}: {exc})"
            ) from exc

    def save(self, path: str | os.PathLike) -> Path:
        """Write the manifest to ``path`` atomically (temporary file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".part", dir=path.parent)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> EngineManifest:
        """Read a manifest written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"engine manifest {path} does not exist")
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


def check_runtime_compatible(
    manifest: EngineManifest,
    *,
    flavour: Flavour,
    compute_capability: tuple[int, int] | None,
) -> None:
    """Raise EngineBuildError unless this TensorRT and GPU can run the manifest's engine.

    Plans run only under the TensorRT flavour and exact version that built them, and on the
    compute capability they were built for. ``compute_capability=None`` (GPU unknown) skips the
    GPU check.
    """
    stamp = manifest.builder
    built_cc = format_compute_capability(stamp.compute_capability)
    same_trt = stamp.flavour == flavour.name and stamp.version == flavour.version
    same_gpu = compute_capability is None or tuple(compute_capability) == stamp.compute_capability
    if same_trt and same_gpu:
        return
    here_cc = format_compute_capability(compute_capability) if compute_capability else "GPU unknown"
    lo, opt, hi = manifest.batch
    raise EngineBuildError(
        f"engine {manifest.engine_file} built by {_FLAVOUR_DISPLAY[stamp.flavour]} {stamp.version} "
        f"for {built_cc}; this machine has {flavour.display} / {here_cc}; rebuild with "
        f"rtpose-build {manifest.model_name} --precision {manifest.precision} "
        f"--batch {lo}:{opt}:{hi} on this machine"
    )


def engine_cache_key(
    model_sha256: str,
    precision: Precision,
    batch: tuple[int, int, int],
    flavour: Flavour,
    compute_capability: tuple[int, int],
) -> str:
    """A 16-hex-digit key naming an engine in the cache.

    Two builds share a key exactly when they agree on: the ONNX's sha256, the precision, the
    (min, opt, max) batch profile, the TensorRT flavour name and its full version, and the target
    compute capability. (The key format has its own version, bumped if these fields change.)
    """
    if len(tuple(batch)) != 3:
        raise ValueError(f"batch must be (min, opt, max), got {batch!r}")
    fields = {
        "key_version": 1,
        "model_sha256": model_sha256.lower(),
        "precision": precision,
        "batch": [int(b) for b in batch],
        "flavour": flavour.name,
        "flavour_version": flavour.version,
        "compute_capability": [int(c) for c in compute_capability],
    }
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
