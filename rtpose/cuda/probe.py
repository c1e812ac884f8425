"""Is there a usable NVIDIA GPU? The one GPU probe of rtpose, asked before any TensorRT object.

Every other GPU check derives from :func:`gpu_status`: :func:`rtpose.cuda.arrays.gpu_available`
(the CUDA kernels of the ops), the decoder choice of :func:`rtpose.video.open_source`, the
TensorRT backend and builder. Without a driver, TensorRT's ``Runtime(logger)`` logs CUDA error 35
and returns an object that segfaults on first use (measured), so the answer must come without
asking TensorRT. The probe asks, in order:

1. the CUDA runtime through ``rtpose._C.cuda`` (``device_count`` / ``device_error``), when the
   extension was built with CUDA;
2. cupy's CUDA runtime bindings, when cupy is installed;
3. ``nvidia-smi`` (a subprocess with a timeout), which needs only the driver.

The device name and compute capability come from cupy or ``nvidia-smi`` (``rtpose._C`` does not
report them). Results are cached per process and device: a driver does not appear mid-run.
"""

from __future__ import annotations

import functools
import importlib
import logging
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

from rtpose import _native

log = logging.getLogger(__name__)

ProbeSource = Literal["rtpose._C", "cupy", "nvidia-smi", "none"]

_SMI_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class GpuStatus:
    """What the probe found.

    Attributes:
        available: a CUDA device is usable by the CUDA runtime (or, via nvidia-smi, by the driver).
        reason: why not when unavailable; what answered when available.
        device_count: CUDA devices seen (0 when unavailable).
        device: the device ordinal ``name`` and ``compute_capability`` describe.
        name: that device's name, e.g. "NVIDIA H100 80GB HBM3"; None when unknown.
        compute_capability: (major, minor), e.g. (9, 0); None when unknown.
        source: which probe answered.
    """

    available: bool
    reason: str
    device_count: int = 0
    device: int = 0
    name: str | None = None
    compute_capability: tuple[int, int] | None = None
    source: ProbeSource = "none"


def gpu_status(*, device: int = 0) -> GpuStatus:
    """Probes for a usable NVIDIA GPU without creating TensorRT objects; never raises for a
    missing driver (it reports it). Cached per process and ``device``."""
    if not isinstance(device, int) or isinstance(device, bool) or device < 0:
        raise ValueError(f"device must be a CUDA device ordinal >= 0, got {device!r}")
    return _probe(device)


def clear_cache() -> None:
    """Forget cached answers (tests; a process that changed CUDA_VISIBLE_DEVICES early)."""
    _probe.cache_clear()


@functools.cache
def _probe(device: int) -> GpuStatus:
    reasons: list[str] = []
    count, source = _count_native(reasons)
    if count is None:
        count, source = _count_cupy(reasons)
    details = _details_cupy(device) if count else None
    smi = None
    if count is None or (count and details is None):
        smi = _query_nvidia_smi(reasons)
        if count is None and smi is not None:
            count, source = len(smi), "nvidia-smi"
        if smi is not None and device < len(smi):
            details = smi[device]
    if not count:
        why = "; ".join(reasons) or "no CUDA device found"
        status = GpuStatus(available=False, reason=why, device_count=0, source=source)
    elif device >= count:
        status = GpuStatus(
            available=False,
            reason=f"device {device} requested but only {count} CUDA device(s) are visible "
            "(check CUDA_VISIBLE_DEVICES)",
            device_count=count,
            device=device,
            source=source,
        )
    else:
        name, capability = details if details is not None else (None, None)
        status = GpuStatus(
            available=True,
            reason=f"{count} CUDA device(s) found by {source}",
            device_count=count,
            device=device,
            name=name,
            compute_capability=capability,
            source=source,
        )
    log.debug("GPU probe: %s", status)
    return status


def _count_native(reasons: list[str]) -> tuple[int | None, ProbeSource]:
    """Device count from rtpose._C, or None when the extension cannot answer."""
    native = _native.load()
    if native is None:
        reasons.append(f"rtpose._C does not import ({_native.error()})")
        return None, "none"
    if not native.has_cuda:
        reasons.append("rtpose._C was built without CUDA")
        return None, "none"
    count = int(native.cuda.device_count())
    if count == 0:
        reasons.append(f"CUDA runtime: {native.cuda.device_error() or 'no CUDA device'}")
    return count, "rtpose._C"


def _cupy():
    try:
        return importlib.import_module("cupy")
    except ImportError:
        return None


def _count_cupy(reasons: list[str]) -> tuple[int | None, ProbeSource]:
    cupy = _cupy()
    if cupy is None:
        reasons.append("cupy is not installed")
        return None, "none"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # cupy raises CUDARuntimeError (no driver) or ImportError (no libs)
        reasons.append(f"cupy: {type(exc).__name__}: {exc}")
        return 0, "cupy"
    return count, "cupy"


def _details_cupy(device: int) -> tuple[str, tuple[int, int]] | None:
    cupy = _cupy()
    if cupy is None:
        return None
    try:
        props = cupy.cuda.runtime.getDeviceProperties(device)
    except Exception as exc:  # an odd runtime: fall back to nvidia-smi for the details
        log.debug("cupy could not read device %d properties: %s", device, exc)
        return None
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return name, (int(props["major"]), int(props["minor"]))


def _query_nvidia_smi(reasons: list[str]) -> list[tuple[str, tuple[int, int] | None]] | None:
    """[(name, (major, minor))] per GPU from nvidia-smi, or None when it cannot answer."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        reasons.append("nvidia-smi not found on PATH (no NVIDIA driver installed?)")
        return None
    command = [exe, "--query-gpu=name,compute_cap", "--format=csv,noheader"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_SMI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        reasons.append(f"nvidia-smi failed: {type(exc).__name__}: {exc}")
        return None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        reasons.append(
            f"nvidia-smi exited with {done.returncode}: {message[0] if message else ''}".rstrip()
        )
        return None
    return parse_nvidia_smi(done.stdout)


def parse_nvidia_smi(text: str) -> list[tuple[str, tuple[int, int] | None]]:
    """Parses ``nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader`` output.

    Old drivers do not know ``compute_cap`` and print "[N/A]" or an error; the name is kept and
    the capability is None then.
    """
    gpus: list[tuple[str, tuple[int, int] | None]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, cap = line.rpartition(",")
        if not name:  # a single field: no compute_cap column
            name, cap = cap, ""
        capability = None
        major, dot, minor = cap.strip().partition(".")
        if dot and major.isdigit() and minor.isdigit():
            capability = (int(major), int(minor))
        gpus.append((name.strip(), capability))
    return gpus
