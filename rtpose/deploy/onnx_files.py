"""Reading and writing the ONNX files the precision passes (:mod:`~rtpose.deploy.fp16`,
:mod:`~rtpose.deploy.int8`) take and produce.

Both passes read a source model that they never modify, check it with ``onnx.checker`` so a
broken export fails with the file's name rather than deep inside a graph rewrite, and write their
result atomically after a strict check (types included): a build interrupted half-way leaves no
model behind that a later build could mistake for a finished one.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtpose._deps import require
from rtpose._io import atomic_path
from rtpose.errors import EngineBuildError


def load_model(src: Path):
    """Load and check an ONNX file; a file that does not parse is an EngineBuildError."""
    onnx = require("onnx", purpose="precision conversion of ONNX models")
    from google.protobuf.message import DecodeError as ProtobufDecodeError

    if not src.is_file():
        raise FileNotFoundError(f"ONNX model not found: {src}")
    try:
        model = onnx.load(str(src))
        onnx.checker.check_model(model)
    except (ProtobufDecodeError, onnx.checker.ValidationError) as exc:
        raise EngineBuildError(
            f"{src} is not a valid ONNX model ({exc}); re-export it (rtpose.deploy.onnx)"
        ) from exc
    return model


def check_paths(src: str | os.PathLike, dst: str | os.PathLike) -> tuple[Path, Path]:
    """``(src, dst)`` as paths, refusing ``dst == src``; creates ``dst``'s folder."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"dst must differ from src ({src}): the source model is never modified")
    dst.parent.mkdir(parents=True, exist_ok=True)
    return src, dst


def save_atomic(model, dst: Path) -> Path:
    """Check ``model`` strictly (types included) and write it to ``dst`` atomically."""
    onnx = require("onnx", purpose="precision conversion of ONNX models")
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise EngineBuildError(
            f"the converted model for {dst.name} fails onnx.checker ({exc}); this is an rtpose "
            "bug for this graph, please report it with the source model"
        ) from exc
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return dst
