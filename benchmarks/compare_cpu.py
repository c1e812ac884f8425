#!/usr/bin/env python3
"""rtpose against its CPU peers on the same video, end to end (decode -> keypoints).

Programs (each run in a process of its own, the peers in their own venvs, see
``benchmarks/peers/setup.py``):

- ``rtpose``: ``rtpose.VideoPoseStream`` (the path of ``rtpose run``): fp32, backend auto,
  default settings; ``--rtpose-variants`` adds variants from :data:`RTPOSE_VARIANTS`;
- ``ultralytics-pt``: the original implementation, ``YOLO("yolo11n-pose.pt").predict(frame,
  imgsz=640, device="cpu")`` on ``cv2.VideoCapture`` frames;
- ``ultralytics-onnx``: the same weights exported by Ultralytics to ONNX, run by its predictor;
- ``rtmlib``: RTMO (or YOLOX + RTMPose) with rtmlib, when its ONNX model is on disk.

The programs alternate for ``--rounds`` rounds (each round in a rotated order). What is timed,
for every program: from the moment the ``--warmup``-th frame's keypoints are in hand to the
last frame's; FPS = timed frames / that time (decode, preprocessing, network, postprocessing
and copying the keypoints out are inside; model loading and the warm-up frames are not).
Reported per program: median FPS over the rounds, the range, the ratio to rtpose's median;
and for programs running the same weights (rtpose, ultralytics-pt, ultralytics-onnx) how far
their keypoints agree: persons matched per frame greedily by OKS (or box IoU), keypoint
distance in frame pixels of matched persons, matched / unmatched counts. Prints a table and
writes JSON to ``benchmarks/results/<date>-cpu<usable cores>-compare.json``.

    .venv/bin/python benchmarks/peers/setup.py          # once: peer venvs + ONNX export
    .venv/bin/python benchmarks/compare_cpu.py [--frames N] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / "peers"
for folder in (PEERS_DIR, HERE.parent / "tools"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from peer_protocol import default_peers_dir, read_manifest  # noqa: E402
from peer_venv import ultralytics_env  # noqa: E402

REFERENCE = "rtpose"
PEERS = ("ultralytics-pt", "ultralytics-onnx", "rtmlib")
BASE_PROGRAMS = (REFERENCE, *PEERS)
# Extra rtpose programs: name -> VideoPoseStream options. One line per variant; a variant whose
# backend or precision is not available here (or not known to this rtpose) is recorded as
# skipped with the reason.
RTPOSE_VARIANTS: dict[str, dict[str, Any]] = {
    "int8": {"precision": "int8"},
    "openvino": {"backend": "openvino"},
    "onnxruntime": {"backend": "onnxruntime"},
    "sync": {"pipelined": False},
    "onnxruntime-sync": {"backend": "onnxruntime", "pipelined": False},
    "openvino-sync": {"backend": "openvino", "pipelined": False},
    "int8-sync": {"precision": "int8", "pipelined": False},
    "pipelined": {"pipelined": True},
    "onnxruntime-pipelined": {"backend": "onnxruntime", "pipelined": True},
    "int8-pipelined": {"precision": "int8", "pipelined": True},
    "threads1": {"threads": 1},
    "torch": {"backend": "torch"},
    "tensorrt-fp16": {"backend": "tensorrt", "precision": "fp16"},
    "tensorrt-int8": {"backend": "tensorrt", "precision": "int8"},
}
YOLO_WEIGHTS = "yolo11n-pose"
Match = Literal["oks", "iou"]
CONFIDENT = 0.5  # keypoint score both sides must reach for the "confident keypoints" statistic
TIMED = (
    "per program, in its own process: clock from the moment the warm-up-th frame's keypoints "
    "are in hand to the last frame's; fps = timed frames / that time. Inside: video decode "
    "(OpenCV), preprocessing, network, postprocessing, copying the keypoints out; outside: "
    "model loading, opening the video, the warm-up frames"
)
LETTERBOX_NOTE = (
    "rtpose and ultralytics-pt letterbox a frame to the smallest stride-32 rectangle (384x640 "
    "for 16:9); the ultralytics ONNX export has a fixed 640x640 input, so its predictor "
    "letterboxes to the square: its keypoints differ slightly from the other two"
)

THREADS_NOTE = (
    "every program keeps its own default threads: rtpose sizes its backend's pool (OpenVINO or "
    "ONNX Runtime) from the cores the process may use; Ultralytics sets torch to "
    "min(8, cpu_count - 1) threads at predict time (settings.torch_threads: 1 on a 2-core "
    "machine) and opens its ONNX model with ONNX Runtime's default session options"
)


def log(msg: str) -> None:
    print(f"[compare_cpu] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- programs


@dataclass(frozen=True)
class Program:
    """One program of the comparison: a runner script of ``benchmarks/peers/`` and its Python.

    Attributes:
        name: the program's name in the report.
        runner: script file name in ``benchmarks/peers/``.
        python: interpreter that runs it (a peer venv's; rtpose: this one).
        args: runner arguments after the common ones (video, frames, warm-up, output).
        weights: the weights it runs; programs with the same weights have their keypoints
            compared.
        env: extra environment variables.
        skip: why it cannot run here (None: it can).
    """

    name: str
    runner: str
    python: str = sys.executable
    args: tuple[str, ...] = ()
    weights: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None

    def command(self, *, video: str, frames: int | None, warmup: int, out: Path) -> list[str]:
        cmd = [self.python, "-I", str(PEERS_DIR / self.runner), "--video", video]
        cmd += ["--warmup", str(warmup), "--out", str(out), *self.args]
        return cmd + (["--frames", str(frames)] if frames is not None else [])


def rtpose_program(variant: str | None = None) -> Program:
    """``rtpose`` (default settings) or the rtpose variant ``variant`` of RTPOSE_VARIANTS."""
    options = {} if variant is None else RTPOSE_VARIANTS[variant]
    name = REFERENCE if variant is None else f"{REFERENCE}-{variant}"
    return Program(name, "run_rtpose.py", args=("--program", name, "--options",
                   json.dumps(options)), weights=YOLO_WEIGHTS)  # fmt: skip


def peer_programs(manifest: dict, peers_dir: Path, *, rtmlib_pose: Path | None = None,
                  rtmlib_det: Path | None = None) -> dict[str, Program]:  # fmt: skip
    """The peers as the manifest of ``peers_dir`` describes them (skipped where not set up)."""
    setup_hint = (
        f"not set up in {peers_dir}: run `{Path(sys.executable).name} "
        f"benchmarks/peers/setup.py --venv-dir {peers_dir}` or pass --setup"
    )
    out: dict[str, Program] = {}
    ul = manifest.get("ultralytics")
    if ul:
        env = ultralytics_env(Path(ul["config_dir"]), base={})
        onnx = (ul.get("onnx_export") or {}).get("path")
        for name, model in (("ultralytics-pt", ul["weights"]), ("ultralytics-onnx", onnx)):
            out[name] = Program(
                name, "run_ultralytics.py", python=ul["python"], weights=YOLO_WEIGHTS, env=env,
                args=("--program", name, "--model", str(model), "--imgsz", "640"),
                skip=None if model else "no ONNX export in the manifest: rerun setup.py",
            )  # fmt: skip
    else:
        for name in ("ultralytics-pt", "ultralytics-onnx"):
            out[name] = Program(name, "run_ultralytics.py", weights=YOLO_WEIGHTS,
                                skip=f"ultralytics venv {setup_hint}")  # fmt: skip
    rt = manifest.get("rtmlib")
    models_dir = Path(rt["models_dir"]) if rt else peers_dir / "models" / "rtmlib"
    pose = rtmlib_pose or next(iter(sorted(models_dir.glob("*.onnx"))), None)
    if pose is None:
        note = rt["models_note"] if rt else "rtmlib ships no models"
        skip = f"no rtmlib ONNX model in {models_dir} nor --rtmlib-model: {note}"
    elif not rt:
        skip = f"rtmlib venv {setup_hint}"
    else:
        skip = None
    args = ("--program", "rtmlib", "--pose", str(pose))
    args += ("--det", str(rtmlib_det)) if rtmlib_det else ()
    out["rtmlib"] = Program("rtmlib", "run_rtmlib.py", python=rt["python"] if rt else "",
                            args=args, weights=None, skip=skip)  # fmt: skip
    return out


def select_programs(names: Sequence[str], variants: Sequence[str],
                    peers: dict[str, Program]) -> list[Program]:  # fmt: skip
    """rtpose first, then the chosen peers, then the rtpose variants, in that order."""
    programs = [rtpose_program()] if REFERENCE in names else []
    programs += [peers[n] for n in PEERS if n in names]
    return programs + [rtpose_program(v) for v in variants]


def rotation(programs: Sequence[Program], round_index: int) -> list[Program]:
    """The order of round ``round_index``: rotated by one per round, so no program always
    runs first (or right after the same neighbour's cache and thermal state)."""
    runnable = [p for p in programs if p.skip is None]
    if not runnable:
        return []
    k = round_index % len(runnable)
    return runnable[k:] + runnable[:k]


# --------------------------------------------------------------------------- running


def run_program(program: Program, *, video: str, frames: int | None, warmup: int,
                timeout: float, scratch: Path, tag: str) -> dict:  # fmt: skip
    """Run ``program`` once in its own process; its result file's contents (or an error)."""
    out = scratch / f"{program.name}-{tag}.json"
    cmd = program.command(video=video, frames=frames, warmup=warmup, out=out)
    env = {**os.environ, "PYTHONNOUSERSITE": "1", **program.env}
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        return {"error": f"exit {done.returncode}: " + "\n".join(tail)}
    result = json.loads(out.read_text())
    result["wall_s"] = round(wall, 4)  # process start to exit, model load included
    return result


# --------------------------------------------------------------------------- keypoint agreement


def as_arrays(persons: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's persons -> boxes (N, 4), scores (N,), keypoints (N, K, 3), float64."""
    if not persons:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3))
    boxes = np.array([p["box"] for p in persons], dtype=np.float64)
    scores = np.array([p["score"] for p in persons], dtype=np.float64)
    kpts = np.array([p["keypoints"] for p in persons], dtype=np.float64)
    return boxes, scores, kpts


def similarity(a_boxes: np.ndarray, a_kpts: np.ndarray, b_boxes: np.ndarray, b_kpts: np.ndarray,
               *, by: Match = "oks") -> np.ndarray:  # fmt: skip
    """(N, M) similarity of every person of one program to every person of the other: COCO
    OKS over all keypoints with the mean of the two box areas as the scale, or box IoU."""
    from rtpose.geometry import box_area, box_iou, oks
    from rtpose.skeletons import COCO17

    if by not in ("oks", "iou"):
        raise ValueError(f"by must be 'oks' or 'iou', got {by!r}")
    n, m = len(a_boxes), len(b_boxes)
    if n == 0 or m == 0:
        return np.zeros((n, m))
    if by == "iou":
        return box_iou(a_boxes, b_boxes)
    areas = (box_area(a_boxes)[:, None] + box_area(b_boxes)[None, :]) / 2  # (N, M)
    a = np.repeat(a_kpts, m, axis=0)  # (N*M, K, 3), row i*m + j is person i ...
    b = np.tile(b_kpts, (n, 1, 1))  # ... paired with person j
    return oks(a, b, areas.reshape(-1), np.asarray(COCO17.sigmas)).reshape(n, m)


def greedy_match(sim: np.ndarray, *, min_sim: float) -> list[tuple[int, int, float]]:
    """Pairs (i, j, similarity), best first: take the most similar free pair until none left
    reaches ``min_sim``. Ties keep the lower (i, j)."""
    if sim.size == 0:
        return []
    order = np.argsort(-sim, axis=None, kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for flat in order:
        i, j = divmod(int(flat), sim.shape[1])
        s = float(sim[i, j])
        if not s >= min_sim:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((i, j, s))
    return pairs


def agreement(a_frames: Sequence[Sequence[dict]], b_frames: Sequence[Sequence[dict]], *,
              by: Match = "oks", min_sim: float = 0.5) -> dict[str, Any]:  # fmt: skip
    """How far two programs' persons agree over the frames both have, in frame pixels."""
    frames = min(len(a_frames), len(b_frames))
    dist: list[np.ndarray] = []  # per matched person: (K,) keypoint distances
    confident: list[np.ndarray] = []
    sims, ious, score_diffs = [], [], []
    matched = unmatched_a = unmatched_b = 0
    for fa, fb in zip(a_frames[:frames], b_frames[:frames]):
        ab, asc, ak = as_arrays(fa)
        bb, bsc, bk = as_arrays(fb)
        pairs = greedy_match(similarity(ab, ak, bb, bk, by=by), min_sim=min_sim)
        matched += len(pairs)
        unmatched_a += len(ab) - len(pairs)
        unmatched_b += len(bb) - len(pairs)
        if pairs:
            from rtpose.geometry import box_iou

            ia, ib, s = (np.array(v) for v in zip(*pairs))
            d = np.linalg.norm(ak[ia, :, :2] - bk[ib, :, :2], axis=-1)  # (P, K)
            dist.append(d)
            both = (ak[ia, :, 2] >= CONFIDENT) & (bk[ib, :, 2] >= CONFIDENT)
            confident.append(d[both])
            sims.append(s)
            ious.append(np.diag(box_iou(ab[ia], bb[ib])))
            score_diffs.append(np.abs(asc[ia] - bsc[ib]))
    all_d = np.concatenate([d.ravel() for d in dist]) if dist else np.zeros(0)
    conf_d = np.concatenate(confident) if confident else np.zeros(0)
    return {
        "match": f"greedy by {by.upper()} >= {min_sim}",
        "frames": frames,
        "frames_only_in_one": abs(len(a_frames) - len(b_frames)),
        "matched": matched,
        "unmatched_a": unmatched_a,
        "unmatched_b": unmatched_b,
        "kpt_px": _dist_stats(all_d),
        f"kpt_px_score_ge_{CONFIDENT}": _dist_stats(conf_d),
        "similarity_mean": _mean(np.concatenate(sims)) if sims else None,
        "box_iou_mean": _mean(np.concatenate(ious)) if ious else None,
        "score_abs_diff_mean": _mean(np.concatenate(score_diffs)) if score_diffs else None,
    }


def _dist_stats(d: np.ndarray) -> dict[str, Any]:
    if d.size == 0:
        return {"keypoints": 0, "mean": None, "p50": None, "p95": None, "max": None}
    p50, p95 = np.percentile(d, [50, 95])
    return {"keypoints": int(d.size), "mean": _mean(d), "p50": round(float(p50), 4),
            "p95": round(float(p95), 4), "max": round(float(d.max()), 4)}  # fmt: skip


def _mean(x: np.ndarray) -> float:
    return round(float(np.mean(x)), 4)


# --------------------------------------------------------------------------- summary


def summarize(runs: Sequence[dict]) -> dict[str, Any]:
    """Median / min / max FPS of a program's successful runs, and its mean persons per frame."""
    ok = [r for r in runs if "fps" in r]
    if not ok:
        return {"fps_median": None, "fps_min": None, "fps_max": None, "runs_ok": 0}
    fps = [r["fps"] for r in ok]
    persons = [len(p) for p in ok[0]["persons"]]
    return {
        "fps_median": round(float(np.median(fps)), 3),
        "fps_min": round(float(min(fps)), 3),
        "fps_max": round(float(max(fps)), 3),
        "runs_ok": len(ok),
        "persons_per_frame": round(float(np.mean(persons)), 3) if persons else 0.0,
    }


def with_ratios(programs: list[dict], reference: str = REFERENCE) -> list[dict]:
    """Each program entry with ``ratio_to_rtpose`` = its median FPS / the reference's (None
    when either has none)."""
    ref = next((p for p in programs if p["name"] == reference), None)
    ref_fps = ref.get("fps_median") if ref else None
    out = []
    for p in programs:
        fps = p.get("fps_median")
        ratio = round(fps / ref_fps, 4) if fps and ref_fps else None
        out.append({**p, "ratio_to_rtpose": ratio})
    return out


def agreements(entries: Sequence[dict], persons: dict[str, list], *, by: Match,
               min_sim: float) -> list[dict]:  # fmt: skip
    """Pairs of programs that ran the same weights and both produced keypoints: every pair of
    rtpose, ultralytics-pt and ultralytics-onnx, and each rtpose variant against rtpose."""
    same = [e for e in entries if e.get("weights") and e["name"] in persons]
    out = []
    for i, a in enumerate(same):
        for b in same[i + 1 :]:
            base = a["name"] in BASE_PROGRAMS and b["name"] in BASE_PROGRAMS
            if a["weights"] != b["weights"] or not (base or REFERENCE in (a["name"], b["name"])):
                continue
            stats = agreement(persons[a["name"]], persons[b["name"]], by=by, min_sim=min_sim)
            out.append({"a": a["name"], "b": b["name"], **stats})
    return out


def format_summary(report: dict) -> str:
    """The printed table of a report."""
    cfg = report["config"]
    lines = [
        f"compare_cpu: {report['video']['name']}, {cfg['frames_run']} frames "
        f"({cfg['warmup']} warm-up not timed), {cfg['rounds']} round(s), "
        f"{report['machine']['usable_cores']} usable cores ({report['machine']['cpu']})",
        f"  {'program':<22} {'status':<8} {'FPS med':>8} {'range':>15} {'x rtpose':>9} "
        f"{'persons':>8}  input",
    ]
    for p in report["programs"]:
        if p["status"] != "ok":
            lines.append(f"  {p['name']:<22} {p['status']:<8} {p.get('reason', '')}")
            continue
        rng = f"{p['fps_min']:.2f}-{p['fps_max']:.2f}"
        ratio = f"{p['ratio_to_rtpose']:.2f}" if p.get("ratio_to_rtpose") else "-"
        shape = p.get("settings", {}).get("network_input_shape")
        lines.append(
            f"  {p['name']:<22} {'ok':<8} {p['fps_median']:>8.2f} {rng:>15} {ratio:>9} "
            f"{p['persons_per_frame']:>8.2f}  {'x'.join(map(str, shape[2:])) if shape else '?'}"
        )
    if report["agreement"]:
        first = report["agreement"][0]
        lines.append(f"  keypoint agreement ({first['match']}; frame pixels, all keypoints):")
        lines.append(
            f"  {'a vs b':<40} {'frames':>6} {'matched':>7} {'unm a/b':>8} {'mean px':>8} "
            f"{'p95 px':>7} {'max px':>7} {'sim':>6}"
        )
        for a in report["agreement"]:
            k = a["kpt_px"]
            pair = f"{a['a']} vs {a['b']}"
            sim = f"{a['similarity_mean']:.4f}" if a["similarity_mean"] is not None else "-"
            lines.append(
                f"  {pair:<40} {a['frames']:>6} {a['matched']:>7} "
                f"{a['unmatched_a']:>3}/{a['unmatched_b']:<4} {_px(k['mean']):>8} "
                f"{_px(k['p95']):>7} {_px(k['max']):>7} {sim:>6}"
            )
    lines += [f"  note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def _px(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def load_average() -> float | None:
    """1-minute load average (other processes slow a CPU run: the report says how busy)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def default_out(date: str, usable_cores: int) -> Path:
    return HERE / "results" / f"{date}-cpu{usable_cores}-compare.json"


def write_report(report: dict, path: Path) -> Path:
    from rtpose._io import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(report, indent=2) + "\n")


# --------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="rtpose against its CPU peers (ultralytics .pt / ONNX, rtmlib) on the same "
        "video, each run in its own process, alternating for several rounds: FPS, ratio to "
        "rtpose, keypoint agreement. Writes JSON to benchmarks/results/.",
        epilog="Set the peers up first (minutes, once): .venv/bin/python "
        "benchmarks/peers/setup.py (or pass --setup).",
    )
    parser.add_argument("--video", default=None, help="video file (default: the demo video)")
    parser.add_argument(
        "--frames", type=_positive, default=None, help="run the first N frames only (default: all)"
    )
    parser.add_argument(
        "--warmup",
        type=_non_negative,
        default=5,
        help="frames run before the clock starts (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=3,
        help="rounds of alternating runs (default: %(default)s)",
    )
    parser.add_argument(
        "--programs",
        type=_names(BASE_PROGRAMS),
        default=list(BASE_PROGRAMS),
        help=f"comma-separated subset of {','.join(BASE_PROGRAMS)} (default: all)",
    )
    parser.add_argument(
        "--rtpose-variants",
        type=_names(tuple(RTPOSE_VARIANTS)),
        default=[],
        help=f"extra rtpose programs, comma-separated: {','.join(RTPOSE_VARIANTS)}",
    )
    parser.add_argument(
        "--venv-dir",
        type=Path,
        default=None,
        help="peers folder of benchmarks/peers/setup.py (default: $RTPOSE_HOME/peers)",
    )
    parser.add_argument(
        "--setup",
        action="store_true",
        help="run benchmarks/peers/setup.py first when a peer is not set up",
    )
    parser.add_argument(
        "--rtmlib-model",
        type=Path,
        default=None,
        help="RTMO (or RTMPose, with --rtmlib-det) ONNX file for rtmlib",
    )
    parser.add_argument(
        "--rtmlib-det",
        type=Path,
        default=None,
        help="YOLOX ONNX file: run rtmlib top-down (YOLOX + RTMPose)",
    )
    parser.add_argument(
        "--match",
        choices=("oks", "iou"),
        default="oks",
        help="how persons are matched across programs (default: %(default)s)",
    )
    parser.add_argument(
        "--min-sim",
        type=float,
        default=0.5,
        help="least OKS / IoU of a matched pair (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=1800,
        help="seconds one run may take (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON to write (default: benchmarks/results/<date>-cpu<N>-compare.json)",
    )
    args = parser.parse_args(argv)
    if not 0.0 < args.min_sim <= 1.0:
        parser.error(f"--min-sim must be in (0, 1], got {args.min_sim}")
    if args.frames is not None and args.frames <= args.warmup:
        parser.error(f"--frames ({args.frames}) must be more than --warmup ({args.warmup})")
    if args.rtmlib_det is not None and args.rtmlib_model is None:
        parser.error("--rtmlib-det needs --rtmlib-model (the RTMPose ONNX file)")
    if REFERENCE not in args.programs:
        log("rtpose is not among --programs: no ratio to rtpose will be reported")
    return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _names(choices: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown name(s) {', '.join(unknown)}; choose from {', '.join(choices)}"
            )
        return list(dict.fromkeys(names))

    return parse


def ensure_setup(peers_dir: Path, programs: Sequence[str], *, setup: bool) -> dict:
    """The manifest of ``peers_dir``; with ``setup``, setup.py runs first for the chosen peers
    not set up yet. Without it a missing ultralytics venv is an error (a missing rtmlib venv
    makes that peer skipped, with the hint)."""
    manifest = read_manifest(peers_dir)
    wanted = {"ultralytics"} if any(p.startswith("ultralytics") for p in programs) else set()
    wanted |= {"rtmlib"} if "rtmlib" in programs else set()
    missing = sorted(w for w in wanted if w not in manifest)
    if missing and setup:
        log(f"setting up {', '.join(missing)} in {peers_dir} (benchmarks/peers/setup.py)")
        cmd = [sys.executable, str(PEERS_DIR / "setup.py"), "--venv-dir", str(peers_dir)]
        subprocess.run([*cmd, "--peers", ",".join(missing)], check=True)
        manifest = read_manifest(peers_dir)
    elif "ultralytics" in missing:
        raise SystemExit(
            f"error: the ultralytics peer venv is not set up in {peers_dir}: run "
            f"`{sys.executable} {PEERS_DIR / 'setup.py'} --venv-dir {peers_dir}` (minutes, "
            "once), pass --setup, or leave the ultralytics programs out with --programs"
        )
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    from rtpose.assets import require_asset
    from rtpose.bench.run import machine_info, versions

    args = parse_args(argv)
    video = Path(args.video) if args.video else Path(require_asset("demo.mp4"))
    if not video.is_file():
        raise SystemExit(f"error: video not found: {video}")
    peers_dir = (args.venv_dir or default_peers_dir()).expanduser().resolve()
    manifest = ensure_setup(peers_dir, args.programs, setup=args.setup)
    peers = peer_programs(manifest, peers_dir, rtmlib_pose=args.rtmlib_model,
                          rtmlib_det=args.rtmlib_det)  # fmt: skip
    programs = select_programs(args.programs, args.rtpose_variants, peers)
    for p in programs:
        if p.skip:
            log(f"{p.name}: skipped: {p.skip}")

    load_before = load_average()
    runs: dict[str, list[dict]] = {p.name: [] for p in programs}
    with tempfile.TemporaryDirectory(prefix="rtpose-compare-") as tmp:
        for r in range(args.rounds):
            for p in rotation(programs, r):
                if p.skip:
                    continue  # skipped by a runner in an earlier round
                log(f"round {r + 1}/{args.rounds}: {p.name} ...")
                res = run_program(p, video=str(video), frames=args.frames, warmup=args.warmup,
                                  timeout=args.timeout, scratch=Path(tmp), tag=f"r{r}")  # fmt: skip
                if "skipped" in res:
                    programs = [replace(q, skip=res["skipped"]) if q is p else q for q in programs]
                    log(f"{p.name}: skipped: {res['skipped']}")
                elif "error" in res:
                    log(f"{p.name}: FAILED: {res['error']}")
                else:
                    log(f"{p.name}: {res['fps']:.2f} FPS ({res['timed_frames']} timed frames)")
                if "skipped" not in res:
                    runs[p.name].append({"round": r + 1, **res})
    report = build_report(args, video, programs, runs, manifest=manifest,
                          machine={**machine_info(), "load_average_1m": [load_before,
                                                                          load_average()]},
                          rtpose_versions=versions())  # fmt: skip
    print(format_summary(report))
    out = args.out or default_out(report["date"], report["machine"]["usable_cores"])
    write_report(report, out)
    print(f"wrote {out}")
    if not any(p["status"] == "ok" for p in report["programs"]):
        raise SystemExit("error: no program ran")


def build_report(args: argparse.Namespace, video: Path, programs: Sequence[Program],
                 runs: dict[str, list[dict]], *, manifest: dict, machine: dict,
                 rtpose_versions: dict) -> dict:  # fmt: skip
    """The JSON report: config, machine, versions, per-program FPS and ratio, agreement."""
    entries: list[dict] = []
    persons: dict[str, list] = {}
    frames_run = None
    for p in programs:
        entry: dict[str, Any] = {"name": p.name, "weights": p.weights}
        ok = [r for r in runs.get(p.name, []) if "fps" in r]
        if p.skip:
            entry.update(status="skipped", reason=p.skip)
        elif not ok:
            errors = [r.get("error", "?") for r in runs.get(p.name, [])]
            entry.update(status="failed", reason=errors[0] if errors else "did not run")
        else:
            entry.update(status="ok", **summarize(ok))
            first = ok[0]
            persons[p.name] = first["persons"]
            frames_run = frames_run or first["frames"]
            entry.update(
                settings=first["settings"], versions=first["versions"],
                runs=[{k: r.get(k) for k in ("round", "fps", "timed_frames", "timed_s",
                                             "run_s", "load_s", "wall_s", "error")}
                      for r in runs[p.name]],
            )  # fmt: skip
        entries.append(entry)
    entries = with_ratios(entries)
    shapes = {e["name"]: e["settings"].get("network_input_shape")
              for e in entries if e["status"] == "ok"}  # fmt: skip
    return {
        "benchmark": "compare_cpu",
        "date": dt.date.today().isoformat(),
        "video": {"name": video.name, "path": str(video)},
        "config": {
            "frames": args.frames,
            "frames_run": frames_run,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "order": "round-robin, rotated by one program per round",
            "match": args.match,
            "min_sim": args.min_sim,
        },
        "timed": TIMED,
        "machine": machine,
        "versions": {
            "orchestrator": rtpose_versions,
            "peers_setup": {k: v.get("versions") for k, v in manifest.items()},
        },
        "programs": entries,
        "agreement": agreements(entries, persons, by=args.match, min_sim=args.min_sim),
        "network_input_shapes": shapes,
        "notes": [LETTERBOX_NOTE, THREADS_NOTE],
    }


if __name__ == "__main__":
    main()
