"""Which TensorRT is installed, and the few facts that differ between them.

rtpose builds and runs engines with either NVIDIA TensorRT (module ``tensorrt``; 10.x is weakly
typed with a ``BuilderFlag.FP16``, 11.x is strongly typed only) or TensorRT-RTX (module
``tensorrt_rtx_bindings``; strongly typed, builds for named compute capabilities without a GPU).
Their Python APIs are otherwise the same, so the builder keeps one code path and asks a
:class:`Flavour` for the differences.

The module names are listed once here (:data:`FLAVOUR_MODULES`); backend selection asks
:func:`installed_flavours`, which finds them without importing them. The lean runtime
(``tensorrt_lean``) is not a flavour: it deserializes only version-compatible plans, and
rtpose-build does not make those (no ``VERSION_COMPATIBLE`` builder flag).

Nothing here creates a TensorRT object: without a CUDA driver, TensorRT returns objects that
crash on use, so callers ask :func:`rtpose.cuda.probe.gpu_status` for a GPU first.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

from rtpose.errors import BackendUnavailableError, EngineBuildError

log = logging.getLogger(__name__)

FlavourName = Literal["tensorrt", "tensorrt_rtx"]

#: flavour name -> the Python module it is imported as; the one list of TensorRT modules.
FLAVOUR_MODULES: dict[FlavourName, str] = {
    "tensorrt": "tensorrt",
    "tensorrt_rtx": "tensorrt_rtx_bindings",
}
_PIP: dict[str, str] = {
    "tensorrt": "pip install tensorrt  (NVIDIA TensorRT 10 or 11, needs a GPU to build)",
    "tensorrt_rtx": (
        "pip install tensorrt-rtx-cu13-bindings tensorrt-rtx-cu13-libs  "
        "(TensorRT-RTX; builds for a named GPU architecture without a GPU)"
    ),
}
_DISPLAY: dict[str, str] = {"tensorrt": "TensorRT", "tensorrt_rtx": "TensorRT-RTX"}


@dataclass(frozen=True)
class Flavour:
    """An installed TensorRT.

    Attributes:
        name: ``"tensorrt"`` (NVIDIA TensorRT) or ``"tensorrt_rtx"`` (TensorRT-RTX).
        version: the module's ``__version__``, e.g. ``"10.13.0.35"`` or ``"1.7.1.116"``.
        major: first component of ``version``.
        strongly_typed: True for TensorRT >= 11 and TensorRT-RTX: precision comes from the
            ONNX's types (Cast nodes, FP16 initializers, Q/DQ), there is no FP16 builder flag.
        module: the imported Python module (not compared, not printed).
    """

    name: FlavourName
    version: str
    major: int
    strongly_typed: bool
    module: ModuleType | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_flavour_name(self.name)

    @property
    def display(self) -> str:
        """Human name with version, e.g. ``"TensorRT-RTX 1.7.1.116"``."""
        return f"{display_name(self.name)} {self.version}"


def check_flavour_name(name: object) -> None:
    """ValueError unless ``name`` is one of the flavour names (:data:`FLAVOUR_MODULES`)."""
    if name not in FLAVOUR_MODULES:
        raise ValueError(f"flavour name must be one of {sorted(FLAVOUR_MODULES)}, got {name!r}")


def display_name(name: FlavourName) -> str:
    """``"tensorrt"`` -> ``"TensorRT"``, ``"tensorrt_rtx"`` -> ``"TensorRT-RTX"``."""
    check_flavour_name(name)
    return _DISPLAY[name]


def installed_flavours() -> list[FlavourName]:
    """The flavours whose module is installed, found without importing it (``import rtpose``
    and backend selection must not load TensorRT)."""
    found: list[FlavourName] = []
    for name, module in FLAVOUR_MODULES.items():
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):  # a broken or half-installed package
            spec = None
        if spec is not None:
            found.append(name)
    return found


def _flavour_from_module(name: FlavourName, module: ModuleType) -> Flavour:
    version = str(getattr(module, "__version__", "0"))
    match = re.match(r"(\d+)", version)
    major = int(match.group(1)) if match else 0
    strongly_typed = name == "tensorrt_rtx" or major >= 11
    return Flavour(name, version, major, strongly_typed, module)


def detect_flavour(prefer: Literal["auto", "tensorrt", "tensorrt_rtx"] = "auto") -> Flavour:
    """Import the installed TensorRT and describe it.

    ``"auto"`` tries NVIDIA TensorRT first, then TensorRT-RTX. The modules are imported here,
    never at ``import rtpose``.

    Raises:
        ValueError: ``prefer`` is not one of the three names.
        BackendUnavailableError: the preferred (or, for ``"auto"``, every) flavour does not
            import; the message has the pip commands and the import errors.
    """
    if prefer == "auto":
        order: list[FlavourName] = ["tensorrt", "tensorrt_rtx"]
    elif prefer in FLAVOUR_MODULES:
        order = [prefer]
    else:
        raise ValueError(f"prefer must be 'auto', 'tensorrt' or 'tensorrt_rtx', got {prefer!r}")
    failures: list[str] = []
    for name in order:
        try:
            module = importlib.import_module(FLAVOUR_MODULES[name])
        except (ImportError, OSError) as exc:  # OSError: a wheel whose shared libraries are absent
            failures.append(f"{FLAVOUR_MODULES[name]}: {type(exc).__name__}: {exc}")
            continue
        flavour = _flavour_from_module(name, module)
        log.debug("using %s", flavour.display)
        return flavour
    hints = "\n".join(f"  {_PIP[name]}" for name in order)
    raise BackendUnavailableError(
        "no TensorRT could be imported (" + "; ".join(failures) + "). Install one of:\n" + hints
    )


def compute_capability(arch: str) -> tuple[int, int]:
    """Parse a GPU architecture name into (major, minor).

    Accepts ``"sm80"``, ``"SM_80"``, ``"sm_120"``, ``"8.0"``, ``"12.1"``, ``"80"``, ``"120"``
    (case and an ``sm``/``sm_`` prefix do not matter; the last digit of a bare number is the
    minor version).
    """
    if not isinstance(arch, str):
        raise TypeError(f"gpu arch must be a str like 'sm80' or '8.0', got {type(arch).__name__}")
    text = arch.strip().lower()
    text = re.sub(r"^sm_?", "", text)
    dotted = re.fullmatch(r"(\d{1,2})\.(\d)", text)
    if dotted:
        return int(dotted.group(1)), int(dotted.group(2))
    if re.fullmatch(r"\d{2,3}", text):
        return int(text[:-1]), int(text[-1])
    raise ValueError(
        f"cannot read GPU architecture {arch!r}: expected a compute capability such as 'sm80', "
        "'SM_86', '8.9' or '120' (see nvidia-smi --query-gpu=compute_cap --format=csv)"
    )


def format_compute_capability(cc: tuple[int, int]) -> str:
    """(8, 0) -> ``"SM80"``, the spelling TensorRT-RTX's enum and error messages use."""
    return f"SM{cc[0]}{cc[1]}"


def rtx_supported_capabilities(flavour: Flavour) -> list[tuple[int, int]]:
    """The compute capabilities TensorRT-RTX ``flavour`` can build for by name."""
    _need_rtx(flavour)
    members = flavour.module.ComputeCapability.__members__  # type: ignore[union-attr]
    return sorted(compute_capability(n) for n in members if re.fullmatch(r"SM\d+", n))


def rtx_compute_capability(flavour: Flavour, cc: tuple[int, int]) -> Any:
    """The ``ComputeCapability.SMxx`` member of TensorRT-RTX for ``cc``.

    Raises:
        EngineBuildError: this TensorRT-RTX has no such member (TensorRT-RTX 1.7 lacks SM90,
            the H100/H200); the message lists the supported ones.
    """
    _need_rtx(flavour)
    enum = flavour.module.ComputeCapability  # type: ignore[union-attr]
    name = format_compute_capability(cc)
    member = enum.__members__.get(name)
    if member is not None:
        return member
    supported = ", ".join(format_compute_capability(c) for c in rtx_supported_capabilities(flavour))
    raise EngineBuildError(
        f"{flavour.display} cannot build for {name}: its ComputeCapability lists {supported}"
        + (" (no SM90: H100/H200 are not a named target in this version)" if cc == (9, 0) else "")
        + ". Build on a machine with that GPU without --gpu-arch (ComputeCapability.CURRENT), "
        "or pick one of the listed architectures."
    )


def _need_rtx(flavour: Flavour) -> None:
    if flavour.name != "tensorrt_rtx" or flavour.module is None:
        raise ValueError(f"needs a TensorRT-RTX flavour with its module, got {flavour!r}")
