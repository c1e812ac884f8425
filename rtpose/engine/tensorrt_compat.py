"""Does a TensorRT engine fit this machine? The runtime flavour and the engine manifest check.

A serialized plan runs only under the TensorRT flavour and version that built it and on the
compute capability it was built for; the manifest written beside it (``<engine>.json``) says
which, so a mismatch is reported with a rebuild hint instead of a deserialization failure.
Nothing here creates a TensorRT object.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from rtpose.errors import BackendUnavailableError, EngineBuildError

log = logging.getLogger(__name__)

# runtime module name -> (flavour name, pip command)
_RUNTIME_MODULES: dict[str, tuple[str, str]] = {
    "tensorrt": ("tensorrt", "pip install tensorrt"),
    "tensorrt_rtx_bindings": (
        "tensorrt_rtx",
        "pip install tensorrt-rtx-cu13-bindings tensorrt-rtx-cu13-libs",
    ),
    "tensorrt_lean": ("tensorrt_lean", "pip install tensorrt-lean"),
}


@dataclass(frozen=True)
class RuntimeFlavour:
    """The TensorRT runtime in use: "tensorrt", "tensorrt_rtx" or "tensorrt_lean"."""

    name: str
    version: str
    module: ModuleType


def load_runtime_flavour() -> RuntimeFlavour:
    """Imports the installed TensorRT runtime (call only after a GPU was found)."""
    try:
        from rtpose.engine.tensorrt_flavour import detect_flavour  # the builder's seam
    except ImportError:
        detect_flavour = None
    if detect_flavour is not None:
        flavour = detect_flavour()
        return RuntimeFlavour(flavour.name, flavour.version, flavour.module)
    failures = []
    for module_name, (flavour_name, _) in _RUNTIME_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            failures.append(f"{module_name}: {exc}")
            continue
        return RuntimeFlavour(flavour_name, str(getattr(module, "__version__", "?")), module)
    hints = "; or ".join(pip for _, pip in _RUNTIME_MODULES.values())
    raise BackendUnavailableError(
        f"no TensorRT runtime is installed ({'; '.join(failures)}). Install one: {hints}"
    )


# ---- manifest -------------------------------------------------------------------------------


def manifest_path(engine_path: str | os.PathLike) -> Path | None:
    """The manifest beside an engine: ``<engine>.json`` (``x.engine.json``), else ``x.json``."""
    engine_path = Path(engine_path)
    for candidate in (Path(f"{engine_path}.json"), engine_path.with_suffix(".json")):
        if candidate.is_file() and candidate != engine_path:
            return candidate
    return None


def parse_compute_capability(value: object) -> tuple[int, int] | None:
    """ "8.0", "sm80", "SM_86", "sm_120", "90", [8, 0] -> (major, minor); None/"CURRENT" -> None."""
    if value is None:
        return None
    if isinstance(value, list | tuple) and len(value) == 2:
        return int(value[0]), int(value[1])
    text = str(value).strip().upper().removeprefix("SM").lstrip("_")
    if text in ("", "CURRENT"):
        return None
    major, dot, minor = text.partition(".")
    if dot and major.isdigit() and minor.isdigit():
        return int(major), int(minor)
    if text.isdigit() and len(text) >= 2:
        return int(text[:-1]), int(text[-1])
    raise ValueError(
        f"unreadable compute capability {value!r}; expected e.g. '8.0', 'sm80' or [8, 0]"
    )


def check_manifest(
    manifest: Mapping[str, Any],
    *,
    engine_path: str | os.PathLike,
    flavour: str,
    version: str,
    compute_capability: tuple[int, int] | None,
) -> None:
    """Refuses an engine built by another TensorRT flavour/version or for another GPU.

    Reads ``manifest["builder"]`` (``flavour``, ``version``, ``compute_capability``). A field
    that is absent is not checked; ``compute_capability=None`` (unknown here) skips that check.

    Raises:
        EngineBuildError: saying what built the engine, what this machine has, and how to rebuild.
    """
    builder = manifest.get("builder")
    if not isinstance(builder, Mapping):
        raise EngineBuildError(
            f"manifest of {engine_path} has no 'builder' section (got keys {sorted(manifest)}); "
            "rebuild the engine with rtpose-build"
        )
    built_flavour = builder.get("flavour", builder.get("name"))
    built_version = builder.get("version")
    built_cc = parse_compute_capability(builder.get("compute_capability"))
    problems = []
    if built_flavour is not None and built_flavour != flavour:
        problems.append(f"flavour {built_flavour} != {flavour}")
    if built_version is not None and str(built_version) != version:
        problems.append(f"version {built_version} != {version}")
    if built_cc is not None and compute_capability is not None and built_cc != compute_capability:
        problems.append(f"compute capability SM{_sm(built_cc)} != SM{_sm(compute_capability)}")
    if problems:
        here_cc = f"SM{_sm(compute_capability)}" if compute_capability else "an unknown GPU"
        raise EngineBuildError(
            f"engine {engine_path} was built by {built_flavour} {built_version} for "
            f"SM{_sm(built_cc) if built_cc else '?'}; this machine has {flavour} {version} and "
            f"{here_cc} ({'; '.join(problems)}). Plans are not portable: rebuild it here with "
            "rtpose-build MODEL --precision ... (or delete the engine to let rtpose rebuild it)"
        )


def _sm(capability: tuple[int, int] | None) -> str:
    return "?" if capability is None else f"{capability[0]}{capability[1]}"


def read_manifest(
    engine_path: Path, manifest: str | os.PathLike | Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The manifest given (a mapping or a path) or found beside the engine; None (logged)
    when there is none."""
    if isinstance(manifest, Mapping):
        return dict(manifest)
    path = Path(manifest) if manifest is not None else manifest_path(engine_path)
    if path is None:
        log.warning("no manifest beside %s: cannot check it was built for this GPU", engine_path)
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EngineBuildError(
            f"engine manifest {path} is unreadable ({exc}); rebuild the engine with rtpose-build"
        ) from exc
    if not isinstance(data, dict):
        raise EngineBuildError(f"engine manifest {path} is not a JSON object; rebuild the engine")
    return data
