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
    return export_onnx(
        model, path, sample_shape=(1, 3, *info.input_size), output_axes={2: "anchors"}
    )


def load_yolo_backend(
    info: ModelInfo,
    *,
    weights: str | Path | None,
    backend: str,
    threads: int | None = None,
    precision: str | None = None,
):
    """A backend running the YOLO-pose network of ``info`` with ``weights``."""
    name = resolve_backend_name(backend)
    path = resolve_weights(info, weights)
    if name == "tensorrt":
        return load_tensorrt_backend(info, path, precision or "fp16")
    if name == "torch":
        from rtpose.engine.torch_backend import TorchBackend
        from rtpose.models.yolo_checkpoint import load_yolo_pose

        if threads:
            import torch

            torch.set_num_threads(threads)
        return TorchBackend(load_yolo_pose(path, expect_scale=info.scale), device=torch_device())

    onnx_path = onnx_cache_path(info, path)
    if not onnx_path.is_file():
        export_yolo_onnx(info, path, onnx_path)
    return open_cached_onnx(onnx_path, threads)


def open_cached_onnx(onnx_path: Path, threads: int | None):
    """An ONNX Runtime backend on a cached export; a damaged file is named (safe to delete)."""
    from rtpose.engine.onnxruntime import OnnxRuntimeBackend

    try:
        return OnnxRuntimeBackend(onnx_path, threads=threads)
    except Exception as exc:
        if type(exc).__module__.startswith("onnxruntime"):
            raise CheckpointError(
                f"cached ONNX model {onnx_path} cannot be loaded ({exc}); delete it to re-export"
            ) from exc
        raise


def load_pose_backend(
    info: ModelInfo,
    *,
    weights: str | Path | None,
    backend: str,
    threads: int | None = None,
    precision: str | None = None,
):
    """A backend running the top-down network of ``info`` with ``weights``, and the crop
    normalisation those weights expect.

    ONNX Runtime runs an export (dynamic batch, fixed input size) cached under
    ``$RTPOSE_HOME/onnx/`` with a ``.json`` sidecar holding the normalisation, so later runs need
    no torch.

    Returns:
        (backend, :class:`rtpose.models.zoo.Normalisation`)
    """
    import json

    name = resolve_backend_name(backend)
    if weights is None:
        where = f" (the published one: {info.checkpoint})" if info.checkpoint else ""
        raise ValueError(
            f"{info.name} is a top-down model without bundled weights: pass weights=PATH to a "
            f"checkpoint{where}; or use model='yolo11n-pose', which ships ready to run"
        )
    path = resolve_weights(info, weights)
    if name == "tensorrt":
        trt = load_tensorrt_backend(info, path, precision or "fp16")
        return trt, _manifest_normalisation(trt.manifest, info)
    if name == "torch":
        from rtpose.engine.torch_backend import TorchBackend
        from rtpose.models.factory import create_model

        if threads:
            import torch

            torch.set_num_threads(threads)
        model = create_model(info.name, path, input_size=info.input_size)
        backend_ = TorchBackend(
            model, input_name="crops", output_name="heatmaps", device=torch_device()
        )
        return backend_, model.normalisation

    h, w = info.input_size
    onnx_path = onnx_cache_path(info, path).with_name(
        f"{info.name}-{h}x{w}-{sha256_of(path)[:16]}-v{EXPORT_VERSION}.onnx"
    )
    sidecar = onnx_path.with_suffix(".json")
    norm = _read_sidecar(sidecar) if onnx_path.is_file() else None
    if norm is None:
        norm = export_pose_onnx(info, path, onnx_path)
        tmp = sidecar.with_suffix(".json.part")
        tmp.write_text(
            json.dumps({"mean": norm.mean, "std": norm.std, "order": norm.channel_order})
        )
        tmp.replace(sidecar)
    return open_cached_onnx(onnx_path, threads), norm


def _read_sidecar(sidecar: Path):
    """The normalisation stored next to a cached export; None when missing or unreadable."""
    import json

    from rtpose.models.zoo import Normalisation

    try:
        meta = json.loads(sidecar.read_text())
        return Normalisation(tuple(meta["mean"]), tuple(meta["std"]), meta["order"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def export_pose_onnx(info: ModelInfo, weights: Path | None, path: Path):
    """Export a top-down network (checkpoint loaded) with a dynamic batch axis; returns the
    normalisation of the checkpoint."""
    from rtpose.export.onnx import export_onnx
    from rtpose.models.factory import create_model

    model = create_model(info.name, weights, input_size=info.input_size)
    log.info("exporting %s to ONNX (once per checkpoint): %s", info.name, path)
    export_onnx(
        model, path, sample_shape=(1, 3, *info.input_size), input_name="crops",
        output_name="heatmaps", dynamic_size=False,
    )  # fmt: skip
    return model.normalisation


def torch_device() -> str:
    """``"cuda"`` when torch sees a GPU (the torch backend then runs there), else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tensorrt_backend(info: ModelInfo, weights: Path, precision: str):
    """A TensorRT backend for ``info``: the engine cached under ``$RTPOSE_HOME/engines`` for
    these weights, precision and GPU, built (with rtpose-build's accuracy gate) when missing.

    The GPU is probed first: without one nothing is built and the error names the CPU backends.
    """
    from rtpose.engine.build import build_engine
    from rtpose.engine.gpu_probe import gpu_status
    from rtpose.engine.tensorrt import TensorRTBackend
    from rtpose.errors import BackendUnavailableError

    status = gpu_status()
    if not status.available:
        raise BackendUnavailableError(
            f"backend='tensorrt' needs an NVIDIA GPU with its driver; found none ({status.reason})."
            " Use backend='onnxruntime' (or 'auto') on this machine"
        )
    result = build_engine(
        info.name, precision=precision, weights=weights, out=rtpose_home() / "engines"
    )
    if result.reused:
        log.info("TensorRT engine %s (cached)", result.engine)
    return TensorRTBackend(result.engine, cuda_graphs=True)


def _manifest_normalisation(manifest, info: ModelInfo):
    """The crop normalisation an engine's manifest records (the zoo entry's when absent)."""
    from rtpose.models.zoo import Normalisation

    raw = (manifest or {}).get("normalisation")
    if not raw:
        return info.normalisation
    return Normalisation(tuple(raw["mean"]), tuple(raw["std"]), raw["channel_order"])
