#!/usr/bin/env python3
"""Runner of the ``rtmlib`` peer (inside the rtmlib venv): RTMO, or YOLOX + RTMPose.

Frames come from ``cv2.VideoCapture``. With ``--pose`` alone the model is RTMO (one stage,
``rtmlib.RTMO(pose, model_input_size=(640, 640), backend="onnxruntime", device="cpu")``); with
``--det`` too it is top-down, ``rtmlib.YOLOX(det)`` boxes then ``rtmlib.RTMPose(pose)``, as
rtmlib's ``Body`` does. Input sizes are read from the ONNX files; thresholds are rtmlib's
defaults. Both paths must be local ONNX files: rtmlib would otherwise download them from
download.openmmlab.com, which this runner never lets it try.

rtmlib returns keypoints (N, 17, 2) and scores (N, 17) only, so a person's box here is the box
around its keypoints and its score the mean keypoint score; the one all-zero "person" rtmlib
returns for a frame without anybody is dropped.

    python -I run_rtmlib.py --pose rtmo-s.onnx --video demo.mp4 --out result.json
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_protocol import dist_versions, log, measure, person, runner_parser, write_result

DISTS = ("rtmlib", "onnxruntime", "opencv-python", "opencv-contrib-python", "numpy")


def onnx_input_wh(path: Path) -> tuple[int, int]:
    """(width, height) of an ONNX model's (1, 3, H, W) input, rtmlib's order."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dims = session.get_inputs()[0].shape
    if len(dims) != 4 or not all(isinstance(d, int) for d in dims[2:]):
        raise SystemExit(f"error: {path}: expected a fixed (1, 3, H, W) input, got {dims}")
    return int(dims[3]), int(dims[2])


def main() -> None:
    parser = runner_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--pose", required=True, type=Path, help="RTMO or RTMPose ONNX file")
    parser.add_argument("--det", type=Path, default=None, help="YOLOX ONNX file (top-down)")
    parser.add_argument("--program", default="rtmlib", help="program name for the result")
    args = parser.parse_args()
    for path in (args.pose, args.det):
        if path is not None and not path.is_file():
            raise SystemExit(f"error: model not found: {path} (a local ONNX file is required)")

    import cv2
    import numpy as np
    from rtmlib import RTMO, YOLOX, RTMPose

    t0 = time.perf_counter()
    pose_wh = onnx_input_wh(args.pose)
    kw = {"backend": "onnxruntime", "device": "cpu"}
    if args.det is None:
        model = RTMO(str(args.pose), model_input_size=pose_wh, **kw)
        det = None
    else:
        det = YOLOX(str(args.det), model_input_size=onnx_input_wh(args.det), **kw)
        model = RTMPose(str(args.pose), model_input_size=pose_wh, **kw)
    cap = cv2.VideoCapture(args.video)
    if not cap.isOpened():
        raise SystemExit(f"error: OpenCV cannot open the video {args.video}")
    load_s = time.perf_counter() - t0

    def step() -> list[dict] | None:
        ok, frame = cap.read()
        if not ok:
            return None
        if det is None:
            kpts, scores = model(frame)  # (N, 17, 2), (N, 17)
        else:
            kpts, scores = model(frame, bboxes=det(frame))
        out = []
        for xy, s in zip(np.asarray(kpts), np.asarray(scores)):
            if not np.any(s):
                continue  # rtmlib's placeholder for "nobody"
            box = [*xy.min(axis=0), *xy.max(axis=0)]
            out.append(person(box, float(np.mean(s)), np.column_stack([xy, s])))
        return out

    log(args.program, f"running {args.pose.name} on {Path(args.video).name}")
    try:
        persons, timing = measure(step, frames=args.frames, warmup=args.warmup)
    finally:
        cap.release()
    write_result(
        args.out, program=args.program, timing=timing, persons=persons, load_s=load_s,
        versions=dist_versions(*DISTS),
        settings={
            "pose": args.pose.name,
            "det": args.det.name if args.det else None,
            "pose_input_wh": list(pose_wh),
            "mode": "rtmo (one stage)" if det is None else "yolox + rtmpose (top-down)",
        },
    )  # fmt: skip


if __name__ == "__main__":
    main()
