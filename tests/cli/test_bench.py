"""`rtpose bench`: a tiny configuration end to end (JSON schema, sane numbers); argument errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rtpose.cli.main import main


@pytest.mark.slow
def test_tiny_bench_writes_json_with_sane_numbers(tmp_path, capsys, sample_video, default_weights):
    out = tmp_path / "bench.json"
    code = main(["bench", "--people", "1,2", "--frames", "3", "--warmup", "1",
                 "--backend", "onnxruntime", "--json", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "rtpose bench"
    assert {"cpu", "cores", "gpu", "os"} <= set(report["machine"])
    assert report["machine"]["cores"] >= 1
    assert {"rtpose", "numpy", "onnxruntime", "torch", "opencv", "dali"} <= set(report["versions"])
    cfg = report["config"]
    assert cfg["model"] == "yolo11n-pose" and cfg["people"] == [1, 2] and cfg["frames"] == 3
    assert report["random_weights"] is False and "note" not in report
    assert [(r["people"], r["streams"]) for r in report["results"]] == [(1, 1), (2, 1)]
    for r in report["results"]:
        assert r["backend"] == "onnxruntime"
        assert r["frames"] == 3  # measured frames: warm-up excluded
        assert r["fps"] > 0
        assert r["latency_ms"]["p99"] >= r["latency_ms"]["p50"] > 0
        assert {"decode", "preprocess", "model", "postprocess"} <= set(r["stages_p50_ms"])
        # the model stage is part of what latency measures
        assert r["latency_ms"]["p50"] >= r["stages_p50_ms"]["model"]
        # crowd scenes hold exactly this many clearly visible people (tests/bench/test_synthetic)
        assert r["persons_per_frame"]["min"] == r["people"] == r["persons_per_frame"]["max"]
        assert r["dropped"] == 0  # offline sources never drop
    assert report["scaling"]["streams=1"]["people"] == [1, 2]
    table = capsys.readouterr().out
    assert "lat p50" in table and "FPS" in table and f"wrote {out}" in table


@pytest.mark.slow
def test_two_streams_count_the_frames_of_both(tmp_path, sample_video, default_weights):
    out = tmp_path / "bench.json"
    assert main(["bench", "--people", "1", "--streams", "2", "--frames", "2", "--warmup", "1",
                 "--json", str(out), "--no-progress"]) == 0  # fmt: skip
    (r,) = json.loads(out.read_text())["results"]
    assert r["streams"] == 2 and r["frames"] == 4 and r["fps"] > 0


@pytest.mark.slow
def test_random_weights_top_down_is_labelled(tmp_path, capsys, sample_video, default_weights):
    pytest.importorskip("torch")
    out = tmp_path / "td.json"
    args = ["bench", "--model", "rsn18", "--weights", "random", "--people", "2", "--frames", "2",
            "--warmup", "1", "--json", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["random_weights"] is True and "RANDOM-INIT" in report["note"]
    assert report["config"]["weights"].startswith("random")
    (r,) = report["results"]
    assert {"detect", "pose"} <= set(r["stages_p50_ms"])
    assert r["persons_per_frame"]["min"] == 2  # the detector is trained: it finds both
    assert "RANDOM-INIT" in capsys.readouterr().out


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtpose.cli.main", "bench", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--people", "1,x"], "comma-separated integers"),
        (["--people", "0"], ">= 1"),
        (["--frames", "0"], ">= 1"),
        (["--device", "tpu"], "invalid choice"),
        (["--backend", "nope"], "invalid choice"),
    ],
)
def test_bad_arguments_one_line_exit_2(args, message):
    result = _bench(*args)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("rtpose bench: error:") and message in last
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weights", "random"], "--weights random is for top-down models"),
        (["--model", "rsn18"], "--weights random"),
        (["--model", "nope"], "nope"),
        (["--json", "out.txt"], ".json"),
    ],
)
def test_refused_configurations_one_line_exit_1(capsys, args, message):
    assert main(["bench", "--no-progress", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
