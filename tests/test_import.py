"""`import rtpose` stays light: no inference runtime or GPU package is imported."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["torch", "onnxruntime", "tensorrt", "tensorrt_rtx_bindings", "cupy", "nvidia.dali", "onnx"]


def test_import_rtpose_loads_no_heavy_dependency():
    code = (
        "import sys, rtpose; rtpose.PoseFrame; rtpose.Person; rtpose.list_models();"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api_names():
    import rtpose

    for name in rtpose.__all__:
        assert getattr(rtpose, name) is not None
    assert "yolo11n-pose" in rtpose.list_models()


def test_run_time_error_types_are_public():
    import rtpose
    from rtpose import errors

    assert rtpose.InferenceError is errors.InferenceError
    assert rtpose.KernelError is errors.KernelError
    assert {"InferenceError", "KernelError"} <= set(rtpose.__all__)
