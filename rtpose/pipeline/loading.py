"""From zoo names + weights + a backend name to ready estimators.

This is the one place that turns names into objects: it resolves the weights, opens a backend
(ONNX Runtime on the cached export or on its gated int8 model, torch on the checkpoint, or
TensorRT on an engine built and cached by ``rtpose-build`` on first use), and hands the backends
to the estimators, which never load anything themselves.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rtpose.assets import rtpose_home
from rtpose.backends.base import Backend, resolve_backend_name
from rtpose.deploy.onnx import cached_pose_onnx, cached_yolo_onnx, open_cached_onnx
from rtpose.estimators.one_stage import DetectorConfig, OneStagePose
from rtpose.estimators.top_down import BoxDetector, TopDownConfig, TopDownPose
from rtpose.models.weights import resolve_weights
from rtpose.models.zoo import ModelInfo, Normalisation, check_input_size, get_model_info

log = logging.getLogger(__name__)


def load_one_stage(
    model: str = "yolo11n-pose",
    *,
    weights: str | Path | None = None,
    backend: str = "auto",
    config: DetectorConfig | None = None,
    threads: int | None = None,
    precision: str | None = None,
) -> OneStagePose:
    """A one-stage estimator (YOLO-pose) for zoo entry ``model``.

    Args:
        weights: checkpoint path; default: the fetched default weights of the model.
        backend: ``"auto"`` | ``"onnxruntime"`` | ``"openvino"`` | ``"torch"`` | ``"tensorrt"``.
        config: detection thresholds; threads: CPU threads of the backend.
        precision: the TensorRT engine's precision, or ``"int8"`` for the gated int8 model on
            the CPU backends (``"fp32"``: the fp32 export).
    """
    info = get_model_info(model)
    network = load_yolo_backend(
        info, weights=weights, backend=backend, threads=threads, precision=precision
    )
    return OneStagePose(info, network, config=config)


def load_top_down(
    model: str,
    *,
    weights: str | Path | None,
    detector: str | BoxDetector = "yolo11n-pose",
    detector_weights: str | Path | None = None,
    backend: str = "auto",
    config: DetectorConfig | None = None,
    top_down: TopDownConfig | None = None,
    input_size: tuple[int, int] | None = None,
    threads: int | None = None,
    precision: str | None = None,
) -> TopDownPose:
    """A top-down estimator: detector boxes -> crops -> the pose network of ``model``.

    Args:
        weights: the network's checkpoint (required: top-down models ship without weights).
        detector: a one-stage zoo name (``"yolo11n-pose"``) whose boxes are used, or a callable
            ``image -> (N, 5) [x1, y1, x2, y2, score]``.
        detector_weights: checkpoint of the detector (default: its fetched default weights).
        backend: for the pose network and the detector.
        config: detection thresholds; top_down: flip test, padding, batch size.
        input_size: run the network at another (height, width) (a multiple of its stride).
        threads: CPU threads of the backends; precision: both networks (see
            :func:`load_one_stage`).
    """
    info = get_model_info(model)
    if not info.top_down:
        raise ValueError(f"{model} is a one-stage model; TopDownPose needs a top-down model")
    if input_size is not None:
        check_input_size(info, input_size)
        info = info.with_input_size(input_size)
    boxes = _detector(detector, detector_weights, backend, config, threads, precision)
    try:
        network, norm = load_pose_backend(
            info, weights=weights, backend=backend, threads=threads, precision=precision
        )
    except BaseException:
        if isinstance(boxes, OneStagePose):
            boxes.close()
        raise
    return TopDownPose(info, network, norm, boxes, top_down)


def _detector(detector, weights, backend, config, threads, precision) -> BoxDetector | OneStagePose:
    if callable(detector):
        return detector
    if get_model_info(detector).top_down:
        raise ValueError(
            f"detector must be a one-stage (person-detecting) model such as 'yolo11n-pose', "
            f"got the top-down model {detector!r}"
        )
    return load_one_stage(
        detector, weights=weights, backend=backend, config=config, threads=threads,
        precision=precision,
    )  # fmt: skip


def load_yolo_backend(
    info: ModelInfo,
    *,
    weights: str | Path | None,
    backend: str,
    threads: int | None = None,
    precision: str | None = None,
) -> Backend:
    """A backend running the YOLO-pose network of ``info`` with ``weights``."""
    name = resolve_backend_name(backend, precision=precision)
    path = resolve_weights(info, weights)
    if name == "tensorrt":
        return load_tensorrt_backend(info, path, precision or "fp16")
    if name == "torch":
        from rtpose.backends.torch import TorchBackend
        from rtpose.models.yolo_checkpoint import load_yolo_pose

        _no_precision(name, precision)
        _torch_threads(threads)
        return TorchBackend(load_yolo_pose(path, expect_scale=info.scale), device=torch_device())
    if _cpu_int8(name, precision):
        return open_cpu_backend(name, load_cpu_int8(info, path, name), threads)
    return open_cpu_backend(name, cached_yolo_onnx(info, path), threads)


def load_pose_backend(
    info: ModelInfo,
    *,
    weights: str | Path | None,
    backend: str,
    threads: int | None = None,
    precision: str | None = None,
) -> tuple[Backend, Normalisation]:
    """A backend running the top-down network of ``info`` with ``weights``, and the crop
    normalisation those weights expect.

    ONNX Runtime runs an export (dynamic batch, fixed input size) cached under
    ``$RTPOSE_HOME/onnx/`` with a ``.json`` sidecar holding the normalisation, so later runs need
    no torch.
    """
    name = resolve_backend_name(backend, precision=precision)
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
        from rtpose.backends.torch import TorchBackend
        from rtpose.models.factory import create_model

        _no_precision(name, precision)
        _torch_threads(threads)
        model = create_model(info.name, path, input_size=info.input_size)
        network = TorchBackend(
            model, input_name="crops", output_name="heatmaps", device=torch_device()
        )
        return network, model.normalisation
    onnx_path, norm = cached_pose_onnx(info, path)
    if _cpu_int8(name, precision):
        onnx_path = load_cpu_int8(info, path, name)
    return open_cpu_backend(name, onnx_path, threads), norm


def open_cpu_backend(name: str, onnx_path: Path, threads: int | None) -> Backend:
    """The CPU backend ``name`` on a cached ONNX file (fp32 export or int8 CPU model)."""
    if name == "openvino":
        from rtpose.backends.openvino import OpenVinoBackend

        # a file OpenVINO cannot read or compile raises InferenceError naming it
        return OpenVinoBackend(onnx_path, threads=threads)
    return open_cached_onnx(onnx_path, threads)


def _no_precision(name: str, precision: str | None) -> None:
    if precision is not None:
        raise ValueError(
            f"precision={precision!r} does not apply to backend={name!r}: it selects a TensorRT "
            "engine (backend='tensorrt') or, with precision='int8', the CPU int8 model "
            "(backend='onnxruntime')"
        )


def _cpu_int8(name: str, precision: str | None) -> bool:
    """Whether the CPU backend ``name`` runs the int8 model; refuses precisions it has none of."""
    if precision in (None, "fp32"):
        return False
    if precision == "int8":
        return True
    from rtpose.deploy.cpu_build import BENCHMARK

    raise ValueError(
        f"precision={precision!r} on backend={name!r}: the CPU backends run fp32 or int8; fp16 "
        f"is not faster than fp32 there (measured by {BENCHMARK}). Use precision='int8', or "
        "fp16 with backend='tensorrt' on a GPU"
    )


def load_cpu_int8(info: ModelInfo, weights: Path, backend: str) -> Path:
    """The int8 CPU model of ``info`` with ``weights``: cached under ``$RTPOSE_HOME/engines``,
    built with rtpose-build's calibration and accuracy gate on first use (seconds to a minute),
    and gated as ``backend`` runs it."""
    from rtpose.deploy.cpu_build import build_cpu_model

    result = build_cpu_model(
        info.name, weights=weights, out=rtpose_home() / "engines", backend=backend
    )
    if result.reused:
        log.info("int8 CPU model %s (cached)", result.engine)
    else:
        log.warning("built the int8 CPU model %s: %s", result.engine.name,
                    _gate_line(result.accuracy))  # fmt: skip
    return result.engine


def _gate_line(accuracy: dict | None) -> str:
    if not accuracy:
        return "no accuracy report"
    return f"mean OKS {accuracy['oks_mean']:.4f} vs fp32 on {accuracy['frames']} frames"


def _torch_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def torch_device() -> str:
    """``"cuda"`` when torch sees a GPU (the torch backend then runs there), else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tensorrt_backend(info: ModelInfo, weights: Path, precision: str):
    """A TensorRT backend for ``info``: the engine cached under ``$RTPOSE_HOME/engines`` for
    these weights, precision and GPU, built (with rtpose-build's accuracy gate) when missing.

    The GPU is probed first: without one nothing is built and the error names the CPU backends.
    """
    from rtpose.backends.tensorrt.runtime import TensorRTBackend
    from rtpose.cuda.probe import gpu_status
    from rtpose.deploy.build import build_engine
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


def _manifest_normalisation(manifest, info: ModelInfo) -> Normalisation:
    """The crop normalisation an engine's manifest records (the zoo entry's when absent)."""
    return manifest.normalisation if manifest is not None else info.normalisation
