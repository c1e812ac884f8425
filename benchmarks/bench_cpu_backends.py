"""CPU inference backends compared on YOLO11n-pose: what ``backend="auto"`` should pick.

Runs the cached YOLO11n-pose ONNX export (the file ``backend="onnxruntime"`` and
``backend="openvino"`` both open) on real frames of the sample video, letterboxed as the stream
letterboxes them (rectangular, stride 32: 1x3x384x640 for the 1768x994 video), with:

- ``onnxruntime``: :class:`~rtpose.backends.onnxruntime.OnnxRuntimeBackend`, CPU provider;
- ``openvino``: :class:`~rtpose.backends.openvino.OpenVinoBackend` as the pipeline opens it
  (fp32; a model compiled for the stream's one shape after its second frame);
- ``openvino-dynamic``: the same with ``static_shapes=0`` (every frame on the model compiled
  with dynamic dims), which is why the backend compiles per shape;
- with ``--int8 PATH`` (a Q/DQ ONNX of the same network, e.g. written by
  :func:`rtpose.deploy.int8.quantize_int8`; the committed run used its default settings on 16
  letterboxed frames of the sample video): ``onnxruntime-int8`` and ``openvino-int8``.

Each backend runs ``--warmup`` frames (not timed: first-call allocation, OpenVINO's per-shape
compile), then every frame once; backends alternate for ``--rounds`` rounds, the order rotating
each round, and the median of the round medians is reported. Model time only: the network
inputs are built before timing. Writes JSON to ``benchmarks/results/``.

    python benchmarks/bench_cpu_backends.py [--frames 20] [--rounds 9] [--int8 PATH] [--out FILE]

The CPU preference in ``rtpose/backends/base.py`` (``CPU_BACKEND_MS``) follows the committed
result; ``tests/backends/test_cpu_backend_choice.py`` fails when they disagree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from rtpose._cpu import usable_cores
from rtpose.bench.run import machine_info, versions


def network_inputs(video: Path, count: int, info) -> list[np.ndarray]:
    """``count`` frames spread over the video, each as the (1, 3, h, w) float32 letterbox the
    one-stage estimator feeds the network."""
    from rtpose.deploy.calibration import calibration_frames
    from rtpose.estimators.preprocess import letterbox_batch, yolo_letterbox

    frames = calibration_frames(video, count=count)
    return [
        letterbox_batch([f], yolo_letterbox(f.shape[:2], info.input_size, fixed=False),
                        info.normalisation)
        for f in frames
    ]  # fmt: skip


def open_backends(fp32: Path, int8: Path | None, threads: int) -> dict:
    from rtpose.backends.onnxruntime import OnnxRuntimeBackend
    from rtpose.backends.openvino import OpenVinoBackend

    cpu = ["CPUExecutionProvider"]
    backends = {
        "onnxruntime": OnnxRuntimeBackend(fp32, threads=threads, providers=cpu),
        "openvino": OpenVinoBackend(fp32, threads=threads),
        "openvino-dynamic": OpenVinoBackend(fp32, threads=threads, static_shapes=0),
    }
    if int8 is not None:
        backends["onnxruntime-int8"] = OnnxRuntimeBackend(int8, threads=threads, providers=cpu)
        backends["openvino-int8"] = OpenVinoBackend(int8, threads=threads)
    return backends


def time_round(backend, inputs: list[np.ndarray], warmup: int) -> list[float]:
    """ms per frame of every input, after ``warmup`` untimed runs."""
    name = backend.input_names[0]
    for x in inputs[:warmup]:
        backend.run({name: x})
    # OpenVINO compiles a repeated shape's own model in the background: time that model
    getattr(backend, "finish_compiling", lambda: None)()
    times = []
    for x in inputs:
        t = time.perf_counter()
        backend.run({name: x})
        times.append((time.perf_counter() - t) * 1e3)
    return times


def agreement(backends: dict, reference: str, inputs: list[np.ndarray]) -> dict[str, dict]:
    """Each backend's outputs against the reference backend's on the same inputs: the largest
    |difference| of the raw predictions (1, 56, A) (box centre and size, keypoint x, y in input
    pixels; scores in [0, 1]) over all anchors and over the anchors the reference scores
    >= 0.25, and the accuracy gate of ``rtpose-build`` on the persons (mean OKS, missed)."""
    from rtpose.deploy.accuracy import compare, yolo_instances

    ref = backends[reference]
    name, out = ref.input_names[0], ref.output_names[0]
    want = [ref.run({name: x})[out] for x in inputs]
    result = {}
    for key, backend in backends.items():
        got = [backend.run({name: x})[out] for x in inputs]
        every = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
        confident = max(
            float(np.abs(g - w)[0][:, w[0, 4] >= 0.25].max(initial=0.0)) for g, w in zip(got, want)
        )
        r, c, areas, missed = yolo_instances(want, got)
        gate = compare(r, c, areas, skeleton="coco17", frames=len(inputs), missed=missed)
        result[key] = {
            "max_abs_diff": every,
            "max_abs_diff_persons": confident,
            "persons": gate.instances + gate.missed,
            "persons_missed": gate.missed,
            "oks_mean": gate.oks_mean,
            "keypoint_error_mean_px": gate.error_mean_px,
        }
    return result


def openvino_default_precision() -> str:
    """OpenVINO's default CPU inference precision here (bf16 on AVX-512 BF16 / AMX CPUs)."""
    import openvino as ov

    return str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def main() -> None:
    from rtpose.assets import require_asset
    from rtpose.deploy.onnx import cached_yolo_onnx
    from rtpose.models.weights import resolve_weights
    from rtpose.models.zoo import get_model_info

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=None, help="default: the sample video")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=usable_cores())
    parser.add_argument("--int8", type=Path, help="a Q/DQ int8 ONNX of yolo11n-pose to time too")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.int8 is not None and not args.int8.is_file():
        parser.error(f"--int8: no such file {args.int8}")

    info = get_model_info("yolo11n-pose")
    fp32 = cached_yolo_onnx(info, resolve_weights(info, None))
    video = args.video or require_asset("demo.mp4")
    inputs = network_inputs(video, args.frames, info)
    shapes = sorted({tuple(x.shape) for x in inputs})
    backends = open_backends(fp32, args.int8, args.threads)
    names = list(backends)
    load_before = load_average()
    rounds: dict[str, list[list[float]]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for key in order:
            times = time_round(backends[key], inputs, args.warmup)
            rounds[key].append(times)
            print(f"round {r + 1} {key:17s} {np.median(times):7.2f} ms", flush=True)
    load_after = load_average()
    vs_fp32 = agreement(backends, "onnxruntime", inputs)
    vs_int8 = None
    if args.int8 is not None:
        pair = {k: backends[k] for k in ("onnxruntime-int8", "openvino-int8")}
        vs_int8 = agreement(pair, "onnxruntime-int8", inputs)["openvino-int8"]
    for b in backends.values():
        b.close()

    result: dict = {"backends": {}}
    for key, per_round in rounds.items():
        medians = [float(np.median(t)) for t in per_round]
        flat = np.concatenate(per_round)
        result["backends"][key] = {
            "median_ms": float(np.median(medians)),
            "p95_ms": float(np.percentile(flat, 95)),
            "round_medians_ms": medians,
            "vs_onnxruntime_fp32": vs_fp32[key],
        }
    if vs_int8 is not None:
        result["openvino-int8_vs_onnxruntime-int8"] = vs_int8
    date = dt.date.today().isoformat()
    result.update(
        what="cpu-backends",
        date=date,
        model="yolo11n-pose",
        onnx=fp32.name,
        int8_onnx=args.int8.name if args.int8 else None,
        input_shapes=[list(s) for s in shapes],
        video=Path(video).name,
        frames=len(inputs),
        warmup=args.warmup,
        rounds=args.rounds,
        threads=args.threads,
        openvino_default_precision=openvino_default_precision(),
        openvino_precision_used="f32 (INFERENCE_PRECISION_HINT); int8 where the file has Q/DQ",
        # other processes on the machine slow a CPU run: say how busy it was
        machine={**machine_info(), "load_average_1m": [load_before, load_after]},
        versions={**versions(), "openvino": metadata.version("openvino")},
    )
    out = args.out or Path(__file__).parent / "results" / (
        f"{date}-cpu{usable_cores()}-backends.json"
    )
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'backend':17s} {'median':>9s} {'p95':>9s}  vs ONNX Runtime fp32")
    for key, entry in result["backends"].items():
        v = entry["vs_onnxruntime_fp32"]
        print(
            f"{key:17s} {entry['median_ms']:6.2f} ms {entry['p95_ms']:6.2f} ms  max |diff| "
            f"{v['max_abs_diff']:.3g} ({v['max_abs_diff_persons']:.3g} on persons), OKS "
            f"{v['oks_mean']:.3f}, {v['persons_missed']}/{v['persons']} persons missed"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
