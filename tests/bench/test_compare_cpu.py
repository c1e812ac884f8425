"""benchmarks/compare_cpu.py without running a program: argument parsing, the program list,
the round order, OKS / greedy person matching and the agreement statistics on synthetic
keypoints, the FPS summary and ratio, and the JSON report with a skipped peer. No venv is
created and no video is run."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


cc = _load("compare_cpu", ROOT / "benchmarks" / "compare_cpu.py")
protocol = _load("peer_protocol", ROOT / "benchmarks" / "peers" / "peer_protocol.py")


def person(x0: float, y0: float, *, w: float = 100.0, h: float = 200.0, score: float = 0.9):
    """A synthetic person: 17 keypoints spread over its box, all with ``score``."""
    kpts = [[x0 + w * (i % 4) / 3, y0 + h * (i // 4) / 4, score] for i in range(17)]
    return {"box": [x0, y0, x0 + w, y0 + h], "score": score, "keypoints": kpts}


def shifted(p: dict, dx: float, dy: float) -> dict:
    return {
        "box": [p["box"][0] + dx, p["box"][1] + dy, p["box"][2] + dx, p["box"][3] + dy],
        "score": p["score"],
        "keypoints": [[x + dx, y + dy, s] for x, y, s in p["keypoints"]],
    }


# --------------------------------------------------------------------------- arguments


def test_parse_args_defaults():
    args = cc.parse_args([])
    assert args.programs == ["rtpose", "ultralytics-pt", "ultralytics-onnx", "rtmlib"]
    assert (args.rounds, args.warmup, args.frames, args.match) == (3, 5, None, "oks")
    assert args.rtpose_variants == [] and args.out is None


def test_parse_args_subsets_and_variants():
    args = cc.parse_args(
        ["--programs", "rtpose, ultralytics-pt,rtpose", "--rtpose-variants", "sync,int8",
         "--frames", "30", "--rounds", "1", "--match", "iou", "--min-sim", "0.3"]
    )  # fmt: skip
    assert args.programs == ["rtpose", "ultralytics-pt"]  # de-duplicated, in the given order
    assert args.rtpose_variants == ["sync", "int8"]
    assert (args.frames, args.rounds, args.match, args.min_sim) == (30, 1, "iou", 0.3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--programs", "rtpose,yolov8"], "unknown name(s) yolov8"),
        (["--rtpose-variants", "fp64"], "unknown name(s) fp64"),
        (["--frames", "5"], "--frames (5) must be more than --warmup (5)"),
        (["--rounds", "0"], "expected an integer >= 1"),
        (["--min-sim", "1.5"], "--min-sim must be in (0, 1]"),
        (["--rtmlib-det", "yolox.onnx"], "--rtmlib-det needs --rtmlib-model"),
    ],
)
def test_parse_args_errors_name_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cc.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- programs


def test_every_rtpose_variant_is_one_program_with_its_options():
    for name, options in cc.RTPOSE_VARIANTS.items():
        p = cc.rtpose_program(name)
        assert p.name == f"rtpose-{name}" and p.runner == "run_rtpose.py"
        assert json.loads(p.args[p.args.index("--options") + 1]) == options
        assert p.weights == cc.YOLO_WEIGHTS and p.skip is None
    assert json.loads(cc.rtpose_program().args[-1]) == {}


def test_program_command_runs_the_runner_isolated(tmp_path):
    p = cc.rtpose_program()
    cmd = p.command(video="v.mp4", frames=30, warmup=5, out=tmp_path / "r.json")
    assert cmd[:3] == [sys.executable, "-I", str(ROOT / "benchmarks" / "peers" / "run_rtpose.py")]
    assert cmd[cmd.index("--frames") + 1] == "30" and cmd[cmd.index("--warmup") + 1] == "5"
    assert "--frames" not in p.command(video="v.mp4", frames=None, warmup=5, out=tmp_path)


def test_peers_without_setup_are_skipped_with_the_reason(tmp_path):
    peers = cc.peer_programs({}, tmp_path)
    for name in ("ultralytics-pt", "ultralytics-onnx"):
        assert "not set up" in peers[name].skip and "setup.py" in peers[name].skip
    assert "no rtmlib ONNX model" in peers["rtmlib"].skip


def test_peer_programs_from_a_manifest(tmp_path):
    models = tmp_path / "models" / "rtmlib"
    models.mkdir(parents=True)
    manifest = {
        "ultralytics": {"python": "/u/bin/python", "config_dir": str(tmp_path / "cfg"),
                        "weights": "/m/yolo11n-pose.pt",
                        "onnx_export": {"path": "/m/yolo11n-pose.onnx"}},
        "rtmlib": {"python": "/r/bin/python", "models_dir": str(models), "models_note": "none"},
    }  # fmt: skip
    peers = cc.peer_programs(manifest, tmp_path)
    assert (
        peers["ultralytics-pt"].skip is None
        and "/m/yolo11n-pose.pt" in peers["ultralytics-pt"].args
    )
    assert "/m/yolo11n-pose.onnx" in peers["ultralytics-onnx"].args
    assert peers["ultralytics-onnx"].env["YOLO_OFFLINE"] == "true"
    assert peers["ultralytics-onnx"].env["YOLO_AUTOINSTALL"] == "false"
    assert "none" in peers["rtmlib"].skip  # the venv is there, the model is not
    (models / "rtmo-s.onnx").write_bytes(b"")
    rtmlib = cc.peer_programs(manifest, tmp_path)["rtmlib"]
    assert rtmlib.skip is None and str(models / "rtmo-s.onnx") in rtmlib.args
    assert rtmlib.python == "/r/bin/python" and rtmlib.weights is None


def test_select_programs_orders_rtpose_peers_variants():
    peers = cc.peer_programs({}, Path("/nonexistent"))
    names = [p.name for p in cc.select_programs(["rtmlib", "rtpose"], ["sync"], peers)]
    assert names == ["rtpose", "rtmlib", "rtpose-sync"]


def test_rotation_alternates_and_leaves_out_skipped():
    progs = [cc.Program(n, "x.py") for n in "abc"] + [cc.Program("d", "x.py", skip="no")]
    orders = [[p.name for p in cc.rotation(progs, r)] for r in range(4)]
    assert orders == [list("abc"), list("bca"), list("cab"), list("abc")]
    assert cc.rotation([cc.Program("d", "x.py", skip="no")], 0) == []


# --------------------------------------------------------------------------- matching


def test_oks_similarity_of_identical_and_shifted_persons():
    p = person(0, 0)
    boxes, _, kpts = cc.as_arrays([p])
    assert cc.similarity(boxes, kpts, boxes, kpts)[0, 0] == pytest.approx(1.0)
    q = shifted(p, 3.0, 4.0)  # every keypoint 5 px away; same box area 100 * 200
    qb, _, qk = cc.as_arrays([q])
    from rtpose.skeletons import COCO17

    var = (2 * np.asarray(COCO17.sigmas)) ** 2
    expected = np.mean(np.exp(-25.0 / (2 * 20000.0 * var)))  # COCO's OKS
    assert cc.similarity(boxes, kpts, qb, qk)[0, 0] == pytest.approx(expected)
    iou = cc.similarity(boxes, kpts, qb, qk, by="iou")[0, 0]
    assert iou == pytest.approx((97 * 196) / (2 * 20000 - 97 * 196))
    assert cc.similarity(boxes, kpts, *cc.as_arrays([])[::2], by="oks").shape == (1, 0)
    with pytest.raises(ValueError, match="by must be 'oks' or 'iou'"):
        cc.similarity(boxes, kpts, qb, qk, by="l2")


def test_greedy_match_is_one_to_one_best_first_and_thresholded():
    sim = np.array([[0.9, 0.8, 0.0], [0.85, 0.2, 0.0], [0.0, 0.0, 0.4]])
    # 0-0 first (0.9); then row 1 can only take col 1 (0.2 < 0.5: no); row 2 col 2 is 0.4: no
    assert cc.greedy_match(sim, min_sim=0.5) == [(0, 0, 0.9)]
    assert cc.greedy_match(sim, min_sim=0.1) == [(0, 0, 0.9), (2, 2, 0.4), (1, 1, 0.2)]
    assert cc.greedy_match(np.zeros((0, 3)), min_sim=0.5) == []
    nan = np.array([[np.nan, 0.7]])
    assert cc.greedy_match(nan, min_sim=0.5) == [(0, 1, 0.7)]


def test_agreement_statistics_on_synthetic_frames():
    a1, a2 = person(0, 0), person(500, 0)
    a_frames = [[a1, a2], [a1], [], [a1]]
    # b: the same persons 5 px off, listed in the other order, plus one extra far away; and a
    # frame that a lacks
    b_frames = [
        [shifted(a2, 3, 4), shifted(a1, 3, 4), person(2000, 2000)],
        [shifted(a1, 0, 0)],
        [],
        [],
        [person(0, 0)],
    ]
    stats = cc.agreement(a_frames, b_frames)
    assert stats["frames"] == 4 and stats["frames_only_in_one"] == 1
    assert (stats["matched"], stats["unmatched_a"], stats["unmatched_b"]) == (3, 1, 1)
    k = stats["kpt_px"]
    assert k["keypoints"] == 3 * 17
    assert k["mean"] == pytest.approx((2 * 5.0 + 0.0) / 3, abs=1e-3)
    assert k["p95"] == pytest.approx(5.0) and k["max"] == pytest.approx(5.0)
    assert stats["kpt_px_score_ge_0.5"]["keypoints"] == 3 * 17
    assert stats["match"] == "greedy by OKS >= 0.5"
    assert 0.9 < stats["similarity_mean"] <= 1.0 and stats["score_abs_diff_mean"] == 0.0


def test_agreement_counts_low_score_keypoints_apart():
    a = person(0, 0, score=0.3)  # every keypoint below the 0.5 "confident" bar
    stats = cc.agreement([[a]], [[shifted(a, 1, 0)]])
    assert stats["kpt_px"]["mean"] == pytest.approx(1.0)
    assert stats["kpt_px_score_ge_0.5"] == {
        "keypoints": 0, "mean": None, "p50": None, "p95": None, "max": None
    }  # fmt: skip


def test_agreement_with_nobody_anywhere():
    stats = cc.agreement([[], []], [[], []])
    assert (stats["matched"], stats["unmatched_a"], stats["unmatched_b"]) == (0, 0, 0)
    assert stats["kpt_px"]["mean"] is None and stats["similarity_mean"] is None


# --------------------------------------------------------------------------- summary, report


def run(fps: float, persons=((),)) -> dict:
    return {"fps": fps, "persons": [list(p) for p in persons]}


def test_summarize_and_ratio_to_rtpose():
    s = cc.summarize([run(10.0, [[1, 2], [1]]), {"error": "exit 1"}, run(12.0), run(11.0)])
    assert (s["fps_median"], s["fps_min"], s["fps_max"], s["runs_ok"]) == (11.0, 10.0, 12.0, 3)
    assert s["persons_per_frame"] == 1.5  # from the first successful run
    assert cc.summarize([{"error": "x"}])["fps_median"] is None
    entries = cc.with_ratios(
        [{"name": "ultralytics-pt", "fps_median": 5.0}, {"name": "rtpose", "fps_median": 20.0},
         {"name": "rtmlib", "status": "skipped"}]
    )  # fmt: skip
    assert [e["ratio_to_rtpose"] for e in entries] == [0.25, 1.0, None]
    assert cc.with_ratios([{"name": "ultralytics-pt", "fps_median": 5.0}])[0][
        "ratio_to_rtpose"
    ] is None  # fmt: skip


def test_agreements_pair_same_weights_programs_only():
    entries = [
        {"name": n, "weights": cc.YOLO_WEIGHTS}
        for n in ("rtpose", "ultralytics-pt", "ultralytics-onnx", "rtpose-sync", "rtpose-int8")
    ]
    entries.append({"name": "rtmlib", "weights": None})  # fmt: skip
    persons = {e["name"]: [[person(0, 0)]] for e in entries}
    pairs = [(a["a"], a["b"]) for a in cc.agreements(entries, persons, by="oks", min_sim=0.5)]
    assert pairs == [
        ("rtpose", "ultralytics-pt"), ("rtpose", "ultralytics-onnx"), ("rtpose", "rtpose-sync"),
        ("rtpose", "rtpose-int8"), ("ultralytics-pt", "ultralytics-onnx"),
    ]  # fmt: skip


def result(program: str, fps: float, shape: list[int]) -> dict:
    return {
        "program": program, "fps": fps, "frames": 3, "timed_frames": 2, "timed_s": 2 / fps,
        "run_s": 1.0, "load_s": 0.5, "wall_s": 2.0,
        "persons": [[person(0, 0)], [person(10, 0)], []],
        "versions": {"x": "1"}, "settings": {"network_input_shape": shape},
    }  # fmt: skip


def test_report_json_with_a_skipped_peer(tmp_path):
    args = cc.parse_args(["--frames", "10", "--rounds", "2", "--programs",
                          "rtpose,ultralytics-pt,rtmlib"])  # fmt: skip
    programs = cc.select_programs(args.programs, [], cc.peer_programs({}, tmp_path))
    programs = [
        cc.Program(p.name, p.runner, weights=p.weights, skip=None if p.name != "rtmlib" else
                   "no rtmlib ONNX model: rtmlib ships no models")
        for p in programs
    ]  # fmt: skip
    runs = {
        "rtpose": [{"round": 1, **result("rtpose", 20.0, [1, 3, 384, 640])},
                   {"round": 2, **result("rtpose", 22.0, [1, 3, 384, 640])}],
        "ultralytics-pt": [{"round": 1, **result("ultralytics-pt", 5.0, [1, 3, 384, 640])},
                           {"round": 2, "error": "exit 1: boom"}],
        "rtmlib": [],
    }  # fmt: skip
    machine = {"cpu": "test cpu", "cores": 2, "usable_cores": 2, "gpu": None, "os": "x"}
    report = cc.build_report(args, Path("/v/demo.mp4"), programs, runs, manifest={},
                             machine=machine, rtpose_versions={"rtpose": "0"})  # fmt: skip
    out = cc.write_report(report, tmp_path / "sub" / "r.json")
    doc = json.loads(out.read_text())
    by_name = {p["name"]: p for p in doc["programs"]}
    assert by_name["rtmlib"] == {
        "name": "rtmlib", "weights": None, "status": "skipped",
        "reason": "no rtmlib ONNX model: rtmlib ships no models", "ratio_to_rtpose": None,
    }  # fmt: skip
    assert by_name["rtpose"]["fps_median"] == 21.0 and by_name["rtpose"]["ratio_to_rtpose"] == 1.0
    pt = by_name["ultralytics-pt"]
    assert pt["status"] == "ok" and pt["ratio_to_rtpose"] == pytest.approx(5.0 / 21.0, abs=1e-4)
    assert [r["error"] for r in pt["runs"]] == [None, "exit 1: boom"]
    (pair,) = doc["agreement"]
    assert (pair["a"], pair["b"], pair["matched"], pair["kpt_px"]["max"]) == (
        "rtpose", "ultralytics-pt", 2, 0.0,
    )  # fmt: skip
    assert doc["config"]["frames_run"] == 3 and doc["timed"] == cc.TIMED
    assert doc["network_input_shapes"] == {"rtpose": [1, 3, 384, 640],
                                           "ultralytics-pt": [1, 3, 384, 640]}  # fmt: skip
    text = cc.format_summary(doc)
    assert "rtmlib" in text and "skipped  no rtmlib ONNX model" in text
    assert "rtpose vs ultralytics-pt" in text and "21.00" in text


def test_default_out_names_the_date_and_cores():
    path = cc.default_out("2026-12-03", 2)
    assert path == ROOT / "benchmarks" / "results" / "2026-12-03-cpu2-compare.json"


# --------------------------------------------------------------------------- runner protocol


def test_measure_times_frames_after_the_warmup():
    frames = iter(range(10))

    def step():
        i = next(frames, None)
        return None if i is None else [{"i": i}]

    persons, timing = protocol.measure(step, frames=7, warmup=2)
    assert [p[0]["i"] for p in persons] == list(range(7))
    assert (timing["frames"], timing["timed_frames"], timing["warmup_frames"]) == (7, 5, 2)
    assert timing["fps"] > 0 and timing["run_s"] >= timing["timed_s"]
    with pytest.raises(SystemExit, match="more than --warmup"):
        protocol.measure(step, frames=2, warmup=2)
    short = iter(range(2))
    with pytest.raises(SystemExit, match="the video has 2 frames"):
        protocol.measure(lambda: [{}] if next(short, None) is not None else None,
                         frames=None, warmup=3)  # fmt: skip


def test_result_files_round_trip(tmp_path):
    p = protocol.person([1, 2, 3, 4], 0.91234, [[1.23456, 2.0, 0.5]])
    assert p == {"box": [1, 2, 3, 4], "score": 0.9123, "keypoints": [[1.235, 2.0, 0.5]]}
    protocol.write_skipped(tmp_path / "s.json", program="rtpose-x", reason="no GPU")
    assert json.loads((tmp_path / "s.json").read_text())["skipped"] == "no GPU"
    assert protocol.read_manifest(tmp_path) == {}


@pytest.mark.parametrize(
    "script",
    ["benchmarks/compare_cpu.py", "benchmarks/peers/setup.py", "tools/make_golden_yolo.py"],
)
def test_scripts_answer_help(script):
    done = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_parse_args_is_argparse():
    assert isinstance(cc.parse_args(["--rounds", "2"]), argparse.Namespace)
