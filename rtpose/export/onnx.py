"""torch -> ONNX export with dynamic batch (and, for fully convolutional nets, dynamic size)."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

from rtpose._deps import require

log = logging.getLogger(__name__)

OPSET = 17


def export_onnx(
    module,
    path: str | os.PathLike,
    *,
    sample_shape: tuple[int, int, int, int],
    input_name: str = "images",
    output_name: str = "preds",
    dynamic_size: bool = True,
    output_axes: dict[int, str] | None = None,
) -> Path:
    """Export ``module`` (one input, one output) to ``path``, atomically.

    Args:
        sample_shape: (B, C, H, W) of the tracing input.
        dynamic_size: keep H and W dynamic as well as the batch (fully convolutional networks).
        output_axes: names of the output's dynamic axes besides the batch (axis 0).

    The file appears under ``path`` only when the export finished, so an interrupted export never
    leaves a truncated model in the cache.
    """
    torch = require("torch", purpose="ONNX export")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_size else {0: "batch"}
    x = torch.zeros(sample_shape, dtype=torch.float32)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + "-", suffix=".onnx.part", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the tracer warns about shape arithmetic it records symbolically; that is intended
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            # torch >= 2.9 deprecates the TorchScript exporter. The dynamo exporter also exports
            # YOLO11-pose with dynamic batch/height/width (checked with torch 2.13, sizes declared
            # as multiples of 32); moving to it is a follow-up, this path is the tested one.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            torch.onnx.export(
                module.eval(),
                (x,),
                tmp,
                dynamo=False,  # TorchScript exporter: records shape arithmetic symbolically
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: axes, output_name: {0: "batch", **(output_axes or {})}},
                opset_version=OPSET,
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    log.info("exported %s", path)
    return path
