"""Lazy optional imports with install hints.

``import rtpose`` must not import torch, onnxruntime, tensorrt, DALI or cupy: every module
that needs one of them calls :func:`require` at the point of use, which either returns the
module or raises an ImportError that names the pip command to install it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# module name -> pip command that provides it
_INSTALL_HINTS: dict[str, str] = {
    "torch": "pip install torch==2.13.0  (CPU build; any CUDA build works too)",
    "onnx": "pip install onnx",
    "onnxruntime": "pip install onnxruntime",
    "openvino": "pip install 'rtpose[openvino]'",
    "cv2": "pip install opencv-python-headless",
    "tqdm": "pip install tqdm",
    "tensorrt": "pip install tensorrt",
    "tensorrt_rtx_bindings": "pip install tensorrt-rtx-cu13-bindings tensorrt-rtx-cu13-libs",
    "cupy": "pip install cupy-cuda13x",
    "nvidia.dali": "pip install nvidia-dali-cuda130",
}


def require(name: str, *, purpose: str = "") -> ModuleType:
    """Import an optional dependency or raise an ImportError that says how to install it.

    Args:
        name: importable module name, e.g. ``"torch"``.
        purpose: what the caller needs it for, quoted in the error message.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        hint = _INSTALL_HINTS.get(name, f"pip install {name}")
        why = f" (needed for {purpose})" if purpose else ""
        raise ImportError(
            f"rtpose needs the optional package '{name}'{why}. Install it: {hint}"
        ) from exc
