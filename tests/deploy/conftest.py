"""Fixtures shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory) -> Path:
    """The tiny network of tiny_onnx.py exported to fp32 ONNX (needs torch and onnx)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import tiny_onnx

    return tiny_onnx.export_tiny_net(tmp_path_factory.mktemp("tiny") / "tiny.onnx")
