"""`rtpose-webcam` as a user runs it: a file played as a live source, headless; Ctrl-C; no GUI."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtpose.cli.webcam import main

SECOND = re.compile(
    r"^t=(?P<t>[\d.]+)s frames=(?P<frames>\d+) fps=(?P<fps>[\d.]+) "
    r"latency_p50_ms=(?P<p50>[\d.]+) latency_p99_ms=(?P<p99>[\d.]+) dropped=(?P<dropped>\d+) "
    r"people=(?P<people>[\d.]+)$"
)
SUMMARY = re.compile(r"^summary: frames=(?P<frames>\d+) .* stopped_by=(?P<reason>\S+)$")


def _webcam(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rtpose.cli.webcam", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


@pytest.mark.slow
def test_headless_file_as_live_source_prints_seconds_and_summary(sample_video, default_weights):
    proc = _webcam("--source", str(sample_video), "--headless", "--max-seconds", "2.5")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    lines = out.strip().splitlines()
    seconds = [m for m in map(SECOND.match, lines) if m]
    assert len(seconds) >= 2, out
    for m in seconds:
        assert int(m["frames"]) > 0 and float(m["fps"]) > 0
        assert float(m["p99"]) >= float(m["p50"]) > 0
    # the demo shows one or two people; the tracker keeps them (mean over a second)
    assert any(float(m["people"]) >= 1 for m in seconds)
    summary = SUMMARY.match(lines[-1])
    assert summary is not None, out
    assert summary["reason"] == "--max-seconds"
    assert int(summary["frames"]) >= sum(int(m["frames"]) for m in seconds)
    assert "Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_a_summary(sample_video, default_weights):
    proc = _webcam("--source", str(sample_video), "--headless")
    first = proc.stdout.readline()  # the first per-second line: the stream is running
    assert SECOND.match(first.strip()), first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)  # threads stopped, or the process would hang
    assert proc.returncode == 0, err
    summary = SUMMARY.match(out.strip().splitlines()[-1])
    assert summary is not None and summary["reason"] == "Ctrl-C", out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_window_mode_without_a_display_says_use_headless(capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["--source", "whatever.mp4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--headless" in err[0]


def test_window_mode_with_headless_opencv_says_install_opencv_python(capsys, monkeypatch):
    import cv2

    gui = re.search(r"GUI:\s*(\S+)", cv2.getBuildInformation())
    if gui is None or gui[1].upper() != "NONE":
        pytest.skip("this OpenCV has a GUI backend")
    monkeypatch.setenv("DISPLAY", ":99")
    assert main(["--source", "whatever.mp4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "no GUI" in err[0] and "--headless" in err[0] and "pip install opencv-python" in err[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--headless", "--max-seconds", "0"],
        ["--headless", "--device", "x"],
        ["--headless", "--device", "0", "--source", "a.mp4"],
        ["--headless", "--backend", "nope"],
    ],
)
def test_bad_arguments_exit_2_without_traceback(args):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "rtpose.cli.webcam", *args],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert "error:" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert time.perf_counter() - start < 30  # refused before any model is loaded


def test_missing_file_one_line_exit_1(tmp_path, capsys):
    assert main(["--headless", "--source", str(tmp_path / "missing.mp4")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.mp4" in err[0]


def test_entry_point_is_declared():
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert 'rtpose-webcam = "rtpose.cli.webcam:main"' in text
