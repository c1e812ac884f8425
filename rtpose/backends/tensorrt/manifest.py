"""The engine manifest: ``<engine>.json`` beside every built engine, its one reader and its one
compatibility check.

A TensorRT plan says nothing about how to feed it or read it: the manifest carries what the
runtime needs (tensor names, shapes, normalisation, codec, keypoint set) and what decides whether
the plan can run here at all (which TensorRT built it, for which GPU). Plans are not portable
across TensorRT versions or GPU architectures, so :func:`check_runtime_compatible` refuses a
mismatch with a message that says how to rebuild, instead of a crash inside TensorRT.
``rtpose-build`` writes it (:meth:`EngineManifest.save`); the TensorRT backend reads it
(:func:`read_manifest`). Nothing here creates a TensorRT object.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from rtpose._io import atomic_write_text
from rtpose.backends.base import TensorSpec
from rtpose.backends.tensorrt.flavour import (
    Flavour,
    FlavourName,
    check_flavour_name,
    display_name,
    format_compute_capability,
)
from rtpose.errors import InferenceError
from rtpose.models.zoo import Normalisation

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "int8"]
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BuilderStamp:
    """Which TensorRT built the engine, for which GPU.

    Attributes:
        flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        version: that TensorRT's version.
        gpu_name: the GPU it was built on, None when built for an architecture by name.
        compute_capability: the target GPU architecture, (major, minor).
    """

    flavour: FlavourName
    version: str
    gpu_name: str | None
    compute_capability: tuple[int, int]

    def __post_init__(self) -> None:
        check_flavour_name(self.flavour)
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
        except json.JSONDecodeError as exc:
            raise ValueError(f"not an rtpose engine manifest (invalid JSON: {exc})") from exc
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EngineManifest:
        """Build a manifest from its JSON object; ValueError naming what is missing or malformed."""
        if not isinstance(raw, Mapping):
            raise ValueError(
                f"not an rtpose engine manifest: expected a JSON object, got {type(raw).__name__}"
            )
        missing = [
            f.name
            for f in fields(cls)
            if f.default is MISSING and f.default_factory is MISSING and f.name not in raw
        ]
        if missing:
            raise ValueError(f"not an rtpose engine manifest: missing {missing}")
        try:
            norm = raw["normalisation"]
            return cls(
                **{
                    **raw,
                    "inputs": tuple(TensorSpec(**t) for t in raw["inputs"]),
                    "outputs": tuple(TensorSpec(**t) for t in raw["outputs"]),
                    "normalisation": Normalisation(
                        tuple(norm["mean"]), tuple(norm["std"]), norm["channel_order"]
                    ),
                    "builder": BuilderStamp(**raw["builder"]),
                }
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f"not an rtpose engine manifest ({type(exc).__name__}: {exc})"
            ) from exc

    def save(self, path: str | os.PathLike) -> Path:
        """Write the manifest to ``path`` atomically (temporary file + rename)."""
        return atomic_write_text(path, self.to_json())

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


def manifest_path(engine_path: str | os.PathLike) -> Path | None:
    """The manifest beside an engine: ``<engine>.json`` (``x.engine.json``), else ``x.json``
    (what rtpose-build writes); None when neither exists."""
    engine_path = Path(engine_path)
    for candidate in (Path(f"{engine_path}.json"), engine_path.with_suffix(".json")):
        if candidate.is_file() and candidate != engine_path:
            return candidate
    return None


def read_manifest(
    engine_path: str | os.PathLike,
    manifest: EngineManifest | Mapping[str, Any] | str | os.PathLike | None = None,
) -> EngineManifest | None:
    """The manifest of the engine at ``engine_path``, for loading it.

    Args:
        engine_path: the plan file.
        manifest: the manifest itself, its JSON object, or its path; None looks beside the
            engine (:func:`manifest_path`).

    Returns:
        The manifest, or None (logged) when none is given and none lies beside the engine.

    Raises:
        ValueError: ``manifest`` is a mapping that is not a manifest (the caller's mistake).
        InferenceError: the manifest file is unreadable or not an rtpose manifest.
    """
    if isinstance(manifest, EngineManifest):
        return manifest
    if isinstance(manifest, Mapping):
        return EngineManifest.from_dict(manifest)
    path = Path(manifest) if manifest is not None else manifest_path(engine_path)
    if path is None:
        log.warning("no manifest beside %s: cannot check it was built for this GPU", engine_path)
        return None
    try:
        return EngineManifest.load(path)
    except (OSError, ValueError) as exc:
        raise InferenceError(
            f"engine manifest {path} is unreadable ({exc}); rebuild the engine with rtpose-build"
        ) from exc


def check_runtime_compatible(
    manifest: EngineManifest,
    *,
    flavour: Flavour,
    compute_capability: tuple[int, int] | None,
    engine_path: str | os.PathLike | None = None,
) -> None:
    """Raise InferenceError unless this TensorRT and GPU can run the manifest's engine.

    Plans run only under the TensorRT flavour and exact version that built them, and on the
    compute capability they were built for. ``compute_capability=None`` (GPU unknown) skips the
    GPU check. ``engine_path`` names the engine in the message (default: the manifest's
    ``engine_file``).

    Raises:
        InferenceError: saying what built the engine, what this machine has, what differs, and
            the rtpose-build command that rebuilds it here.
    """
    stamp = manifest.builder
    problems = []
    if stamp.flavour != flavour.name:
        problems.append(f"flavour {stamp.flavour} != {flavour.name}")
    if stamp.version != flavour.version:
        problems.append(f"version {stamp.version} != {flavour.version}")
    here = tuple(compute_capability) if compute_capability is not None else None
    if here is not None and here != stamp.compute_capability:
        problems.append(
            f"compute capability {format_compute_capability(stamp.compute_capability)} != "
            f"{format_compute_capability(here)}"
        )
    if not problems:
        return
    here_cc = format_compute_capability(here) if here is not None else "GPU unknown"
    lo, opt, hi = manifest.batch
    raise InferenceError(
        f"engine {engine_path or manifest.engine_file} built by {display_name(stamp.flavour)} "
        f"{stamp.version} for {format_compute_capability(stamp.compute_capability)}; this machine "
        f"has {flavour.display} / {here_cc} ({'; '.join(problems)}). Plans are not portable: "
        f"rebuild with rtpose-build {manifest.model_name} --precision {manifest.precision} "
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
