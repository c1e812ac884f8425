"""A tiny conv+BN+ReLU network with a bilinear Resize and a Softmax branch, exported to ONNX with
dynamic batch: the test subject of the fp16 and int8 passes (tests/deploy/test_fp16.py,
test_int8.py), plus helpers to run it and to read its tensor types.

Importing this module needs torch, onnx, onnxruntime and cv2: test modules importorskip them first.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto

from rtpose.deploy.onnx import export_onnx

SIZE = 32  # network input is (N, 3, 32, 32)
F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


class TinyNet(torch.nn.Module):
    """conv+BN+ReLU x2 -> bilinear x2 upsample -> 1x1 head; a spatial Softmax branch."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):  # (N, 3, 32, 32)
        y = self.body(x)  # (N, 16, 16, 16)
        y = torch.nn.functional.interpolate(y, scale_factor=2.0, mode="bilinear")  # (N,16,32,32)
        h = self.head(y)  # (N, 4, 32, 32)
        n, k = h.shape[:2]
        p = torch.softmax(h.flatten(2) * 4.0, dim=-1).view(n, k, SIZE, SIZE)
        return torch.cat([h, p * 100.0], 1)  # (N, 8, 32, 32)


def export_tiny_net(path: Path) -> Path:
    """TinyNet with seeded weights and non-default BN statistics, as ONNX at ``path``."""
    torch.manual_seed(0)
    model = TinyNet().eval()
    with torch.no_grad():  # non-default BN statistics, as a trained network has
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return export_onnx(model, path, sample_shape=(1, 3, SIZE, SIZE), dynamic_size=False)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(path: Path, x: np.ndarray) -> np.ndarray:
    """The first output of the ONNX model at ``path`` on input ``images`` = ``x`` (CPU)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x})[0]


def preprocess(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (1, 3, 32, 32) float32 RGB in [0, 1]."""
    small = cv2.resize(frame, (SIZE, SIZE), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    return (small.transpose(2, 0, 1)[None] / 255.0).astype(np.float32)


def consumers(graph) -> dict[str, list]:
    """tensor name -> [(node, input slot)] of every node that reads it."""
    out: dict[str, list] = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            out.setdefault(name, []).append((node, slot))
    return out


def tensor_types(model) -> dict[str, int]:
    """tensor name -> ONNX element type, for every tensor of ``model`` (shape inference)."""
    g = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.value_info, *g.output)}
    types.update({t.name: t.data_type for t in g.initializer})
    return types
