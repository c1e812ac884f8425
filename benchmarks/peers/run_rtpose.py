#!/usr/bin/env python3
"""Runner of rtpose and its variants (in rtpose's own venv): the path of ``rtpose run``.

``rtpose.VideoPoseStream(video, **options)`` with the variant's options (none: fp32, backend
auto, pipelined stages, default threads) over the video; every ``PoseFrame``'s persons are
copied out. Opening the stream (video and model) is not timed; iterating it is, from the
``warmup``-th frame's keypoints to the last's (see peer_protocol.py). Pipelined, the decode
stage may already hold a few frames beyond the warm-up when the clock starts (its bounded
queue), as it would in ``rtpose run``.

A variant whose backend or precision is not available here (TensorRT on a CPU machine, a
backend this rtpose does not know) writes a "skipped" result with the reason instead of
failing.

    .venv/bin/python run_rtpose.py --program rtpose --options '{}' --video demo.mp4 --out r.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_protocol import log, measure, person, runner_parser, write_result, write_skipped


def main() -> None:
    parser = runner_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True, help="program name for the result")
    parser.add_argument("--options", default="{}", help="VideoPoseStream keyword options, JSON")
    args = parser.parse_args()
    options = json.loads(args.options)
    if not isinstance(options, dict):
        raise SystemExit(f"error: --options must be a JSON object, got {args.options!r}")

    import rtpose
    from rtpose.bench.run import versions
    from rtpose.errors import BackendUnavailableError

    t0 = time.perf_counter()
    try:
        stream = rtpose.VideoPoseStream(args.video, max_frames=args.frames, **options)
    except (BackendUnavailableError, ImportError, ValueError) as exc:
        # ValueError: this rtpose does not know the variant's backend or precision
        log(args.program, f"skipped: {exc}")
        write_skipped(args.out, program=args.program, reason=f"{type(exc).__name__}: {exc}")
        return
    load_s = time.perf_counter() - t0
    with stream:
        frames = iter(stream)

        def step() -> list[dict] | None:
            f = next(frames, None)
            if f is None:
                return None
            return [person(p.box, p.score, p.keypoints) for p in f.persons]

        log(args.program, f"running VideoPoseStream({Path(args.video).name}, **{options})")
        persons, timing = measure(step, frames=args.frames, warmup=args.warmup)
        pose = stream.estimator._pose
        source = stream.source
        width, height = source.size
        lb = pose.letterbox((height, width))
        settings = {
            "options": options,
            "backend": stream.estimator.backend_name,
            "pipelined": stream.pipelined,
            "decoder": type(source).__name__,
            "network_input_shape": [1, 3, *lb.out_hw],
            "call": f"rtpose.VideoPoseStream(video, **{options})",
        }
    write_result(args.out, program=args.program, timing=timing, persons=persons, load_s=load_s,
                 versions=versions(), settings=settings)  # fmt: skip


if __name__ == "__main__":
    main()
