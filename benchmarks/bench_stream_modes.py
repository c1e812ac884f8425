"""Pipelined (stage threads) against synchronous (stages in turn) on this machine's cores.

For each configuration (OpenVINO fp32, ONNX Runtime fp32, ONNX Runtime int8: those installed),
opens ``VideoPoseStream`` on the sample video in both modes, one after the other, ``--reps``
times, and times ``--frames`` frames after 5 warm-up frames (decode included). The modes of one
configuration always run back to back, so their ratio in one repetition is little affected by
the slow drifts of a shared VM's speed; the median of the per-repetition ratios is reported.
``VideoPoseStream``'s default mode (``SYNC_MAX_CORES`` in ``rtpose/pipeline/stream.py``) follows
this measurement. Writes JSON to ``benchmarks/results/``.

    python benchmarks/bench_stream_modes.py [--reps 6] [--frames 75] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from rtpose.bench.run import machine_info, versions

CONFIGS = {
    "openvino-fp32": {"backend": "openvino"},
    "onnxruntime-fp32": {"backend": "onnxruntime"},
    "onnxruntime-int8": {"backend": "onnxruntime", "precision": "int8"},
}
WARMUP = 5


def fps(video: str, frames: int, pipelined: bool, options: dict) -> float:
    import rtpose

    with rtpose.VideoPoseStream(
        video, max_frames=frames + WARMUP, pipelined=pipelined, **options
    ) as stream:
        it = iter(stream)
        for _ in range(WARMUP):
            next(it)
        t = time.perf_counter()
        n = sum(1 for _ in it)
        return n / (time.perf_counter() - t)


def main() -> None:
    from rtpose.assets import asset_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=str(asset_path("demo.mp4")))
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--frames", type=int, default=75, help="timed frames per run")
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results/...)")
    args = parser.parse_args()
    configs = {
        k: v for k, v in CONFIGS.items()
        if v["backend"] != "openvino" or importlib.util.find_spec("openvino")
    }  # fmt: skip
    runs: dict[str, dict[str, list[float]]] = {k: {"pipelined": [], "sync": []} for k in configs}
    for rep in range(args.reps):
        for name, options in configs.items():
            for mode in ("pipelined", "sync"):
                runs[name][mode].append(fps(args.video, args.frames, mode == "pipelined", options))
        line = ", ".join(
            f"{k} {v['pipelined'][-1]:.1f}/{v['sync'][-1]:.1f}" for k, v in runs.items()
        )
        print(f"rep {rep + 1}/{args.reps} FPS pipelined/sync: {line}", flush=True)
    summary = {}
    for name, r in runs.items():
        ratio = np.array(r["pipelined"]) / np.array(r["sync"])
        summary[name] = {
            "pipelined_fps_median": float(np.median(r["pipelined"])),
            "sync_fps_median": float(np.median(r["sync"])),
            "pipelined_over_sync_median": float(np.median(ratio)),
            "pipelined_over_sync_range": [float(ratio.min()), float(ratio.max())],
            "runs": {m: [round(x, 2) for x in v] for m, v in r.items()},
        }
        print(f"{name:18s} pipelined {summary[name]['pipelined_fps_median']:5.1f} FPS, sync "
              f"{summary[name]['sync_fps_median']:5.1f} FPS, pipelined/sync median "
              f"{summary[name]['pipelined_over_sync_median']:.3f} "
              f"(range {ratio.min():.2f}-{ratio.max():.2f})")  # fmt: skip
    result = {
        "what": "stream-modes",
        "date": dt.date.today().isoformat(),
        "video": Path(args.video).name,
        "model": "yolo11n-pose",
        "reps": args.reps,
        "timed_frames": args.frames,
        "warmup_frames": WARMUP,
        "configs": summary,
        "machine": machine_info(),
        "versions": versions(),
    }
    out = args.out or Path(__file__).parent / "results" / (
        f"{result['date']}-cpu{result['machine']['usable_cores']}-stream-modes.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
