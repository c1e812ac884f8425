"""GPU latency of TensorRT engines (and a torch-CUDA fallback) at batch 1, 8 and 32.

TensorRT mode (default): each ``--engine MODEL:PRECISION=PATH`` (e.g.
``rsn18:fp16=engines/rsn18-fp16.engine``) is loaded with rtpose's TensorRT backend and timed on
random device inputs with CUDA events around ``run_async`` (copies of the outputs included, host
transfers excluded), with and without CUDA graphs. Engines must have been built with a batch
profile that covers the batches asked for (``rtpose-build ... --batch 1:8:32``).

Torch mode (``--torch``, labelled "torch-cuda" in the JSON): the same networks from the rtpose
zoo with random weights, fp16, channels_last, eager and replayed with ``torch.cuda.graphs``.
It is the fallback for GPUs without TensorRT, not a TensorRT figure.

Each figure: ``--warmup`` untimed runs, then ``--repeat`` timed runs; median and p90 in ms; crops/s
(batch / median) for top-down models. Inputs rotate over several buffers larger than L2 so the
input is not cache-resident. Writes ``benchmarks/results/<date>-<gpu>-tensorrt.json`` (or
``-torch-cuda.json``) with the GPU name, driver and versions, and prints a table.

    python benchmarks/bench_tensorrt.py --engine yolo11n-pose:fp16=y.engine \\
        --engine rsn18:fp16=r.engine [--batches 1 8 32] [--repeat 200] [--warmup 20]
    python benchmarks/bench_tensorrt.py --torch [--models yolo11n-pose rsn18]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import platform
import re
import subprocess
from pathlib import Path

import numpy as np

# Input (channels, height, width) of the models this benchmark knows.
INPUTS = {"yolo11n-pose": (3, 640, 640), "rsn18": (3, 256, 192)}
TOP_DOWN = {"rsn18"}
_L2_ROTATE_BYTES = 256 << 20  # > H100/H200 L2 (50-60 MB)


def gpu_facts() -> dict[str, str]:
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.splitlines()[0]  # fmt: skip
    name, driver, cap = (part.strip() for part in out.split(","))
    return {"gpu": name, "driver": driver, "compute_capability": cap}


def versions(mode: str) -> dict[str, str]:
    import rtpose

    found = {"rtpose": rtpose.__version__, "python": platform.python_version()}
    modules = ["cupy", "torch"]
    if mode == "tensorrt":
        from rtpose.backends.tensorrt.flavour import detect_flavour

        flavour = detect_flavour()
        found[flavour.name] = flavour.version
    for name in modules:
        with contextlib.suppress(ImportError):
            found[name] = __import__(name).__version__
    return found


def summarise(times_ms: list[float], batch: int) -> dict[str, float]:
    median = float(np.median(times_ms))
    return {
        "median_ms": round(median, 4),
        "p90_ms": round(float(np.percentile(times_ms, 90)), 4),
        "items_per_s": round(batch / median * 1e3, 1),
    }


def time_with_events(cupy, stream, launch, *, warmup: int, repeat: int) -> list[float]:
    """Milliseconds per call of ``launch(i)``, measured with CUDA events on ``stream``."""
    for i in range(warmup):
        launch(i)
    stream.synchronize()
    times = []
    for i in range(repeat):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record(stream)
        launch(i)
        end.record(stream)
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    return times


def bench_engine(spec: str, args: argparse.Namespace) -> list[dict]:
    import cupy

    from rtpose.backends.tensorrt.runtime import TensorRTBackend

    label, _, path = spec.partition("=")
    model, _, precision = label.partition(":")
    if not path or model not in INPUTS:
        raise SystemExit(f"--engine must be MODEL:PRECISION=PATH with MODEL in {list(INPUTS)}")
    rows = []
    for graphs in (False, True):
        with TensorRTBackend(path, cuda_graphs=graphs, arrays="cupy") as backend:
            stream = cupy.cuda.ExternalStream(backend.stream_handle)
            (name, info), = backend.inputs.items()  # fmt: skip
            for batch in args.batches:
                shape = (batch, *INPUTS[model])
                per = int(np.prod(shape)) * np.dtype(info.dtype).itemsize
                count = max(2, -(-_L2_ROTATE_BYTES // per))
                with stream:
                    rng = cupy.random.default_rng(0)
                    pool = [rng.standard_normal(shape, dtype=np.float32).astype(info.dtype)
                            for _ in range(count)]  # fmt: skip
                times = time_with_events(
                    cupy, stream,
                    lambda i, name=name, pool=pool, count=count: backend.run_async(
                        {name: pool[i % count]}
                    ),
                    warmup=args.warmup, repeat=args.repeat,
                )  # fmt: skip
                backend.synchronize()
                row = {"model": model, "precision": precision, "engine": path, "batch": batch}
                rows.append({**row, "cuda_graphs": graphs, **summarise(times, batch)})
                print_row(rows[-1])
    return rows


def bench_torch(model_name: str, args: argparse.Namespace) -> list[dict]:
    import cupy
    import torch

    from rtpose.models import create_model

    net = create_model(model_name).eval().cuda().half().to(memory_format=torch.channels_last)
    stream = torch.cuda.Stream()
    cstream = cupy.cuda.ExternalStream(stream.cuda_stream)
    rows = []
    for batch in args.batches:
        shape = (batch, *INPUTS[model_name])
        static = torch.randn(shape, device="cuda").half().to(memory_format=torch.channels_last)
        with torch.no_grad(), torch.cuda.stream(stream):
            eager = time_with_events(cupy, cstream, lambda i, static=static: net(static),
                                     warmup=args.warmup, repeat=args.repeat)  # fmt: skip
            for _ in range(3):  # warm-up on the side stream before capture, as torch requires
                net(static)
            stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                net(static)
            replay = time_with_events(cupy, cstream, lambda i, graph=graph: graph.replay(),
                                      warmup=args.warmup, repeat=args.repeat)  # fmt: skip
        for graphs, times in ((False, eager), (True, replay)):
            row = {"model": model_name, "precision": "fp16", "engine": "torch-cuda", "batch": batch}
            rows.append({**row, "cuda_graphs": graphs, **summarise(times, batch)})
            print_row(rows[-1])
    return rows


def print_row(row: dict) -> None:
    unit = "crops/s" if row["model"] in TOP_DOWN else "frames/s"
    print(
        f"{row['model']:>14} {row['precision']:>5} b={row['batch']:<3} "
        f"graphs={'yes' if row['cuda_graphs'] else 'no ':<3} median {row['median_ms']:8.3f} ms  "
        f"p90 {row['p90_ms']:8.3f} ms  {row['items_per_s']:10.1f} {unit}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="append", default=[], metavar="MODEL:PREC=PATH",
                        help="an engine to time; repeat for several")  # fmt: skip
    parser.add_argument("--torch", action="store_true", help="time torch-CUDA fp16 instead")
    parser.add_argument("--models", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: results/)")
    args = parser.parse_args()
    if not args.torch and not args.engine:
        parser.error("give --engine MODEL:PRECISION=PATH (build with rtpose-build) or --torch")
    mode = "torch-cuda" if args.torch else "tensorrt"
    facts = gpu_facts()
    print(f"{mode} on {facts['gpu']} (driver {facts['driver']})")
    rows = []
    if args.torch:
        for model in args.models:
            rows += bench_torch(model, args)
    else:
        for spec in args.engine:
            rows += bench_engine(spec, args)
    slug = re.sub(r"[^a-z0-9]+", "-", facts["gpu"].lower()).strip("-")
    out = args.out or Path(__file__).parent / "results" / (
        f"{dt.date.today().isoformat()}-{slug}-{mode}.json"
    )
    result = {
        "what": f"{mode} latency, CUDA events around one call, median of {args.repeat}",
        "mode": mode,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        **facts,
        "versions": versions("tensorrt" if not args.torch else "torch"),
        "settings": {"batches": args.batches, "repeat": args.repeat, "warmup": args.warmup},
        "results": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
