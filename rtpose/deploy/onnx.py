"""torch -> ONNX export (dynamic batch; dynamic size for fully convolutional nets) and the export
cache that lets the ONNX Runtime path run without torch after the first use."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

from rtpose._deps import require
from rtpose._io import atomic_path, atomic_write_text
from rtpose.assets import rtpose_home, sha256_of
from rtpose.errors import CheckpointError
from rtpose.models.zoo import ModelInfo, Normalisation

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
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_size else {0: "batch"}
    x = torch.zeros(sample_shape, dtype=torch.float32)
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        # the tracer warns about shape arithmetic it records symbolically; that is intended
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        # torch >= 2.9 deprecates the TorchScript exporter. The dynamo exporter also exports
        # YOLO11-pose with dynamic batch/height/width (checked with torch 2.13, sizes declared
        # as multiples of 32); moving to it is a follow-up, this path is the tested one.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            module.eval(),
            (x,),
            str(tmp),
            dynamo=False,  # TorchScript exporter: records shape arithmetic symbolically
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: axes, output_name: {0: "batch", **(output_axes or {})}},
            opset_version=OPSET,
        )
    log.info("exported %s", path)
    return path


# --- the export cache: $RTPOSE_HOME/onnx/, keyed by checkpoint hash and exporter version ---------
# The ONNX Runtime path needs torch only once per checkpoint: later runs (and deployments that ship
# the .onnx) need no torch at all.

EXPORT_VERSION = 1  # bump when the exported graph changes, so cached files are re-exported


def onnx_cache_path(info: ModelInfo, weights: Path) -> Path:
    """Where the export of ``info`` with ``weights`` is cached (top-down: per input size)."""
    digest = sha256_of(weights)[:16]
    if info.top_down:
        h, w = info.input_size
        return rtpose_home() / "onnx" / f"{info.name}-{h}x{w}-{digest}-v{EXPORT_VERSION}.onnx"
    return rtpose_home() / "onnx" / f"{info.name}-{digest}-v{EXPORT_VERSION}.onnx"


def export_yolo_onnx(info: ModelInfo, weights: Path, path: Path, *, dynamic_size: bool = True):
    """Load a YOLO-pose checkpoint (safely) and export it with a dynamic batch (and, by
    default, dynamic height and width)."""
    from rtpose.models.yolo_checkpoint import load_yolo_pose

    model = load_yolo_pose(weights, expect_scale=info.scale)
    log.info("exporting %s to ONNX: %s", info.name, path)
    return export_onnx(
        model, path, sample_shape=(1, 3, *info.input_size), dynamic_size=dynamic_size,
        output_axes={2: "anchors"} if dynamic_size else None,
    )  # fmt: skip


def export_pose_onnx(info: ModelInfo, weights: Path | None, path: Path) -> Normalisation:
    """Export a top-down network (checkpoint loaded) with a dynamic batch axis; returns the
    normalisation of the checkpoint."""
    from rtpose.models.factory import create_model

    model = create_model(info.name, weights, input_size=info.input_size)
    log.info("exporting %s to ONNX: %s", info.name, path)
    export_onnx(
        model, path, sample_shape=(1, 3, *info.input_size), input_name="crops",
        output_name="heatmaps", dynamic_size=False,
    )  # fmt: skip
    return model.normalisation


def cached_yolo_onnx(info: ModelInfo, weights: Path) -> Path:
    """The cached export of a YOLO-pose checkpoint, exported on first use."""
    path = onnx_cache_path(info, weights)
    if not path.is_file():
        export_yolo_onnx(info, weights, path)
    return path


def cached_pose_onnx(info: ModelInfo, weights: Path) -> tuple[Path, Normalisation]:
    """The cached export of a top-down checkpoint and its crop normalisation (kept in a
    ``.json`` sidecar, so later runs need no torch), exported on first use."""
    path = onnx_cache_path(info, weights)
    sidecar = path.with_suffix(".json")
    norm = _read_sidecar(sidecar) if path.is_file() else None
    if norm is None:
        norm = export_pose_onnx(info, weights, path)
        atomic_write_text(
            sidecar, json.dumps({"mean": norm.mean, "std": norm.std, "order": norm.channel_order})
        )
    return path, norm


def _read_sidecar(sidecar: Path) -> Normalisation | None:
    """The normalisation stored next to a cached export; None when missing or unreadable."""
    try:
        meta = json.loads(sidecar.read_text())
        return Normalisation(tuple(meta["mean"]), tuple(meta["std"]), meta["order"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def open_cached_onnx(onnx_path: Path, threads: int | None):
    """An ONNX Runtime backend on a cached export; a damaged file is named (safe to delete)."""
    from rtpose.backends.onnxruntime import OnnxRuntimeBackend

    try:
        return OnnxRuntimeBackend(onnx_path, threads=threads)
    except Exception as exc:
        if type(exc).__module__.startswith("onnxruntime"):
            raise CheckpointError(
                f"cached ONNX model {onnx_path} cannot be loaded ({exc}); delete it to re-export"
            ) from exc
        raise
