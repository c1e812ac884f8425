"""Per-stage cost of the CPU video pose path on the sample video.

Runs ``VideoPoseStream`` (OpenCV decode -> letterbox warp -> YOLO11n-pose on ONNX Runtime -> NMS and
un-letterbox) over every frame of the sample video, and reports per-frame decode, preprocess,
model and postprocess times (mean, p50, p95) and the ratio of everything outside the model to the
model time (target: <= 15% on a 2-core machine). Prints a table and writes JSON.

    python benchmarks/bench_cpu_pipeline.py [--video PATH] [--backend onnxruntime]
        [--precision fp32|int8] [--sync | --pipelined] [--out FILE]

Without ``--sync`` / ``--pipelined`` the stream picks its mode (in turn on <= 2 cores).

``--precision int8`` runs the gated int8 CPU model (built on first use, before timing starts).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


def run(
    video: str, backend: str, warmup: int, pipelined: bool | None = None, precision: str = "fp32"
) -> dict:
    import rtpose

    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    persons = 0
    with rtpose.VideoPoseStream(
        video, backend=backend, pipelined=pipelined, precision=precision
    ) as stream:
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
        pipelined = stream.pipelined  # the stream's choice when None
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
        "precision": precision,
        "pipelined": pipelined,
        "frames": frames,
        "warmup_frames": warmup,
        "persons": persons,
        "end_to_end_fps": frames / wall,
        "stages": stats,
        "outside_model_ms": outside,
        "outside_model_ratio": outside / model,
        "target_ratio": 0.15,
    }


def model_only(video: str, backend: str, runs: int = 50, precision: str = "fp32") -> dict:
    """The network alone on one letterboxed frame of the video, as the stream feeds it: the
    ceiling the stream is measured against (same threads as the stream)."""
    from rtpose.estimators.preprocess import letterbox_batch
    from rtpose.video import open_source

    with open_source(video, decoder="opencv") as src:
        image = next(iter(src)).image
    from rtpose.pipeline.loading import load_one_stage

    pose = load_one_stage("yolo11n-pose", backend=backend, precision=precision)
    try:
        x = letterbox_batch([image], pose.letterbox(image.shape[:2]), pose.normalisation)
        network = pose.backend
        feed = {network.input_names[0]: x}
        for _ in range(5):
            network.run(feed)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            network.run(feed)
            times.append((time.perf_counter() - t) * 1e3)
    finally:
        pose.close()
    ms = float(np.median(times))
    return {"input_shape": list(x.shape), "p50_ms": ms, "fps": 1e3 / ms, "runs": runs}


def main() -> None:
    from rtpose.assets import asset_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=str(asset_path("demo.mp4")))
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--warmup", type=int, default=10, help="frames excluded from the stats")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sync", action="store_true", help="run the stages in one thread")
    mode.add_argument("--pipelined", action="store_true", help="run the stages in threads")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results/...)")
    args = parser.parse_args()

    pipelined = True if args.pipelined else False if args.sync else None  # None: the default
    # the ceiling is measured before and after the stream and averaged: a shared VM's speed
    # drifts by tens of percent over a minute, and one side only would bias the share
    before = model_only(args.video, args.backend, precision=args.precision)
    result = run(args.video, args.backend, args.warmup, pipelined, args.precision)
    after = model_only(args.video, args.backend, precision=args.precision)
    ms = (before["p50_ms"] + after["p50_ms"]) / 2
    result["model_only"] = {
        **before, "p50_ms": ms, "fps": 1e3 / ms,
        "p50_ms_before": before["p50_ms"], "p50_ms_after": after["p50_ms"],
    }  # fmt: skip
    result["share_of_ceiling"] = result["end_to_end_fps"] / result["model_only"]["fps"]
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
    mo = result["model_only"]
    print(f"model alone {mo['p50_ms']:.2f} ms (before {mo['p50_ms_before']:.2f}, after "
          f"{mo['p50_ms_after']:.2f}; {mo['fps']:.1f} FPS ceiling): the stream reaches "
          f"{100 * result['share_of_ceiling']:.0f}% of it")  # fmt: skip
    mode = "pipelined" if result["pipelined"] else "sync"
    out = args.out or Path(__file__).parent / "results" / (
        f"{result['date']}-cpu{result['machine']['usable_cores']}-pipeline-{result['backend']}"
        + ("" if args.precision == "fp32" else f"-{args.precision}")
        + f"-{mode}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
