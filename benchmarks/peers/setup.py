#!/usr/bin/env python3
"""Build (or reuse) the virtualenvs of rtpose's CPU peers for ``benchmarks/compare_cpu.py``.

rtpose depends on none of its peers: each one gets a throwaway virtualenv of its own under the
peers folder (``$RTPOSE_HOME/peers``, i.e. ``~/.cache/rtpose/peers``, or ``--venv-dir``):

- ``ultralytics/``: the original YOLO11-pose implementation, built by
  ``tools/peer_venv.py`` (CPU ``torch==2.13.0``, pinned ``ultralytics``, the torchvision shim
  where the real one does not load) plus ``onnx``, ``onnxslim`` and ``onnxruntime``, everything
  its ONNX exporter checks for, so that the export below needs no install at run time.
- ``rtmlib/``: ``rtmlib`` (RTMO / RTMPose on ONNX Runtime) and its dependencies.

Then it copies rtpose's ``yolo11n-pose.pt`` into ``models/`` and exports it there once with
Ultralytics' own exporter (``YOLO(pt).export(format="onnx", imgsz=640)``, run offline: no
auto-install, no downloads), which is the model of the ``ultralytics-onnx`` peer.

rtmlib's models are not in any package: rtmlib downloads them from download.openmmlab.com when
a model is created, and that host cannot be reached here. An RTMO ONNX file (e.g. the
``end2end.onnx`` of ``rtmo-s_8xb32-600e_body7-640x640``) put in ``models/rtmlib/`` (or given
to compare_cpu.py with ``--rtmlib-model``) is used; without one the rtmlib peer is recorded
as skipped, with that reason.

Everything is idempotent: a venv whose pinned requirements are those of the manifest
(``peers.json``) is reused as it is, and the export is redone only when the weights or the
Ultralytics requirements changed (``--force`` redoes everything).

    .venv/bin/python benchmarks/peers/setup.py [--venv-dir DIR] [--peers ultralytics,rtmlib]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
for folder in (HERE, REPO_ROOT / "tools"):  # script siblings and tools/peer_venv.py
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import peer_venv  # noqa: E402
from peer_protocol import MANIFEST, default_peers_dir, read_manifest  # noqa: E402

PEERS = ("ultralytics", "rtmlib")
IMGSZ = 640
# ultralytics' ONNX exporter checks for onnx, onnxslim and onnxruntime; its ONNX predictor for
# onnx and onnxruntime. onnxruntime is the version rtpose's own venv runs, for a like-for-like
# comparison of the two ONNX paths.
ONNX_REQS = ("onnx==1.23.2", "onnxslim==0.1.98", "onnxruntime==1.32.0")
RTMLIB_REQS = (
    "rtmlib==0.0.16",
    "onnxruntime==1.32.0",
    "numpy==2.4.6",
    "opencv-python==5.0.0.93",
    "opencv-contrib-python==5.0.0.93",
    "tqdm==4.70.1",
)
RTMLIB_MODELS_NOTE = (
    "rtmlib 0.0.16 ships no models: it downloads its RTMO/RTMPose ONNX zips from "
    "download.openmmlab.com when a model is created, which cannot be reached here, and no "
    "PyPI or npm package holds them (rtmlib's wheel and the RTMO/DWPose wrappers on PyPI, "
    "rtmo-ort, dwposes, controlnet-dwpose, easy-dwpose, dwpose, funmodel-dwpose, are code only "
    "and fetch the files from GitHub releases or model hubs)"
)

EXPORT_CODE = """
import json, sys
from ultralytics import YOLO
from ultralytics.utils import SETTINGS
SETTINGS.update({"sync": False})
path = YOLO(sys.argv[1], task="pose").export(format="onnx", imgsz=int(sys.argv[2]), device="cpu")
import onnx
dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
shape = [d.dim_value or d.dim_param for d in dims]
print("RESULT " + json.dumps({"path": str(path), "input_shape": shape}))
"""
VERSIONS_CODE = """
import json, sys
from importlib import metadata
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""
ULTRALYTICS_DISTS = ("ultralytics", "torch", "torchvision", "onnx", "onnxslim", "onnxruntime",
                     "opencv-python-headless", "numpy")  # fmt: skip
RTMLIB_DISTS = ("rtmlib", "onnxruntime", "opencv-python", "opencv-contrib-python", "numpy")
# the imports each runner needs, checked before a venv is called ready
ULTRALYTICS_PROBE = "import ultralytics, onnx, onnxruntime, onnxslim, cv2"
RTMLIB_PROBE = "import rtmlib, onnxruntime, cv2"


def log(msg: str) -> None:
    print(f"[peers/setup] {msg}", file=sys.stderr, flush=True)


def ultralytics_requirements(torchvision: str) -> list[str]:
    return [
        peer_venv.TORCH_REQ,
        peer_venv.ULTRALYTICS_REQ,
        *peer_venv.RUNTIME_REQS,
        *ONNX_REQS,
        f"torchvision:{torchvision}",
    ]


def dist_versions(venv: Path, names: tuple[str, ...]) -> dict[str, str | None]:
    out = subprocess.run(
        [str(peer_venv.venv_python(venv)), "-I", "-c", VERSIONS_CODE, *names],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def venv_ready(entry: dict, venv: Path, requirements: list[str], probe_code: str) -> bool:
    """Whether the manifest says ``venv`` holds ``requirements`` and its imports still work."""
    if entry.get("requirements") != requirements or not peer_venv.venv_python(venv).exists():
        return False
    return peer_venv.probe(venv, probe_code).returncode == 0


def write_manifest(peers_dir: Path, manifest: dict) -> None:
    path = peers_dir / MANIFEST
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)


def setup_ultralytics(peers_dir: Path, entry: dict, weights: Path, *, torchvision: str,
                      force: bool) -> dict:  # fmt: skip
    venv = peers_dir / "ultralytics"
    reqs = ultralytics_requirements(torchvision)
    fresh = force or not venv_ready(entry, venv, reqs, ULTRALYTICS_PROBE)
    if fresh:
        peer_venv.prepare_ultralytics_venv(venv, torchvision, extra=ONNX_REQS)
        probe = peer_venv.probe(venv, ULTRALYTICS_PROBE)
        if probe.returncode != 0:
            raise SystemExit(f"error: the ultralytics venv {venv} cannot import:\n{probe.stderr}")
    else:
        log(f"ultralytics venv {venv} is up to date")

    models = peers_dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    sha = peer_venv.sha256_of(weights)
    pt = models / weights.name
    if not pt.is_file() or peer_venv.sha256_of(pt) != sha:
        log(f"copying {weights} -> {pt}")
        shutil.copyfile(weights, pt)
    onnx = pt.with_suffix(".onnx")
    export = entry.get("onnx_export") or {}
    if fresh or not onnx.is_file() or export.get("weights_sha256") != sha:
        log(f"exporting {pt.name} to ONNX with ultralytics (imgsz={IMGSZ}, offline)")
        onnx.unlink(missing_ok=True)
        env = peer_venv.ultralytics_env(peers_dir / "config")
        cmd = [str(peer_venv.venv_python(venv)), "-I", "-c", EXPORT_CODE, str(pt), str(IMGSZ)]
        done = subprocess.run(cmd, env=env, cwd=models, capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode != 0 or not lines or not onnx.is_file():
            raise SystemExit(
                f"error: the ultralytics ONNX export failed (exit {done.returncode}):\n"
                f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        result = json.loads(lines[-1].removeprefix("RESULT "))
        export = {
            "path": str(onnx),
            "input_shape": result["input_shape"],
            "imgsz": IMGSZ,
            "weights_sha256": sha,
            "onnx_sha256": peer_venv.sha256_of(onnx),
            "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        log(f"exported {onnx} (input {result['input_shape']})")
    else:
        log(f"reusing the ONNX export {onnx}")
    return {
        "venv": str(venv),
        "python": str(peer_venv.venv_python(venv)),
        "requirements": reqs,
        "versions": dist_versions(venv, ULTRALYTICS_DISTS),
        "config_dir": str(peers_dir / "config"),
        "weights": str(pt),
        "weights_sha256": sha,
        "onnx_export": export,
    }


def setup_rtmlib(peers_dir: Path, entry: dict, *, force: bool) -> dict:
    venv = peers_dir / "rtmlib"
    reqs = list(RTMLIB_REQS)
    if force or not venv_ready(entry, venv, reqs, RTMLIB_PROBE):
        peer_venv.prepare_venv(venv, reqs)
        probe = peer_venv.probe(venv, RTMLIB_PROBE)
        if probe.returncode != 0:
            raise SystemExit(f"error: the rtmlib venv {venv} cannot import:\n{probe.stderr}")
    else:
        log(f"rtmlib venv {venv} is up to date")
    models = peers_dir / "models" / "rtmlib"
    models.mkdir(parents=True, exist_ok=True)
    found = sorted(str(p) for p in models.glob("*.onnx"))
    if found:
        log(f"rtmlib models in {models}: {', '.join(Path(p).name for p in found)}")
    else:
        log(f"no rtmlib model in {models}: the rtmlib peer will be skipped ({RTMLIB_MODELS_NOTE})")
    return {
        "venv": str(venv),
        "python": str(peer_venv.venv_python(venv)),
        "requirements": reqs,
        "versions": dist_versions(venv, RTMLIB_DISTS),
        "models_dir": str(models),
        "models_note": RTMLIB_MODELS_NOTE,
    }


def default_weights() -> Path:
    try:
        from rtpose.models.weights import resolve_weights
        from rtpose.models.zoo import get_model_info
    except ImportError as exc:
        raise SystemExit(
            f"error: rtpose is not importable here ({exc}); run this with rtpose's venv "
            "(.venv/bin/python) or pass --weights PATH to yolo11n-pose.pt"
        ) from None
    return Path(resolve_weights(get_model_info("yolo11n-pose"), None))


def setup(peers_dir: Path, peers: tuple[str, ...], *, weights: Path | None = None,
          torchvision: str = "auto", force: bool = False) -> dict:  # fmt: skip
    """Create or reuse the venvs of ``peers`` in ``peers_dir``; the manifest written there."""
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise SystemExit(f"error: unknown peer(s) {unknown}; choose from {', '.join(PEERS)}")
    peers_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(peers_dir)
    for peer in peers:
        log(f"--- {peer}")
        if peer == "ultralytics":
            pt = (weights or default_weights()).expanduser().resolve()
            if not pt.is_file():
                raise SystemExit(f"error: weights not found: {pt}")
            manifest[peer] = setup_ultralytics(
                peers_dir, manifest.get(peer, {}), pt, torchvision=torchvision, force=force
            )
        else:
            manifest[peer] = setup_rtmlib(peers_dir, manifest.get(peer, {}), force=force)
        write_manifest(peers_dir, manifest)
    log(f"peers ready in {peers_dir} (manifest {peers_dir / MANIFEST})")
    return manifest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Create or reuse the virtualenvs of rtpose's CPU peers (ultralytics, "
        "rtmlib) and export the ultralytics ONNX model, for benchmarks/compare_cpu.py."
    )
    parser.add_argument(
        "--venv-dir",
        type=Path,
        default=default_peers_dir(),
        help="peers folder: venvs, models, manifest (default: %(default)s)",
    )
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help="comma-separated peers to set up (default: %(default)s)",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="yolo11n-pose.pt (default: rtpose's fetched weights)",
    )
    parser.add_argument(
        "--torchvision",
        choices=("auto", "real", "shim"),
        default="auto",
        help="see tools/peer_venv.py (default: %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="reinstall and re-export")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    peers = tuple(p.strip() for p in args.peers.split(",") if p.strip())
    setup(args.venv_dir.expanduser().resolve(), peers, weights=args.weights,
          torchvision=args.torchvision, force=args.force)  # fmt: skip


if __name__ == "__main__":
    main()
