"""Per-stage cost of the CPU video pose path on the sample video.

Runs ``VideoPoseStream`` (OpenCV decode -> letterbox warp -> YOLO11n-pose on ONNX Runtime -> NMS and
un-letterbox) over every frame of the sample video, and reports per-frame decode, preprocess,
model and postprocess times (mean, p50, p95) and the ratio of everything outside the model to the
model time (target: <= 15% on a 2-core machine). Prints a table and writes JSON.

    python benchmarks/bench_cpu_pipeline.py [--video PATH] [--backend onnxruntime] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from rtpose.bench.run import machine_info

STAGES = ("decode", "preprocess", "model", "postprocess")


def versions() -> dict[str, str]:
    import cv2
    import onnxruntime

    import rtpose
    from rtpose.ops import native_available

    return {
        "rtpose": rtpose.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "onnxruntime": onnxruntime.__version__,
        "native_ops": str(native_available()),
    }


def run(video: str, backend: str, warmup: int) -> dict:
    import rtpose

    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    persons = 0
    with rtpose.VideoPoseStream(video, backend=backend) as stream:
        start = None
        for f in stream:
            if f.index == warmup:
                start = time.perf_counter()
            if f.index < warmup:
                continue
            for s in STAGES:
                per_stage[s].append(f.timings[s])
            persons += len(f.persons)
        wall = time.perf_counter() - start
        backend_name = stream.estimator.backend_name
    frames = len(per_stage["model"])
    stats = {
        s: {
            "mean_ms": float(np.mean(v)),
            "p50_ms": float(np.percentile(v, 50)),
            "p95_ms": float(np.percentile(v, 95)),
        }
        for s, v in per_stage.items()
    }
    model = stats["model"]["mean_ms"]
    outside = sum(stats[s]["mean_ms"] for s in STAGES if s != "model")
    return {
        "backend": backend_name,
        "frames": frames,
        "warmup_frames": warmup,
        "persons": persons,
        "end_to_end_fps": frames / wall,
        "stages": stats,
        "outside_model_ms": outside,
        "outside_model_ratio": outside / model,
        "target_ratio": 0.15,
    }


def main() -> None:
    from rtpose.assets import asset_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=str(asset_path("demo.mp4")))
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--warmup", type=int, default=10, help="frames excluded from the stats")
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results/...)")
    args = parser.parse_args()

    result = run(args.video, args.backend, args.warmup)
    result.update(
        what="cpu-pipeline",
        date=dt.date.today().isoformat(),
        video=Path(args.video).name,
        model="yolo11n-pose",
        machine=machine_info(),
        versions=versions(),
    )
    print(f"{'stage':12s} {'mean ms':>8s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for s in STAGES:
        st = result["stages"][s]
        print(f"{s:12s} {st['mean_ms']:8.2f} {st['p50_ms']:8.2f} {st['p95_ms']:8.2f}")
    print(
        f"outside the model: {result['outside_model_ms']:.2f} ms/frame = "
        f"{100 * result['outside_model_ratio']:.1f}% of the model (target <= 15%); "
        f"end to end {result['end_to_end_fps']:.1f} FPS over {result['frames']} frames"
    )
    out = args.out or Path(__file__).parent / "results" / (
        f"{result['date']}-cpu{os.cpu_count()}-pipeline-{result['backend']}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
