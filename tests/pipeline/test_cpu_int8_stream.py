"""precision="int8" on the CPU: the stream runs the gated int8 model, built on first use into
``$RTPOSE_HOME/engines`` and reused after, with keypoints close to fp32's (slow: one build)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import rtpose
from rtpose.assets import rtpose_home
from rtpose.deploy.accuracy import match_detections
from rtpose.video import ArraySource

pytest.importorskip("onnxruntime.quantization")


@pytest.mark.slow
def test_int8_stream_matches_fp32_and_reuses_its_model(sample_video, default_weights):
    cap = cv2.VideoCapture(str(sample_video))
    frames = [cap.read()[1] for _ in range(10)]
    cap.release()
    runs = {}
    for precision in ("fp32", "int8"):
        with rtpose.VideoPoseStream(ArraySource(frames), backend="onnxruntime",
                                    precision=precision, pipelined=False) as stream:  # fmt: skip
            runs[precision] = [f.persons for f in stream]
    models = sorted((rtpose_home() / "engines").glob("yolo11n-pose-int8-cpu-*.onnx"))
    assert len(models) == 1 and models[0].with_suffix(".json").is_file()
    errors, matched, total = [], 0, 0
    for ref, got in zip(runs["fp32"], runs["int8"]):
        confident = [p for p in ref if p.score > 0.5]
        total += len(confident)
        pairs = match_detections(np.array([p.box for p in confident]).reshape(-1, 4),
                                 np.array([p.box for p in got]).reshape(-1, 4))  # fmt: skip
        matched += len(pairs)
        for i, j in pairs:
            a, b = confident[i].keypoints, got[j].keypoints
            seen = a[:, 2] > 0.5
            errors.extend(np.linalg.norm(a[seen, :2] - b[seen, :2], axis=1))
    # every confident fp32 person is found; keypoints in 1768x994 frame pixels (2.76 px per
    # network pixel): measured mean 2.5 px over 170 keypoints
    assert total >= 10 and matched == total
    assert np.mean(errors) < 10.0
    stamp = models[0].stat().st_mtime_ns
    with rtpose.PoseEstimator(backend="onnxruntime", precision="int8") as again:
        assert len(again(frames[0])) >= 1
    assert models[0].stat().st_mtime_ns == stamp  # reused, not rebuilt
