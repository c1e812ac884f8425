"""The contract between ``benchmarks/compare_cpu.py`` and the per-peer runner scripts beside this
file: where the peers live, the command line every runner takes, the one timing loop every
program is measured with, and the result file a runner writes.

Standard library only (numpy is not needed): the runners import it inside the peers' own
virtualenvs, whose packages rtpose does not control.

What is timed (the same for every program): the clock starts when the ``warmup``-th frame's
keypoints are in hand and stops when the last frame's are, so ``fps = (frames - warmup) /
timed_s`` counts only frames decoded *and* posed inside the window. Model loading, opening the
video and the warm-up frames are outside it (``load_s`` and ``wall_s`` record them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

RESULT_VERSION = 1
MANIFEST = "peers.json"  # written by setup.py in the peers folder
DECIMALS = 3


def default_peers_dir() -> Path:
    """``$RTPOSE_HOME/peers`` (``~/.cache/rtpose/peers`` by default): venvs, models, manifest."""
    return Path(os.environ.get("RTPOSE_HOME", "~/.cache/rtpose")).expanduser() / "peers"


def read_manifest(peers_dir: Path) -> dict:
    """The manifest setup.py wrote in ``peers_dir``; {} when there is none yet."""
    path = peers_dir / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def log(who: str, msg: str) -> None:
    print(f"[{who}] {msg}", file=sys.stderr, flush=True)


def runner_parser(description: str) -> argparse.ArgumentParser:
    """The options every runner takes; a runner adds its own after these."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--video", required=True, help="video file to run on")
    parser.add_argument("--frames", type=int, default=None, help="stop after N frames (all)")
    parser.add_argument("--warmup", type=int, default=5, help="frames run before the clock")
    parser.add_argument("--out", required=True, type=Path, help="result JSON to write")
    return parser


def person(box: Iterable[float], score: float, keypoints: Iterable[Iterable[float]]) -> dict:
    """One person of the result file: xyxy box, score, K x [x, y, score] in frame pixels."""
    return {
        "box": [round(float(v), DECIMALS) for v in box],
        "score": round(float(score), 4),
        "keypoints": [[round(float(v), DECIMALS) for v in kp[:3]] for kp in keypoints],
    }


def measure(
    step: Callable[[], list[dict] | None], *, frames: int | None, warmup: int
) -> tuple[list[list[dict]], dict]:
    """Call ``step`` (one frame: decode and pose, returning its persons, or None at the end of
    the video) until the video or ``frames`` ends; the persons per frame and the timing."""
    if warmup < 0:
        raise SystemExit(f"error: --warmup must be >= 0, got {warmup}")
    if frames is not None and frames <= warmup:
        raise SystemExit(f"error: --frames ({frames}) must be more than --warmup ({warmup})")
    t0 = time.perf_counter()
    start = t0 if warmup == 0 else None
    out: list[list[dict]] = []
    while frames is None or len(out) < frames:
        persons = step()
        if persons is None:
            break
        out.append(persons)
        if len(out) == warmup:
            start = time.perf_counter()
    end = time.perf_counter()
    if start is None or len(out) <= warmup:
        raise SystemExit(f"error: the video has {len(out)} frames, not more than --warmup {warmup}")
    timed = len(out) - warmup
    return out, {
        "frames": len(out),
        "warmup_frames": warmup,
        "timed_frames": timed,
        "timed_s": round(end - start, 6),
        "fps": round(timed / (end - start), 4),
        "run_s": round(end - t0, 6),
    }


def write_result(
    path: Path, *, program: str, timing: dict, persons: list[list[dict]], load_s: float,
    versions: dict, settings: dict,
) -> None:  # fmt: skip
    """The runner's result file (written whole, then renamed into place)."""
    doc = {
        "result_version": RESULT_VERSION,
        "program": program,
        "python": platform.python_version(),
        "load_s": round(load_s, 4),
        **timing,
        "versions": versions,
        "settings": settings,
        "persons": persons,
    }
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def dist_versions(*names: str) -> dict[str, str | None]:
    """Installed versions of distributions (None: not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_skipped(path: Path, *, program: str, reason: str) -> None:
    """The result file of a program that cannot run here (a backend or model not available)."""
    path.write_text(json.dumps({"result_version": RESULT_VERSION, "program": program,
                                "skipped": reason}))  # fmt: skip
