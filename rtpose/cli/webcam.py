"""``rtpose-webcam``: live poses from a camera (or a file played as a live source).

Window mode draws skeletons, track IDs, FPS and latency (q or Esc quits); ``--headless`` prints one
line of statistics per second instead. Ctrl-C stops either cleanly: the stream's threads are
stopped, a summary is printed and the exit status is 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rtpose.errors import RtposeError

if TYPE_CHECKING:
    pass

PROG = "rtpose-webcam"
WINDOW = "rtpose-webcam"
EXPECTED_ERRORS = (RtposeError, FileNotFoundError, IsADirectoryError, ValueError, ImportError)
EXIT_NO_GUI = 2


def build_parser() -> argparse.ArgumentParser:
    from rtpose.backends.base import BACKENDS

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Live pose estimation from a camera, with tracking and smoothing. Window "
        "mode shows skeletons, track IDs, FPS and latency (q or Esc quits); --headless prints "
        "per-second statistics. Ctrl-C stops cleanly with a summary.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--device", type=int, default=None, metavar="N", help="camera index (default: 0)"
    )
    where.add_argument(
        "--source", type=Path, metavar="FILE",
        help="play a video file as a live source (real time, late frames dropped)",
    )  # fmt: skip
    parser.add_argument("--model", default="yolo11n-pose", metavar="M", help="(%(default)s)")
    parser.add_argument(
        "--backend", default="auto", choices=BACKENDS, metavar="B",
        help=f"one of {', '.join(BACKENDS)} (%(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--weights", type=Path, metavar="W",
        help="checkpoint (default: the model's fetched weights; top-down models need one)",
    )  # fmt: skip
    parser.add_argument(
        "--headless", action="store_true", help="no window: print statistics once per second"
    )
    parser.add_argument(
        "--max-seconds", type=float, metavar="S", help="stop after S seconds (default: run on)"
    )
    parser.add_argument("--no-track", action="store_true", help="no track IDs, no smoothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser


@dataclass
class Window:
    """Statistics of one reporting interval (a second) or of the whole run."""

    start: float
    frames: int = 0
    latency: list[float] = field(default_factory=list)
    people: int = 0

    def add(self, latency_ms: float | None, people: int) -> None:
        self.frames += 1
        self.people += people
        if latency_ms is not None:
            self.latency.append(latency_ms)

    def percentiles(self) -> tuple[float, float]:
        if not self.latency:
            return float("nan"), float("nan")
        p50, p99 = np.percentile(self.latency, [50, 99])
        return float(p50), float(p99)


class StopFlag:
    """Set by the first Ctrl-C (SIGINT) or SIGTERM; the loop stops after the current frame.

    A second Ctrl-C raises KeyboardInterrupt (the loop may be blocked waiting for a frame)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.reason is not None:
            raise KeyboardInterrupt
        self.reason = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"


def check_gui() -> str | None:
    """None when OpenCV can open a window here; else why not, as one line."""
    import cv2

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display (DISPLAY / WAYLAND_DISPLAY unset); run with --headless"
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error:
        return (
            "this OpenCV build has no GUI (opencv-python-headless?): run with --headless, or "
            "install the GUI build: pip install opencv-python"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.max_seconds is not None and not args.max_seconds > 0:
        print(f"{PROG}: error: --max-seconds must be > 0, got {args.max_seconds}", file=sys.stderr)
        return 2
    if not args.headless:
        problem = check_gui()
        if problem is not None:
            print(f"{PROG}: error: {problem}", file=sys.stderr)
            return EXIT_NO_GUI
    try:
        return run(args)
    except EXPECTED_ERRORS as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C while the stream was shutting down
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 0


def run(args: argparse.Namespace) -> int:
    from rtpose.pipeline.stream import VideoPoseStream

    # a file is played in real time (OpenCVSource paces live files by their timestamps)
    source = str(args.source) if args.source is not None else (args.device or 0)
    track = not args.no_track
    stream = VideoPoseStream(
        source, model=args.model, backend=args.backend, weights=args.weights, live=True,
        track=track, smooth=track, return_images=not args.headless,
    )  # fmt: skip
    reason = "end of source"
    hud: tuple[float, float] | None = None  # (fps, latency p50) of the last full second
    with StopFlag() as stop, stream:
        start = time.perf_counter()
        total, second = Window(start), Window(start)
        dropped_before = 0
        for f in stream:
            now = time.perf_counter()
            total.add(f.timings.get("latency"), len(f.persons))
            second.add(f.timings.get("latency"), len(f.persons))
            if now - second.start >= 1.0:
                dropped = stream.stats.dropped
                if args.headless:
                    print_second(second, now - start, dropped - dropped_before)
                hud = (second.frames / (now - second.start), second.percentiles()[0])
                dropped_before = dropped
                second = Window(now)
            if not args.headless and not show(f, hud):
                reason = "q"
                break
            if stop.reason is not None:
                reason = stop.reason
                break
            if args.max_seconds is not None and now - start >= args.max_seconds:
                reason = "--max-seconds"
                break
        elapsed = time.perf_counter() - start
        stats = stream.stats
    if not args.headless:
        import cv2

        cv2.destroyAllWindows()
    print_summary(total, elapsed, stats.dropped, reason)
    return 0


def print_second(window: Window, t: float, dropped: int) -> None:
    """One line per second, ``key=value`` fields (parseable)."""
    p50, p99 = window.percentiles()
    fps = window.frames / max(1e-9, time.perf_counter() - window.start)
    people = window.people / window.frames if window.frames else 0.0
    print(
        f"t={t:.1f}s frames={window.frames} fps={fps:.1f} latency_p50_ms={p50:.1f} "
        f"latency_p99_ms={p99:.1f} dropped={dropped} people={people:.1f}",
        flush=True,
    )


def print_summary(total: Window, elapsed: float, dropped: int, reason: str) -> None:
    p50, p99 = total.percentiles()
    fps = total.frames / elapsed if elapsed > 0 else 0.0
    people = total.people / total.frames if total.frames else 0.0
    print(
        f"summary: frames={total.frames} seconds={elapsed:.1f} fps={fps:.1f} "
        f"latency_p50_ms={p50:.1f} latency_p99_ms={p99:.1f} dropped={dropped} "
        f"people={people:.1f} stopped_by={reason}",
        flush=True,
    )


def show(frame, hud: tuple[float, float] | None) -> bool:
    """Draw and show one frame; False when the user asked to quit (q, Esc, window closed)."""
    import cv2

    from rtpose.viz import draw_poses

    canvas = draw_poses(frame.image, frame.persons)
    if hud is not None:
        fps, p50 = hud
        text = f"{fps:.1f} FPS  latency {p50:.1f} ms  people {len(frame.persons)}"
        cv2.putText(canvas, text, (12, 32), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 4,
                    cv2.LINE_AA)  # fmt: skip
        cv2.putText(canvas, text, (12, 32), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2,
                    cv2.LINE_AA)  # fmt: skip
    cv2.imshow(WINDOW, canvas)
    key = cv2.waitKey(1) & 0xFF
    if key in (ord("q"), ord("Q"), 27):
        return False
    return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1


if __name__ == "__main__":
    sys.exit(main())
