"""From a zoo entry + weights to a ready backend, exporting (and caching) the ONNX on first use.

The ONNX Runtime path needs torch only once per checkpoint: the exported file is cached under
``$RTPOSE_HOME/onnx/`` keyed by the checkpoint's sha256 and the exporter version, so later runs (and
deployments that ship the ``.onnx``) need no torch at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rtpose.assets import require_asset, rtpose_home, sha256_of
from rtpose.engine.base import resolve_backend_name
from rtpose.errors import CheckpointError
from rtpose.models.zoo import ModelInfo

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the exported graph changes, so cached files are re-exported


def resolve_weights(info: ModelInfo, weights: str | Path | None) -> Path:
    """The checkpoint to use: the caller's file, or the model's fetched default weights."""
    if weights is None:
        if info.default_weights is None:
            raise ValueError(
                f"{info.name} has no default weights; pass weights=PATH to an ultralytics "
                f"{info.name}.pt checkpoint"
            )
        return require_asset(info.default_weights)
    path = Path(weights).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"weights must be a checkpoint file, got a directory: {path}")
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    return path


def onnx_cache_path(info: ModelInfo, weights: Path) -> Path:
    digest = sha256_of(weights)[:16]
    return rtpose_home() / "onnx" / f"{info.name}-{digest}-v{EXPORT_VERSION}.onnx"


def export_yolo_onnx(info: ModelInfo, weights: Path, path: Path) -> Path:
    """Load the checkpoint (safely) and export it with dynamic batch, height and width."""
    from rtpose.export.onnx import export_onnx
    from rtpose.models.yolo_checkpoint import load_yolo_pose

    model = load_yolo_pose(weights, expect_scale=info.scale)
    log.info("exporting %s to ONNX (once per checkpoint): %s", info.name, path)
    size = info.input_size
    return export_onnx(model, path, sample_shape=(1, 3, size, size), output_axes={2: "anchors"})


def load_yolo_backend(
    info: ModelInfo, *, weights: str | Path | None, backend: str, threads: int | None = None
):
    """A backend running the YOLO-pose network of ``info`` with ``weights``."""
    name = resolve_backend_name(backend)
    path = resolve_weights(info, weights)
    if name == "torch":
        from rtpose.engine.torch_backend import TorchBackend
        from rtpose.models.yolo_checkpoint import load_yolo_pose

        if threads:
            import torch

            torch.set_num_threads(threads)
        return TorchBackend(load_yolo_pose(path, expect_scale=info.scale))

    from rtpose.engine.onnxruntime import OnnxRuntimeBackend

    onnx_path = onnx_cache_path(info, path)
    if not onnx_path.is_file():
        export_yolo_onnx(info, path, onnx_path)
    try:
        return OnnxRuntimeBackend(onnx_path, threads=threads)
    except Exception as exc:  # a damaged cache file: say where it is, it is safe to delete
        if type(exc).__module__.startswith("onnxruntime"):
            raise CheckpointError(
                f"cached ONNX model {onnx_path} cannot be loaded ({exc}); delete it to re-export"
            ) from exc
        raise
