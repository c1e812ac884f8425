"""Throwaway virtualenvs for the original Ultralytics implementation and other peers of rtpose.

rtpose never depends on Ultralytics (or on any peer it is compared with). The scripts that run
the peers (``tools/make_golden_yolo.py`` for the golden values of the parity test,
``benchmarks/peers/setup.py`` for the CPU comparison) build a separate virtualenv with the
functions here and run the peer inside it. This module uses the standard library only: it runs
in whatever Python starts those scripts.

The Ultralytics venv holds the CPU build of ``torch==2.13.0`` (the only torch requirement that
resolves to a local CPU wheel: any other pulls gigabytes of CUDA wheels), a pinned
``ultralytics`` installed with ``--no-deps``, and the few packages it imports at predict time.

No CPU build of torchvision matching torch 2.13 exists on PyPI (the PyPI wheels link against
CUDA libraries), so by default a tiny ``torchvision`` shim distribution (plain-torch
``ops.nms``/``ops.batched_nms``) is installed when the real one cannot be loaded. Ultralytics
needs torchvision's version metadata, imports torchvision when ``ultralytics`` is imported (its
SAM modules), and then uses ``torchvision.ops.nms`` in postprocessing; the shim's NMS has the
same semantics (``make_golden_yolo.py`` checks it against Ultralytics' own pure-torch NMS).

:func:`ultralytics_env` is the environment that keeps Ultralytics offline: no settings sync,
no update checks, no asset or font download, no pip install of a requirement it finds missing,
its settings file in a folder of the caller's. :func:`prepare_venv` builds the venv of a peer
that needs no torch (rtmlib).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

# torch must be installed first and alone: it resolves to the local CPU wheel.
TORCH_REQ = "torch==2.13.0"
ULTRALYTICS_REQ = "ultralytics==8.3.253"
# Imported by ultralytics on the predict path; none of them depends on torch.
RUNTIME_REQS = (
    "numpy==2.4.6",
    "opencv-python-headless==5.0.0.93",
    "pyyaml==6.0.3",
    "pillow==13.0.0",
)
TORCHVISION_REQ = "torchvision==0.28.0"
SHIM_VERSION = "0.28.0+rtposeshim"
SHIM_WRITER = "tools/peer_venv.py"

SHIM_INIT = f'''"""Not torchvision: a shim for a throwaway venv, written by {SHIM_WRITER}."""

from . import ops

__version__ = "{SHIM_VERSION}"
__all__ = ["__version__", "ops"]
'''

SHIM_OPS = '''"""Plain-torch stand-ins for torchvision.ops.nms and batched_nms (same semantics)."""

import torch


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS on xyxy boxes; returns kept indices sorted by decreasing score."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = torch.sort(scores, stable=True, descending=True).indices
    suppressed = torch.zeros(order.numel(), dtype=torch.bool, device=boxes.device)
    keep = []
    for pos in range(order.numel()):
        if suppressed[pos]:
            continue
        i = order[pos]
        keep.append(i)
        rest = order[pos + 1 :]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[pos + 1 :] |= iou > iou_threshold
    return torch.stack(keep).to(torch.int64)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS applied independently per category (coordinate-offset trick)."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
'''

PROBE_TORCHVISION = (
    "import torch, torchvision; "
    "b = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]]); "
    "k = torchvision.ops.nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5); "
    "assert k.tolist() == [0, 2], k; print(torchvision.__version__)"
)


def log(msg: str) -> None:
    """Progress/status line of the venv builder (stderr)."""
    print(f"[peer_venv] {msg}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_input(path: Path, expected: str, what: str) -> None:
    """Exit with a message unless ``path`` is a file whose SHA-256 is ``expected``."""
    if not path.is_file():
        raise SystemExit(f"error: {what} not found: {path}")
    actual = sha256_of(path)
    if actual != expected:
        raise SystemExit(
            f"error: {what} {path} has sha256 {actual}, expected {expected}; "
            "refusing to use a different file"
        )


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def create_venv(venv: Path) -> None:
    """Create ``venv`` with the running Python, or reuse it when it exists."""
    if not venv_python(venv).exists():
        log(f"creating virtualenv {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    else:
        log(f"reusing virtualenv {venv}")


def pip(venv: Path, *args: str) -> None:
    cmd = [str(venv_python(venv)), "-m", "pip", "--disable-pip-version-check", *args]
    log("$ pip " + " ".join(args))
    subprocess.run(cmd, check=True)


def probe(venv: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in the venv's isolated Python; the completed process (not checked)."""
    return subprocess.run(
        [str(venv_python(venv)), "-I", "-c", code], capture_output=True, text=True, check=False
    )


def site_packages(venv: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    out = subprocess.run(
        [str(venv_python(venv)), "-I", "-c", code], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


def remove_torchvision_shim(venv: Path) -> None:
    sp = site_packages(venv)
    shims = list(sp.glob("torchvision-*rtposeshim.dist-info"))
    if shims:
        for path in [sp / "torchvision", *shims]:
            if path.exists():
                shutil.rmtree(path)


def install_torchvision_shim(venv: Path) -> None:
    sp = site_packages(venv)
    pkg = sp / "torchvision"
    dist = sp / f"torchvision-{SHIM_VERSION}.dist-info"
    for path in [pkg, *sp.glob("torchvision-*.dist-info")]:
        if path.exists():
            shutil.rmtree(path)
    pkg.mkdir()
    dist.mkdir()
    (pkg / "__init__.py").write_text(SHIM_INIT)
    (pkg / "ops.py").write_text(SHIM_OPS)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: torchvision\nVersion: {SHIM_VERSION}\n"
        f"Summary: plain-torch shim written by {SHIM_WRITER}\n"
    )
    (dist / "INSTALLER").write_text(SHIM_WRITER + "\n")
    files = ["torchvision/__init__.py", "torchvision/ops.py"]
    files += [f"{dist.name}/{name}" for name in ("METADATA", "INSTALLER", "RECORD")]
    (dist / "RECORD").write_text("".join(f"{name},,\n" for name in files))


def ensure_torchvision(venv: Path, mode: str) -> None:
    """Leave a torchvision in the venv whose ``ops.nms`` works: real if possible, else shim.

    ``mode``: ``"auto"`` (real if it works on the CPU, else the shim), ``"real"`` or ``"shim"``.
    """
    if mode == "shim":
        log("installing the torchvision shim (--torchvision shim)")
        install_torchvision_shim(venv)
    else:
        current = probe(venv, PROBE_TORCHVISION)
        if current.returncode == 0 and (mode == "auto" or "rtposeshim" not in current.stdout):
            log(f"torchvision already usable: {current.stdout.strip()}")
            return
        remove_torchvision_shim(venv)
        pip(venv, "install", "--quiet", "--no-deps", TORCHVISION_REQ)
        real = probe(venv, PROBE_TORCHVISION)
        if real.returncode == 0:
            log(f"real torchvision works on CPU: {real.stdout.strip()}")
            return
        reason = (real.stderr.strip().splitlines() or ["?"])[-1]
        if mode == "real":
            raise SystemExit(f"error: real torchvision does not work here: {reason}")
        log(f"real torchvision unusable ({reason}); installing the plain-torch shim")
        pip(venv, "uninstall", "-y", "torchvision")
        install_torchvision_shim(venv)
    shim = probe(venv, PROBE_TORCHVISION)
    if shim.returncode != 0:
        raise SystemExit(f"error: torchvision shim does not work:\n{shim.stderr}")


def prepare_ultralytics_venv(
    venv: Path, torchvision_mode: str = "auto", *, extra: Iterable[str] = ()
) -> None:
    """Create (or reuse) ``venv`` with CPU torch, Ultralytics, its runtime imports, a working
    torchvision and the ``extra`` requirements (installed with their dependencies, after torch,
    so none of them can pull another torch)."""
    create_venv(venv)
    pip(venv, "install", "--quiet", TORCH_REQ)
    pip(venv, "install", "--quiet", "--no-deps", ULTRALYTICS_REQ)
    pip(venv, "install", "--quiet", *RUNTIME_REQS, *extra)
    ensure_torchvision(venv, torchvision_mode)
    check = probe(venv, "import torch; print(torch.__version__)")
    if check.returncode != 0 or not check.stdout.startswith("2.13.0"):
        raise SystemExit(f"error: unexpected torch in the venv: {check.stdout}{check.stderr}")


def prepare_venv(venv: Path, requirements: Iterable[str]) -> None:
    """Create (or reuse) ``venv`` and install ``requirements`` (with their dependencies) in it:
    a peer without the torch constraint, such as rtmlib on ONNX Runtime."""
    create_venv(venv)
    reqs = list(requirements)
    if reqs:
        pip(venv, "install", "--quiet", *reqs)


def ultralytics_env(config_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a process running Ultralytics offline, its settings in ``config_dir``.

    ``YOLO_OFFLINE=true`` (Ultralytics checks for that literal string) makes it skip online
    checks and downloads; ``YOLO_AUTOINSTALL=false`` stops it pip-installing a requirement it
    finds missing (its exporters check theirs): it fails instead. The settings file (where the
    caller also sets ``sync=False``) and any asset it would fetch go under ``config_dir``
    instead of the home folder.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ if base is None else base)
    env.update(
        YOLO_OFFLINE="true",
        YOLO_AUTOINSTALL="false",
        YOLO_CONFIG_DIR=str(config_dir),
        YOLO_VERBOSE="false",
        MPLCONFIGDIR=str(config_dir / "matplotlib"),
        PYTHONNOUSERSITE="1",
    )
    return env
