"""The ``rtpose bench`` runner: end-to-end FPS and latency, per stage, against people per frame
and streams, and the JSON report that records them with the machine and versions.

For every (people, streams) pair, ``VideoPoseStream`` runs on ``streams`` in-memory sources of
crowd scenes (:func:`rtpose.bench.synthetic.crowd_frames`: real person crops tiled on a grey
background). Measured, after ``warmup`` frames of each stream:

- FPS: frames of all streams yielded / wall time (end to end: frame handed to the pipeline ->
  keypoints on the host, every stage included);
- latency p50 / p99: ``PoseFrame.timings["latency"]``, frame arrival -> keypoints on the host;
- per-stage medians of the other ``PoseFrame.timings`` entries;
- persons found per frame.

Targets on an H100/H200 (for later; CPU runs only record where the CPU stands): one-stage
yolo11n-pose >= 500 FPS offline; live latency p50 <= 5 ms; top-down frame time at 20 people
<= 1.5x the time at 1 person.

:func:`run_bench` takes a :class:`BenchConfig` and returns the report; :func:`format_table`
prints it. The argparse front end is :mod:`rtpose.cli.bench`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from rtpose._cpu import usable_cores
from rtpose._io import atomic_path
from rtpose._version import __version__

log = logging.getLogger(__name__)

RANDOM = "random"
RANDOM_NOTE = (
    "RANDOM-INIT WEIGHTS: the pose network has random weights (seed 0); timings are valid, "
    "keypoints are meaningless"
)
TARGETS = {
    "one_stage_offline_fps": ">= 500 FPS, yolo11n-pose, 1 stream, on an H100/H200",
    "live_latency_p50_ms": "<= 5 ms on an H100/H200",
    "top_down_20_vs_1_person_frame_time": "<= 1.5x (yolo11n-pose boxes + rsn18) on an H100/H200",
}
LATENCY_NOTE = (
    "latency: frame arrival (the source hands the frame over) -> keypoints on the host. Offline "
    "(not --live) every frame is available at once, so frames also wait in the pipeline's bounded "
    "queues: latency ~ frames in flight x frame time; --live measures camera-like latency"
)
Device = Literal["cpu", "gpu", "auto"]
DEVICES: tuple[str, ...] = get_args(Device)


@dataclass(frozen=True)
class BenchConfig:
    """What ``rtpose bench`` measures.

    Attributes:
        model: zoo name of the pose model.
        weights: checkpoint path, None (the model's default weights) or ``"random"`` (top-down
            models only: random-init weights, for timing).
        detector: person detector of top-down models.
        backend: inference backend.
        people: persons per frame, one configuration each.
        streams: numbers of simultaneous streams, one configuration each.
        frames: measured frames per stream; warmup: frames per stream run before measuring.
        live: play the sources in real time at ``fps`` (latest-frame semantics: late frames are
            dropped) instead of as fast as the pipeline takes them.
        device: decode device passed to ``VideoPoseStream``.
        size: (width, height) of the crowd frames.
        seed: crowd scene seed.
    """

    model: str = "yolo11n-pose"
    weights: str | None = None
    detector: str = "yolo11n-pose"
    backend: str = "auto"
    people: tuple[int, ...] = (1, 5, 10, 20)
    streams: tuple[int, ...] = (1,)
    frames: int = 20
    warmup: int = 5
    live: bool = False
    fps: float = 30.0
    device: Device = "auto"
    size: tuple[int, int] = (1920, 1080)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("people", "streams"):
            values = getattr(self, name)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f"{name} must be ints >= 1, got {values!r}")
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be 'cpu', 'gpu' or 'auto', got {self.device!r}")


def run_bench(config: BenchConfig, *, progress: bool = True) -> dict[str, Any]:
    """Measure every (people, streams) pair of ``config``; the JSON-ready report."""
    from tqdm import tqdm

    from rtpose.models.zoo import get_model_info

    info = get_model_info(config.model)
    weights = _resolve_weights(info, config.weights)
    pairs = [(p, s) for p in config.people for s in config.streams]
    load_before = _load_average()
    results = []
    for people, streams in tqdm(pairs, desc="rtpose bench", unit="config", disable=not progress):
        results.append(measure(config, people, streams, weights=weights, top_down=info.top_down))
    return {
        "benchmark": "rtpose bench",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        # other processes on the machine slow a CPU run: say how busy it was
        "machine": {**machine_info(), "load_average_1m": [load_before, _load_average()]},
        "versions": versions(),
        "config": {
            **asdict(config),
            "weights": _weights_label(config.weights, weights),
            "top_down": info.top_down,
            # the zoo's settings, which bench keeps: flip test doubles the pose batch
            **(
                {"flip_test": info.flip_test, "input_size": list(info.input_size)}
                if info.top_down
                else {}
            ),
            "scene": f"crowd_frames: person crops from demo.mp4 tiled on grey, seed {config.seed}",
        },
        "random_weights": config.weights == RANDOM,
        **({"note": RANDOM_NOTE} if config.weights == RANDOM else {}),
        "latency_note": LATENCY_NOTE,
        "targets_gpu": TARGETS,
        "scaling": _scaling(results),
        "results": results,
    }


def measure(
    config: BenchConfig, people: int, streams: int, *, weights: str | None, top_down: bool
) -> dict[str, Any]:
    """One configuration: ``streams`` crowd sources of ``people`` persons through one stream."""
    from rtpose.bench.synthetic import crowd_frames
    from rtpose.pipeline.stream import VideoPoseStream
    from rtpose.video import ArraySource

    total = config.warmup + config.frames
    # one motion cycle of distinct frames at most, repeated by reference (memory stays bounded)
    unique = crowd_frames(people, size=config.size, frames=min(total, 30), seed=config.seed)
    images = [unique[i % len(unique)] for i in range(total)]
    sources = [ArraySource(images, fps=config.fps, live=config.live) for _ in range(streams)]
    options: dict[str, Any] = {}
    if top_down:
        options["detector"] = config.detector
    stream = VideoPoseStream(
        sources if streams > 1 else sources[0], model=config.model, backend=config.backend,
        weights=weights, device=config.device, live=config.live, **options,
    )  # fmt: skip
    latency: list[float] = []
    stages: dict[str, list[float]] = {}
    persons: list[int] = []
    skip = streams * config.warmup  # frames yielded before the clock starts
    yielded = 0
    backend = stream.estimator.backend_name
    with stream:
        t0 = time.perf_counter()
        for f in stream:
            yielded += 1
            if yielded == skip:
                t0 = time.perf_counter()
            if f.index < config.warmup:
                continue
            persons.append(len(f.persons))
            for stage, ms in f.timings.items():
                if stage == "latency":
                    latency.append(ms)
                else:
                    stages.setdefault(stage, []).append(ms)
        elapsed = time.perf_counter() - t0
        stats = stream.stats
    counted = yielded - min(skip, yielded)
    if not latency:
        raise RuntimeError(
            f"the stream yielded no measured frame for people={people}, streams={streams} "
            f"({yielded} frames in all, warmup {config.warmup} per stream)"
        )
    p50, p99 = np.percentile(latency, [50, 99])
    return {
        "people": people,
        "streams": streams,
        "backend": backend,
        "frames": counted,
        "elapsed_s": round(elapsed, 4),
        "fps": round(counted / elapsed, 3) if elapsed > 0 else None,
        "latency_ms": {
            "p50": round(float(p50), 3),
            "p99": round(float(p99), 3),
            "mean": round(float(np.mean(latency)), 3),
        },
        "stages_p50_ms": {k: round(float(np.median(v)), 3) for k, v in stages.items()},
        "persons_per_frame": {
            "mean": round(float(np.mean(persons)), 3),
            "min": int(min(persons)),
            "max": int(max(persons)),
        },
        "dropped": int(stats.dropped),
    }


def _scaling(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Frame time at the most people / at the fewest, per stream count (1 stream: the target)."""
    out = {}
    for streams in sorted({r["streams"] for r in results}):
        rows = sorted((r for r in results if r["streams"] == streams), key=lambda r: r["people"])
        lo, hi = rows[0], rows[-1]
        if lo["people"] == hi["people"] or not lo["fps"] or not hi["fps"]:
            continue
        out[f"streams={streams}"] = {
            "frame_time_ratio": round(lo["fps"] / hi["fps"], 3),
            "people": [lo["people"], hi["people"]],
        }
    return out


def _resolve_weights(info, weights: str | None) -> str | None:
    if weights != RANDOM:
        if info.top_down and weights is None:
            raise ValueError(
                f"{info.name} is a top-down model without bundled weights: pass --weights PATH "
                "to a checkpoint, or --weights random to time it with random-init weights"
            )
        return weights
    if not info.top_down:
        raise ValueError(
            f"--weights random is for top-down models (no trained weights to download); "
            f"{info.name} ships trained weights: leave --weights out"
        )
    return str(random_weights(info.name))


def random_weights(model: str, *, seed: int = 0) -> Path:
    """A checkpoint of ``model`` with random-init weights (seeded), cached under
    ``$RTPOSE_HOME/bench/`` so that its ONNX export is cached too. For timing only."""
    from rtpose.assets import rtpose_home

    path = rtpose_home() / "bench" / f"{model}-random-seed{seed}.pth"
    if path.is_file():
        return path
    import torch

    from rtpose.models.factory import create_model

    torch.manual_seed(seed)
    state = create_model(model).state_dict()
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state}, tmp)
    log.warning("%s: random-init weights for timing only: %s", model, path)
    return path


def _weights_label(requested: str | None, resolved: str | None) -> str:
    if requested == RANDOM:
        return f"random (random-init, seed 0, timing only): {Path(resolved or '').name}"
    return requested if requested is not None else "default (fetched)"


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    from rtpose.cuda.probe import gpu_status

    gpu = gpu_status()
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "gpu": (gpu.name or "unknown NVIDIA GPU") if gpu.available else None,
        "os": platform.platform(),
    }


def versions() -> dict[str, str | None]:
    """Versions of rtpose and the libraries that set its speed (None: not installed)."""
    from importlib import metadata

    import cv2

    def dist(*names: str) -> str | None:
        for name in names:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return None

    dali = next(
        (d.version for d in metadata.distributions()
         if (d.metadata["Name"] or "").lower().startswith("nvidia-dali")),
        None,
    )  # fmt: skip
    return {
        "rtpose": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": dist("onnxruntime", "onnxruntime-gpu"),
        "torch": dist("torch"),
        "opencv": cv2.__version__,
        "dali": dali,
    }


def format_table(report: dict[str, Any]) -> str:
    """The human-readable summary of a report."""
    cfg = report["config"]
    stages = list(dict.fromkeys(s for r in report["results"] for s in r["stages_p50_ms"]))
    lines = [
        f"rtpose bench: {cfg['model']} on {report['results'][0]['backend']}"
        + (f" (detector {cfg['detector']})" if cfg["top_down"] else "")
        + f", {cfg['frames']} frames/stream after {cfg['warmup']} warm-up"
        + (", live" if cfg["live"] else ", offline"),
        f"  machine: {report['machine']['cpu']} x{report['machine']['cores']}, "
        f"GPU {report['machine']['gpu'] or 'none'}, load average (1 min) before/after "
        f"{report['machine']['load_average_1m']}",
    ]
    if report.get("note"):
        lines.append(f"  {report['note']}")
    head = f"  {'people':>6} {'streams':>7} {'FPS':>8} {'lat p50':>8} {'lat p99':>8} {'persons':>7}"
    head += "".join(f" {s[:10]:>10}" for s in stages) + (" dropped" if cfg["live"] else "")
    lines += [head + "   (ms; stages: p50)"]
    for r in report["results"]:
        row = (
            f"  {r['people']:>6} {r['streams']:>7} {_num(r['fps']):>8} "
            f"{_num(r['latency_ms']['p50']):>8} {_num(r['latency_ms']['p99']):>8} "
            f"{r['persons_per_frame']['mean']:>7.1f}"
        )
        row += "".join(f" {_num(r['stages_p50_ms'].get(s)):>10}" for s in stages)
        lines.append(row + (f" {r['dropped']:>7}" if cfg["live"] else ""))
    for key, value in report["scaling"].items():
        lo, hi = value["people"]
        ratio = value["frame_time_ratio"]
        lines.append(f"  {key}: frame time at {hi} people = {ratio:.2f}x the time at {lo}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
