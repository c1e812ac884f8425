"""Every bad input of the foundation issue, through the API and through the CLI.

API: a clear exception of the documented type. CLI: one ``rtpose: error:`` line, exit status 1,
no traceback, and no output file left behind (not even a partial one).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import rtpose
from rtpose.errors import CheckpointError, DecodeError, UnknownModelError


def _zero_frame_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    writer.release()  # a valid AVI container holding no frames
    return path


def _make(kind: str, d: Path, sample: Path) -> tuple[Path, Path | None]:
    """(video, weights) for one kind of bad input; weights None means the default weights."""
    data = sample.read_bytes()
    if kind == "missing-file":
        return d / "missing.mp4", None
    if kind == "directory":
        return d, None
    if kind == "not-a-video":
        (d / "notes.mp4").write_text("hello\n" * 200)
        return d / "notes.mp4", None
    if kind == "truncated":
        (d / "cut.mp4").write_bytes(data[: len(data) * 6 // 10])
        return d / "cut.mp4", None
    if kind == "corrupt":
        noise = np.random.default_rng(0).bytes(64 * 1024)
        mid = len(data) // 2
        (d / "corrupt.mp4").write_bytes(data[:mid] + noise + data[mid + len(noise) :])
        return d / "corrupt.mp4", None
    if kind == "zero-frames":
        return _zero_frame_video(d / "zero.avi"), None
    if kind == "corrupt-checkpoint":
        (d / "w.pt").write_bytes(np.random.default_rng(1).bytes(10_000))
        return sample, d / "w.pt"
    if kind == "wrong-checkpoint":
        torch.save({"state_dict": {"conv.weight": torch.zeros(8, 3, 3, 3)}}, d / "resnet.pt")
        return sample, d / "resnet.pt"
    raise AssertionError(kind)


# kind -> (API exception, text the message must contain)
CASES = {
    "missing-file": (FileNotFoundError, "does not exist"),
    "directory": (IsADirectoryError, "is a directory"),
    "not-a-video": (DecodeError, "text file"),
    "truncated": (DecodeError, "truncated or corrupt"),
    "corrupt": (DecodeError, "truncated or corrupt"),
    "zero-frames": (DecodeError, "contains no frames"),
    "corrupt-checkpoint": (CheckpointError, "not a torch checkpoint"),
    "wrong-checkpoint": (CheckpointError, "not an ultralytics YOLO model checkpoint"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_api_raises_a_clear_exception(kind, tmp_path, sample_video):
    video, weights = _make(kind, tmp_path, sample_video)
    exc_type, text = CASES[kind]
    # the error comes from the constructor or while iterating, depending on the input
    with pytest.raises(exc_type, match=text), rtpose.VideoPoseStream(video, weights=weights) as s:
        for _ in s:
            pass


def test_api_unknown_model(sample_video):
    with pytest.raises(UnknownModelError, match="unknown model 'yolo-nope'"):
        rtpose.VideoPoseStream(sample_video, model="yolo-nope")


@pytest.mark.slow
@pytest.mark.parametrize("kind", [*CASES, "unknown-model"])
def test_cli_prints_one_line_and_leaves_no_output(kind, tmp_path, sample_video):
    inputs = tmp_path / "in"
    inputs.mkdir()
    if kind == "unknown-model":
        video, weights, extra, text = sample_video, None, ["--model", "yolo-nope"], "unknown model"
    else:
        video, weights = _make(kind, inputs, sample_video)
        extra, text = [], CASES[kind][1]
    if weights is not None:
        extra += ["--weights", str(weights)]
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "rtpose.cli.main", "run", str(video), "--no-progress",
         "--out", str(out / "a.mp4"), "--jsonl", str(out / "p.jsonl"), *extra],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("rtpose: error:")]
    assert len(errors) == 1 and text in errors[0], result.stderr
    assert not out.exists() or list(out.iterdir()) == []
