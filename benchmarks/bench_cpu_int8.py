"""Reduced precision on the CPU: model time and accuracy of each candidate against fp32.

YOLO11n-pose on ONNX Runtime's CPU provider, on the stream's input (one letterboxed frame of
the sample video, 1x3x384x640), with the threads the stream uses. Candidates, all made from the
same fp32 export with the same calibration frames (64) and gated on the same later frames (16),
as ``rtpose-build`` does:

- ``fp16``: the mixed-precision ONNX of ``rtpose.deploy.fp16`` (TensorRT's fp16 path);
- ``int8-tensorrt``: the Q/DQ recipe made for TensorRT (symmetric int8 activations, Q/DQ on
  op inputs only);
- ``int8-cpu``: the CPU recipe (``target="cpu"``), what ``precision="int8"`` runs on the CPU.

The models alternate for ``--rounds`` rounds of ``--runs`` timed runs; each model's median over
all runs is reported with its speed-up over fp32 and its gate report (mean OKS vs fp32, persons
missed, keypoint error in network pixels). Writes JSON to ``benchmarks/results/``.

    python benchmarks/bench_cpu_int8.py [--rounds 5] [--runs 20] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from rtpose.bench.run import machine_info, versions


def candidates(work: Path):
    """(subject, {name: onnx path}) for the fp32 export and each reduced-precision candidate."""
    from rtpose.deploy.fp16 import convert_fp16
    from rtpose.deploy.subject import calibrate_int8, export_subject

    subject = export_subject("yolo11n-pose", None, None, work, target="cpu")
    paths = {"fp32": subject.onnx, "fp16": convert_fp16(subject.onnx, work / "fp16.onnx")}
    for target in ("tensorrt", "cpu"):
        paths[f"int8-{target}"], _ = calibrate_int8(
            subject, work / f"int8-{target}.onnx", calib=None, calib_frames=64, target=target
        )
    return subject, paths


def time_models(paths: dict[str, Path], x: np.ndarray, threads: int, rounds: int, runs: int):
    from rtpose.backends.onnxruntime import OnnxRuntimeBackend

    backends = {
        k: OnnxRuntimeBackend(p, threads=threads, providers=["CPUExecutionProvider"])
        for k, p in paths.items()
    }
    times: dict[str, list[float]] = {k: [] for k in backends}
    for b in backends.values():  # warm-up
        for _ in range(3):
            b.run({b.input_names[0]: x})
    for r in range(rounds):
        for k, b in backends.items():
            for _ in range(runs):
                t = time.perf_counter()
                b.run({b.input_names[0]: x})
                times[k].append((time.perf_counter() - t) * 1e3)
        line = ", ".join(f"{k} {np.median(v[-runs:]):.2f} ms" for k, v in times.items())
        print(f"round {r + 1}/{rounds}: {line}", flush=True)
    for b in backends.values():
        b.close()
    return times


def main() -> None:
    from rtpose._cpu import has_int8_dot_product, usable_cores
    from rtpose.deploy.subject import accuracy_gate, gate_frames

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per model per round")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: usable)")
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results/...)")
    args = parser.parse_args()
    threads = args.threads or usable_cores()

    with tempfile.TemporaryDirectory(prefix="bench-cpu-int8-") as tmp:
        subject, paths = candidates(Path(tmp))
        frames = gate_frames(None, 16, offset=64)
        (x,) = subject.frames_to_inputs(frames[:1])
        gates = {
            k: accuracy_gate(subject, p, frames, precision=k, min_oks=0.95).to_dict()
            for k, p in paths.items()
            if k != "fp32"
        }
        times = time_models(paths, x, threads, args.rounds, args.runs)
    fp32 = float(np.median(times["fp32"]))
    models = {}
    for k, v in times.items():
        ms = float(np.median(v))
        entry = {"p50_ms": ms, "p10_ms": float(np.percentile(v, 10)),
                 "p90_ms": float(np.percentile(v, 90)), "speedup_vs_fp32": fp32 / ms}  # fmt: skip
        if k in gates:
            g = gates[k]
            entry["gate"] = {key: g[key] for key in ("oks_mean", "passed", "instances", "missed",
                                                    "error_mean_px", "error_p95_px")}  # fmt: skip
        models[k] = entry
    result = {
        "what": "cpu-reduced-precision",
        "date": dt.date.today().isoformat(),
        "model": "yolo11n-pose",
        "input_shape": list(x.shape),
        "threads": threads,
        "rounds": args.rounds,
        "runs_per_round": args.runs,
        "int8_dot_product": has_int8_dot_product(),
        "models": models,
        "machine": machine_info(),
        "versions": versions(),
    }
    print(f"{'model':14s} {'p50 ms':>8s} {'x fp32':>7s} {'OKS':>7s} {'missed':>6s}")
    for k, m in models.items():
        g = m.get("gate", {})
        print(f"{k:14s} {m['p50_ms']:8.2f} {m['speedup_vs_fp32']:7.2f} "
              f"{g.get('oks_mean', 1.0):7.4f} {g.get('missed', 0):6d}")  # fmt: skip
    out = args.out or Path(__file__).parent / "results" / (
        f"{result['date']}-cpu{result['machine']['usable_cores']}-int8-t{threads}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
