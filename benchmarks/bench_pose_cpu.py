"""CPU ONNX Runtime latency of top-down pose networks at batch 1 and 8.

For each model (default: rsn18, mspn50 (1 stage), hourglass52) the network is built with random
weights (latency does not depend on the weight values), exported to ONNX with a dynamic batch axis
exactly as the pipeline exports it, and timed with ONNX Runtime's CPU provider on random crops:
warm-up runs, then ``--repeat`` timed runs per batch size. Reports the median, p90 and per-crop
median latency, prints a table and writes JSON (machine, versions, settings, numbers).

    python benchmarks/bench_pose_cpu.py [--models rsn18 mspn50 hourglass52] [--batches 1 8]
                                        [--repeat 20] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_cpu_pipeline import cpu_name  # same directory


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    import rtpose

    return {
        "rtpose": rtpose.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def bench_model(name: str, batches: list[int], repeat: int, warmup: int, threads: int | None):
    import torch

    from rtpose.backends.onnxruntime import OnnxRuntimeBackend
    from rtpose.deploy.onnx import export_onnx
    from rtpose.models import create_model, get_model_info
    from rtpose.models.base import count_complexity

    info = get_model_info(name)
    torch.manual_seed(0)
    model = create_model(name)
    size = count_complexity(model, info.input_size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.onnx"
        export_onnx(
            model, path, sample_shape=(1, 3, *info.input_size), input_name="crops",
            output_name="heatmaps", dynamic_size=False,
        )  # fmt: skip
        backend = OnnxRuntimeBackend(path, threads=threads, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        for batch in batches:
            x = rng.standard_normal((batch, 3, *info.input_size), dtype=np.float32)
            for _ in range(warmup):
                backend.run({"crops": x})
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                backend.run({"crops": x})
                times.append((time.perf_counter() - t0) * 1e3)
            p50, p90 = np.percentile(times, [50, 90])
            rows.append({
                "model": name, "batch": batch, "input": list(info.input_size),
                "median_ms": round(float(p50), 2), "p90_ms": round(float(p90), 2),
                "per_crop_ms": round(float(p50) / batch, 2), "runs": repeat,
            })  # fmt: skip
            print(f"{name:14s} batch {batch:2d}  median {p50:8.1f} ms  p90 {p90:8.1f} ms  "
                  f"per crop {p50 / batch:7.1f} ms", flush=True)  # fmt: skip
    return rows, {"params_m": round(size.params / 1e6, 2), "gmacs": round(size.macs / 1e9, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["rsn18", "mspn50", "hourglass52"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results/...)")
    args = parser.parse_args()
    if args.repeat < 1 or args.warmup < 0 or min(args.batches) < 1:
        parser.error("--repeat and batch sizes must be >= 1, --warmup >= 0")

    rows, sizes = [], {}
    for name in args.models:
        r, s = bench_model(name, args.batches, args.repeat, args.warmup, args.threads)
        rows += r
        sizes[name] = s
    today = dt.date.today().isoformat()
    default = f"{today}-cpu{os.cpu_count()}-pose-ort.json"
    out = args.out or Path(__file__).parent / "results" / default
    result = {
        "benchmark": "top-down pose networks, ONNX Runtime CPU, random weights",
        "date": today,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "os": platform.platform()},
        "versions": versions(),
        "threads": args.threads or "onnxruntime default",
        "sizes": sizes,
        "results": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
