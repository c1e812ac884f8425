"""`rtpose run` and `rtpose fetch` as a user runs them: exit codes, output files, messages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rtpose.backends.base import resolve_backend_name
from rtpose.cli.main import main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtpose.cli.main", *args], capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def test_help_lists_the_options():
    out = _run("run", "--help")
    assert out.returncode == 0
    for option in ("--out", "--jsonl", "--max-frames", "--model", "--backend", "yolo11n-pose"):
        assert option in out.stdout


def test_run_writes_video_jsonl_and_summary(sample_video, tmp_path, capsys):
    out, jsonl = tmp_path / "a.mp4", tmp_path / "p.jsonl"
    code = main(["run", str(sample_video), "--out", str(out), "--jsonl", str(jsonl),
                 "--max-frames", "4", "--no-progress"])  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2, 3]
    person = lines[0]["persons"][0]
    assert len(person["box"]) == 4 and len(person["keypoints"]) == 17
    assert set(lines[0]["timings_ms"]) == {
        "decode",
        "preprocess",
        "model",
        "postprocess",
        "latency",
    }
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()
    summary = capsys.readouterr().out
    assert "frames 4" in summary and "p50 ms" in summary and "model" in summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "p.jsonl"]


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda d: d / "missing.mp4", "does not exist"),
        (lambda d: d, "directory"),
        (lambda d: (d / "t.mp4").write_text("text") and d / "t.mp4", "t.mp4"),
    ],
)
def test_bad_video_one_line_nonzero_and_no_outputs(tmp_path, make_input, message):
    src = tmp_path / "in"
    src.mkdir()
    video = make_input(src)
    outdir = tmp_path / "out"
    result = _run("run", str(video), "--out", str(outdir / "a.mp4"), "--jsonl",
                  str(outdir / "p.jsonl"))  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("rtpose: error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stderr
    assert not outdir.exists() or not any(outdir.iterdir())


def test_truncated_video_leaves_no_output(sample_video, tmp_path):
    data = sample_video.read_bytes()
    video = tmp_path / "cut.mp4"
    video.write_bytes(data[: int(len(data) * 0.7)])
    result = _run("run", str(video), "--out", str(tmp_path / "a.mp4"), "--jsonl",
                  str(tmp_path / "p.jsonl"), "--no-progress")  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]


def test_unknown_model_is_one_line(sample_video):
    result = _run("run", str(sample_video), "--model", "nope")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("rtpose: error: unknown model 'nope'")


def test_engine_load_failure_is_one_line(monkeypatch, capsys):
    """An engine that cannot be loaded at run time (InferenceError) is an expected failure."""
    from rtpose.cli import main as cli_main
    from rtpose.errors import InferenceError

    def refuse(args):
        raise InferenceError("engine e.engine built by TensorRT 10.12 for SM80; rebuild it")

    monkeypatch.setattr(cli_main, "cmd_run", refuse)
    assert main(["run", "in.mp4"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "rtpose: error: engine e.engine built by TensorRT 10.12 for SM80; rebuild it"
    ]


def test_help_lists_the_top_down_options():
    out = _run("run", "--help")
    for option in ("--weights", "--detector", "--flip-test", "--no-flip-test", "rsn18"):
        assert option in out.stdout


def test_top_down_model_without_weights_is_one_line(sample_video, tmp_path, capsys):
    jsonl = tmp_path / "p.jsonl"
    code = main(["run", str(sample_video), "--model", "rsn18", "--jsonl", str(jsonl)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rtpose: error: rsn18 is a top-down model without bundled weights")
    assert list(tmp_path.iterdir()) == []


def test_top_down_options_refused_for_one_stage_models(sample_video, capsys):
    code = main(["run", str(sample_video), "--flip-test"])
    assert code == 1
    assert "only apply to top-down models" in capsys.readouterr().err


@pytest.mark.slow
def test_run_with_a_top_down_model(sample_video, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from rtpose.models import create_model

    weights = tmp_path / "rsn18.pth"
    torch.save(create_model("rsn18").state_dict(), weights)
    jsonl = tmp_path / "p.jsonl"
    code = main(["run", str(sample_video), "--model", "rsn18", "--weights", str(weights),
                 "--no-flip-test", "--max-frames", "2", "--jsonl", str(jsonl),
                 "--no-progress"])  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 2 and len(lines[0]["persons"][0]["keypoints"]) == 17
    assert set(lines[0]["timings_ms"]) == {
        "decode",
        "detect",
        "crop",
        "pose",
        "postprocess",
        "latency",
    }
    # the default backend="auto": on a CPU, the faster of ONNX Runtime and OpenVINO installed
    assert f"model rsn18 on {resolve_backend_name('auto')}" in capsys.readouterr().out


def test_run_with_tracking_writes_track_ids(sample_video, tmp_path, capsys):
    jsonl = tmp_path / "p.jsonl"
    code = main(["run", str(sample_video), "--jsonl", str(jsonl), "--max-frames", "3",
                 "--smooth", "--no-progress"])  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    ids = [[p["track_id"] for p in line["persons"]] for line in lines]
    assert ids[0] and all(isinstance(i, int) for frame in ids for i in frame)
    assert ids[0] == ids[1] == ids[2]  # the same people, the same IDs
    assert "track" in lines[0]["timings_ms"]
    assert "track" in capsys.readouterr().out


def test_run_refuses_detect_every_for_one_stage_models(sample_video, capsys):
    code = main(["run", str(sample_video), "--detect-every", "3", "--no-progress"])
    assert code == 1
    assert "only applies to top-down models" in capsys.readouterr().err


@pytest.mark.slow
def test_run_int8_on_the_cpu_and_fp16_refused(sample_video, tmp_path, capsys):
    """The README's `rtpose run ... --precision int8` (the int8 model is built on first use)."""
    pytest.importorskip("onnxruntime.quantization")
    jsonl = tmp_path / "p.jsonl"
    code = main(["run", str(sample_video), "--max-frames", "3", "--precision", "int8",
                 "--jsonl", str(jsonl), "--no-progress"])  # fmt: skip
    assert code == 0
    assert "model yolo11n-pose on onnxruntime int8" in capsys.readouterr().out
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 3 and lines[0]["persons"]
    code = main(["run", str(sample_video), "--max-frames", "1", "--precision", "fp16",
                 "--backend", "onnxruntime", "--no-progress"])  # fmt: skip
    assert code == 1
    assert "fp16 is not faster than fp32" in capsys.readouterr().err
