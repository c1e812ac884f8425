"""The GPU-resident path (runs only on a GPU machine): frames in GPU memory, crops from the warp
kernel, the network on the GPU (torch CUDA backend here; TensorRT where installed), heatmaps
decoded by the kernel, and only keypoints crossing to the host; same poses as the CPU path.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import rtpose
from rtpose.cuda.arrays import transfers
from rtpose.video import ArraySource

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def frames(sample_video):
    cap = cv2.VideoCapture(str(sample_video))
    out = []
    while len(out) < 8:
        ok, image = cap.read()
        assert ok
        out.append(image)
    cap.release()
    return out


def _run(source, **kwargs):
    with rtpose.VideoPoseStream(source, **kwargs) as stream:
        return list(stream)


@pytest.mark.parametrize("pipelined", [True, False])
def test_gpu_frames_give_the_cpu_poses_and_no_frame_reaches_the_host(
    frames, default_weights, pipelined, cupy
):
    cp = cupy
    pytest.importorskip("torch")
    gpu_frames = [cp.asarray(f) for f in frames]
    cpu = _run(ArraySource(frames), backend="onnxruntime", pipelined=pipelined)
    transfers.reset()
    gpu = _run(ArraySource(gpu_frames), backend="torch", pipelined=pipelined)
    frame_bytes = frames[0].nbytes
    # only candidates and keypoints come back: far less than one frame per copy
    assert transfers.largest["d2h"] < frame_bytes / 100, transfers.largest
    assert transfers.largest["h2d"] < frame_bytes / 100, transfers.largest
    for c, g in zip(cpu, gpu, strict=True):
        assert len(c.persons) == len(g.persons)
        for p, q in zip(c.persons, g.persons):
            # fp32 convolutions on cuDNN vs ONNX Runtime's CPU kernels
            np.testing.assert_allclose(p.keypoints[:, :2], q.keypoints[:, :2], atol=1.0)


def test_top_down_on_gpu_frames_matches_the_cpu_path(frames, default_weights, tmp_path, cupy):
    cp = cupy
    torch = pytest.importorskip("torch")
    from rtpose.models import create_model

    torch.manual_seed(1)
    weights = tmp_path / "rsn18.pth"
    torch.save({"state_dict": create_model("rsn18").state_dict()}, weights)
    cpu = _run(ArraySource(frames[:3]), model="rsn18", weights=weights, backend="torch",
               device="cpu", flip_test=True)  # fmt: skip
    transfers.reset()
    gpu_frames = [cp.asarray(f) for f in frames[:3]]
    gpu = _run(ArraySource(gpu_frames), model="rsn18", weights=weights, backend="torch",
               flip_test=True)  # fmt: skip
    assert transfers.largest["d2h"] < frames[0].nbytes / 100, transfers.largest
    for c, g in zip(cpu, gpu, strict=True):
        assert len(c.persons) == len(g.persons) >= 1
        for p, q in zip(c.persons, g.persons):
            np.testing.assert_allclose(p.box, q.box, atol=1.0)
