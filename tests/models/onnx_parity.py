"""ONNX parity of small fully convolutional test networks (dynamic batch, height and width)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

SHAPES = ((1, 3, 64, 64), (2, 3, 128, 64))


def assert_onnx_matches_torch(module, path, num_keypoints: int, shapes=SHAPES) -> None:
    """Export ``module`` with dynamic batch/size; ONNX Runtime equals torch (rel. 1e-4) at each
    input shape and the heatmaps are a quarter of the input size."""
    ort = pytest.importorskip("onnxruntime")
    from rtpose.deploy.onnx import export_onnx

    path = export_onnx(module, path, sample_shape=shapes[0], output_axes={2: "h", 3: "w"})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in shapes:
        x = rng.random(shape, dtype=np.float32)
        (got,) = session.run(None, {"images": x})
        with torch.no_grad():
            ref = module(torch.from_numpy(x)).numpy()
        assert got.shape == (shape[0], num_keypoints, shape[2] // 4, shape[3] // 4)
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
