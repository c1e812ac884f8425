"""The network a build works on: its fp32 ONNX, the pipeline's preprocessing of real frames, the
int8 calibration on them, and the accuracy gate against fp32.

Shared by the TensorRT build (:mod:`rtpose.deploy.build`) and the CPU build
(:mod:`rtpose.deploy.cpu_build`), so both calibrate and gate on the inputs the estimators make.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from rtpose.errors import EngineBuildError
from rtpose.models.zoo import ModelInfo, Normalisation, get_model_info

log = logging.getLogger(__name__)


@dataclass
class Subject:
    """The network being built and everything the gate needs to run it like the pipeline.

    ``fixed``: the network takes one input size (a TensorRT engine, a static export): YOLO frames
    are letterboxed to exactly ``info.input_size``; otherwise to the stream's rectangular
    letterbox (stride 32), as the ONNX Runtime path runs them.
    """

    info: ModelInfo
    onnx: Path  # fp32
    sha256: str
    normalisation: Normalisation
    input_name: str
    fixed: bool = True

    def frames_to_inputs(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Network inputs for real frames, built as the estimators build them: one
        (1, 3, H, W) letterbox per frame (YOLO) or the (n, 3, H, W) person crops of each frame
        with people (top-down, YOLO11n-pose boxes)."""
        from rtpose.estimators.preprocess import crop_batch, letterbox_batch, yolo_letterbox

        if not self.info.top_down:
            size = self.info.input_size
            return [
                letterbox_batch([f], yolo_letterbox(f.shape[:2], size, fixed=self.fixed),
                                self.normalisation)
                for f in frames
            ]  # fmt: skip
        detector = _default_detector()
        out = []
        for frame in frames:
            boxes = detector(frame)
            if len(boxes):
                crops, _ = crop_batch([frame], [boxes], self.info.input_size, self.normalisation)
                out.append(crops)
        return out


_DETECTOR = None


def _default_detector():
    """YOLO11n-pose boxes (ONNX Runtime, the default weights) for the top-down inputs."""
    global _DETECTOR
    if _DETECTOR is None:
        from rtpose.deploy.onnx import cached_yolo_onnx, open_cached_onnx
        from rtpose.estimators.one_stage import OneStagePose
        from rtpose.estimators.top_down import YoloPersonDetector
        from rtpose.models.weights import resolve_weights

        info = get_model_info("yolo11n-pose")
        network = open_cached_onnx(cached_yolo_onnx(info, resolve_weights(info, None)), None)
        _DETECTOR = YoloPersonDetector(OneStagePose(info, network))
    return _DETECTOR


def export_subject(
    model: str | Path,
    weights: str | Path | None,
    model_name: str | None,
    work: Path,
    *,
    target: Literal["tensorrt", "cpu"] = "tensorrt",
) -> Subject:
    """The fp32 ONNX of a zoo model (exported into ``work``) or an ONNX file (used as given,
    ``model_name`` naming the zoo entry whose pre- and post-processing it follows).

    ``target="cpu"``: a zoo model's fp32 ONNX is the cached export the ONNX Runtime path runs
    (YOLO: dynamic height and width), so no torch is needed when it is cached.
    """
    from rtpose.assets import sha256_of
    from rtpose.deploy.onnx import (
        cached_pose_onnx,
        cached_yolo_onnx,
        export_pose_onnx,
        export_yolo_onnx,
    )
    from rtpose.models.weights import resolve_weights

    path = Path(model)
    if path.suffix == ".onnx" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {path}")
        if model_name is None:
            raise ValueError(
                f"{path}: say which zoo model this ONNX is (model_name= / --as NAME, e.g. rsn18), "
                "so the accuracy gate can preprocess frames and decode keypoints like the pipeline"
            )
        info = get_model_info(model_name)
        _check_onnx(path)
        name, fixed = _input(path)
        # TensorRT engines take the size the build letterboxes to
        return Subject(info, path, sha256_of(path), info.normalisation, name,
                       fixed or target == "tensorrt")  # fmt: skip
    info = get_model_info(str(model))
    if info.top_down:
        if weights is None:
            raise ValueError(
                f"{info.name} is a top-down model without bundled weights: pass weights=PATH "
                f"(--weights) to a checkpoint"
                + (f" (e.g. {info.checkpoint})" if info.checkpoint else "")
            )
        weights_path = resolve_weights(info, weights)
        if target == "cpu":
            onnx, norm = cached_pose_onnx(info, weights_path)
        else:
            onnx = work / f"{info.name}-fp32.onnx"
            norm = export_pose_onnx(info, weights_path, onnx)
        return Subject(info, onnx, sha256_of(weights_path), norm, "crops")
    weights_path = resolve_weights(info, weights)
    if target == "cpu":
        onnx = cached_yolo_onnx(info, weights_path)
    else:
        onnx = work / f"{info.name}-fp32.onnx"
        export_yolo_onnx(info, weights_path, onnx, dynamic_size=False)
    return Subject(
        info, onnx, sha256_of(weights_path), info.normalisation, "images", target != "cpu"
    )


def _check_onnx(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx raises its own and protobuf errors
        raise EngineBuildError(f"{path} is not a valid ONNX model: {exc}") from exc


def _input(path: Path) -> tuple[str, bool]:
    """The one network input's name, and whether its height and width are fixed."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise EngineBuildError(
            f"{path}: expected one network input, found {[i.name for i in inputs]}"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    return inputs[0].name, all(d.dim_value > 0 for d in dims[2:4])


# --- calibration and the gate -----------------------------------------------------------------


def check_gate_options(calib_frames: int, eval_frames: int, min_oks: float) -> None:
    """The calibration / gate settings every build takes, checked once for both targets."""
    if calib_frames < 1 or eval_frames < 1:
        raise ValueError("calib_frames and eval_frames must be >= 1")
    if not 0.0 < min_oks <= 1.0:
        raise ValueError(f"min_oks must be in (0, 1], got {min_oks}")


def calibrate_int8(
    subject: Subject,
    dst: Path,
    *,
    calib: str | None,
    calib_frames: int,
    target: Literal["tensorrt", "cpu"],
) -> tuple[Path, str]:
    """The int8 Q/DQ ONNX of ``subject`` at ``dst``, calibrated on the network inputs of
    ``calib_frames`` frames of ``calib``; and a note for the progress line."""
    from rtpose.deploy.int8 import quantize_int8

    frames = gate_frames(calib, calib_frames)
    batches = [x for x in subject.frames_to_inputs(frames) if len(x)]
    if not batches:
        raise ValueError(
            f"calibration source {calib or 'sample video'}: no network inputs from "
            f"{len(frames)} frames (no person was detected for the top-down crops)"
        )
    path = quantize_int8(subject.onnx, dst, batches, input_name=subject.input_name, target=target)
    return path, f" (Q/DQ, calibrated on {len(frames)} frames, {sum(map(len, batches))} inputs)"


def accuracy_gate(
    subject: Subject,
    candidate: Path | None,
    frames: list[np.ndarray],
    *,
    precision: str,
    min_oks: float,
    candidate_backend=None,
):
    """Compare the candidate (an ONNX file on ONNX Runtime, or a ready backend such as the
    TensorRT engine) with FP32 ONNX Runtime on ``frames``; returns an AccuracyReport."""
    from rtpose.backends.onnxruntime import OnnxRuntimeBackend
    from rtpose.deploy import accuracy

    providers = ["CPUExecutionProvider"]
    ref = OnnxRuntimeBackend(subject.onnx, providers=providers)
    if candidate_backend is None:
        cand = OnnxRuntimeBackend(candidate, providers=providers)
        names = ("fp32 ONNX (ONNX Runtime)", f"{precision} ONNX (ONNX Runtime)")
    else:
        cand = candidate_backend
        what = "engine" if cand.name == "tensorrt" else "ONNX"
        names = ("fp32 ONNX (ONNX Runtime)", f"{precision} {what} ({cand.name})")
    inputs = subject.frames_to_inputs(frames)

    def runner(backend):
        return lambda x: backend.run({subject.input_name: x})[backend.output_names[0]]

    if subject.info.top_down:
        codec = subject.info.codec.build(subject.info.input_size, subject.info.heatmap_size)
        crops = np.concatenate(inputs) if inputs else np.zeros((0, 3, *subject.info.input_size))
        r = accuracy.top_down_keypoints(runner(ref), crops, codec)
        c = accuracy.top_down_keypoints(runner(cand), crops, codec)
        h, w = subject.info.input_size
        areas = np.full(len(crops), h * w / 1.25**2)
        return accuracy.compare(
            r, c, areas, skeleton=subject.info.skeleton, frames=len(frames),
            min_oks=min_oks, names=names,
        )  # fmt: skip
    rp = [runner(ref)(x) for x in inputs]
    cp = [runner(cand)(x) for x in inputs]
    r, c, areas, missed = accuracy.yolo_instances(rp, cp)
    return accuracy.compare(
        r, c, areas, skeleton=subject.info.skeleton, frames=len(frames), missed=missed,
        min_oks=min_oks, names=names,
    )  # fmt: skip


def gate_frames(source: str | None, count: int, *, offset: int = 0) -> list[np.ndarray]:
    """Frames for calibration / evaluation: ``source`` or the fetched sample video."""
    from rtpose.deploy.calibration import calibration_frames

    if source is None:
        from rtpose.assets import require_asset

        source = str(require_asset("demo.mp4"))
    frames = calibration_frames(source, count=count + offset)
    return frames[offset:] if offset else frames
