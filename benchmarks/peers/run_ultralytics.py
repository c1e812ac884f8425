#!/usr/bin/env python3
"""Runner of the ``ultralytics-pt`` and ``ultralytics-onnx`` peers (inside the ultralytics venv).

Frames come from ``cv2.VideoCapture``; each goes through the original predictor,
``YOLO(model).predict(frame, imgsz=640, device="cpu", verbose=False)`` with its default
thresholds (conf 0.25, IoU 0.7, as rtpose's), and its boxes, scores and keypoints are copied to
numpy. Decode, predict and that copy are timed (see peer_protocol.py), model loading is not.

The ``.pt`` model letterboxes each frame to the smallest stride-32 rectangle (384x640 for a
16:9 video), as rtpose does; the exported ``.onnx`` model has a fixed 640x640 input, so its
predictor letterboxes to the square. The network input shape is recorded in the result.

    python -I run_ultralytics.py --model yolo11n-pose.pt --video demo.mp4 --out result.json
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# run with ``python -I``, which leaves the script's folder off sys.path: put it back
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_protocol import dist_versions, log, measure, person, runner_parser, write_result

DISTS = ("ultralytics", "torch", "torchvision", "onnxruntime", "opencv-python-headless", "numpy")


def main() -> None:
    parser = runner_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help=".pt or exported .onnx")
    parser.add_argument("--program", required=True, help="program name for the result")
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args()

    import cv2
    import torch
    from ultralytics import YOLO
    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False})  # no analytics; the settings file is in YOLO_CONFIG_DIR
    if not args.model.is_file():
        raise SystemExit(f"error: model not found: {args.model}")
    t0 = time.perf_counter()
    model = YOLO(str(args.model), task="pose")
    cap = cv2.VideoCapture(args.video)
    if not cap.isOpened():
        raise SystemExit(f"error: OpenCV cannot open the video {args.video}")
    input_shapes: list[list[int]] = []

    def record_input(_module, inputs) -> None:
        if not input_shapes:
            input_shapes.append(list(inputs[0].shape))

    if args.model.suffix == ".pt":
        model.model.register_forward_pre_hook(record_input)
    load_s = time.perf_counter() - t0

    def step() -> list[dict] | None:
        ok, frame = cap.read()
        if not ok:
            return None
        (r,) = model.predict(frame, imgsz=args.imgsz, device="cpu", verbose=False)
        boxes = r.boxes.xyxy.cpu().numpy()  # (N, 4)
        scores = r.boxes.conf.cpu().numpy()  # (N,)
        kpts = r.keypoints.data.cpu().numpy() if r.keypoints is not None else boxes[:, :0]
        return [person(boxes[i], scores[i], kpts[i]) for i in range(len(boxes))]

    log(args.program, f"running {args.model.name} on {Path(args.video).name}")
    try:
        persons, timing = measure(step, frames=args.frames, warmup=args.warmup)
    finally:
        cap.release()
    if args.model.suffix == ".onnx":
        import onnxruntime

        sess = onnxruntime.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
        input_shapes.append(list(sess.get_inputs()[0].shape))
    write_result(
        args.out, program=args.program, timing=timing, persons=persons, load_s=load_s,
        versions=dist_versions(*DISTS),
        settings={
            "model": args.model.name,
            "imgsz": args.imgsz,
            "network_input_shape": input_shapes[0] if input_shapes else None,
            "torch_threads": torch.get_num_threads(),
            "call": f'YOLO("{args.model.name}").predict(frame, imgsz={args.imgsz}, '
            'device="cpu", verbose=False)',
        },
    )  # fmt: skip


if __name__ == "__main__":
    main()
