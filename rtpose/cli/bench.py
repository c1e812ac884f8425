"""``rtpose bench``: the argparse front end of :mod:`rtpose.bench.run`.

It parses the options into a :class:`rtpose.bench.run.BenchConfig`, runs it, prints the table and
writes the JSON report (atomically) when ``--json`` is given. What is measured, and how, is
described in :mod:`rtpose.bench.run`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rtpose._io import atomic_open
from rtpose.bench.run import DEVICES, BenchConfig, format_table, run_bench


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 1,5,10, got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"values must be >= 1, got {text!r}")
    return values


def _csv(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def add_bench_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``rtpose bench`` on the ``rtpose`` sub-command parsers."""
    from rtpose.backends.base import BACKENDS

    d = BenchConfig()  # the defaults, defined once by the config
    bench = sub.add_parser(
        "bench",
        help="measure FPS, latency and per-stage times against people per frame and streams",
        description="Run VideoPoseStream on crowd scenes (real person crops from the sample "
        "video, tiled) for every (people, streams) pair; print a table of FPS, latency p50/p99 "
        "(frame arrival -> keypoints on the host), per-stage medians and persons found; "
        "optionally write JSON with the machine, versions and configuration.",
    )
    bench.add_argument("--model", default=d.model, metavar="M", help="(%(default)s)")
    bench.add_argument(
        "--weights", metavar="W",
        help="checkpoint path; 'random': random-init weights for top-down models (timing only)",
    )  # fmt: skip
    bench.add_argument(
        "--detector", default=d.detector, metavar="D",
        help="person detector of top-down models (%(default)s)",
    )  # fmt: skip
    bench.add_argument(
        "--backend", default=d.backend, choices=BACKENDS, metavar="B",
        help=f"one of {', '.join(BACKENDS)} (%(default)s)",
    )  # fmt: skip
    bench.add_argument(
        "--people", type=_int_list, default=d.people, metavar="N,N",
        help=f"persons per frame (default: {_csv(d.people)})",
    )  # fmt: skip
    bench.add_argument(
        "--streams", type=_int_list, default=d.streams, metavar="N,N",
        help=f"simultaneous streams (default: {_csv(d.streams)})",
    )  # fmt: skip
    bench.add_argument(
        "--frames", type=_count(1), default=d.frames, metavar="N",
        help="measured frames per stream (%(default)s)",
    )  # fmt: skip
    bench.add_argument(
        "--warmup", type=_count(0), default=d.warmup, metavar="N",
        help="frames per stream before measuring (%(default)s)",
    )  # fmt: skip
    bench.add_argument(
        "--live", action="store_true",
        help="play the sources in real time at --fps (late frames are dropped)",
    )  # fmt: skip
    bench.add_argument(
        "--fps", type=float, default=d.fps, help="frame rate of --live sources (%(default)s)"
    )
    bench.add_argument(
        "--device", choices=DEVICES, default=d.device,
        help="decode device of the stream (%(default)s)",
    )  # fmt: skip
    bench.add_argument("--json", type=Path, metavar="OUT", help="write the results here")
    bench.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return bench


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``rtpose bench`` from parsed arguments; print the table; write JSON if asked."""
    if args.json is not None and args.json.suffix != ".json":
        raise ValueError(f"--json must name a .json file, got {args.json}")
    config = BenchConfig(
        model=args.model, weights=args.weights, detector=args.detector, backend=args.backend,
        people=args.people, streams=args.streams, frames=args.frames, warmup=args.warmup,
        live=args.live, fps=args.fps, device=args.device,
    )  # fmt: skip
    report = run_bench(config, progress=not args.no_progress)
    print(format_table(report))
    if args.json is not None:
        with atomic_open(args.json) as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")
    return 0
