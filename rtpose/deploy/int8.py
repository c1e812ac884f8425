"""The int8 pass: explicit quantization, a copy of an ONNX model with QuantizeLinear /
DequantizeLinear (Q/DQ) pairs whose scales are calibrated on real network inputs.

Precision lives in the ONNX file. TensorRT 11 and TensorRT-RTX build strongly typed networks only:
there is no INT8 builder flag and no calibrator, so int8 comes from TensorRT's explicit
quantization, Q/DQ nodes in the graph that say where int8 starts and ends and with which scale
(TensorRT 10 honours the same file). :func:`quantize_int8` writes them with ONNX Runtime's static
quantization in QDQ format (or NVIDIA ModelOpt when installed): symmetric int8, one scale per
activation tensor and per weight output channel, Q/DQ on op inputs only, calibrated with the
MinMax (largest magnitude seen) or the percentile range of each activation; ModelOpt uses max or
entropy calibration. The quantized arithmetic with a real scale and an integer zero point (zero
here) is that of Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference" (CVPR 2018). Calibration inputs come from
:mod:`rtpose.deploy.calibration`; :data:`INT8_EXCLUDE_OPS` gives the reason per op left in float.

``target="cpu"`` writes the recipe the CPU runtimes run fastest and that keeps YOLO11n-pose within
the gate: asymmetric uint8 activations with Q/DQ on op inputs and outputs (ONNX Runtime fuses
each DQ -> op -> Q into one integer kernel), symmetric int8 weights per output channel, every op
quantized except Resize (:data:`CPU_INT8_EXCLUDE_OPS`) and two regions left in float:

- the *float tail*, the nodes from which no Conv is reachable (:func:`float_tail`): the head's
  output convolutions and the decoding into pixels. Quantized, no person survived (OKS 0);
- the *attention island* (:func:`attention_island`): Softmax and MatMul nodes, what joins them
  without a Conv in between, and the convolutions at its borders: YOLO11's attention block
  (C2PSA) with its qkv, positional and output convolutions, and the DFL's softmax over 16
  distance bins with the head convolutions that feed it. With the attention's convolutions
  quantized a person was lost (OKS 0.936), with the softmaxes quantized too (OKS 0.946); and
  OpenVINO 2026.4 cannot compile a quantized Mul behind a float MatMul (its
  MultiplyPartialTransformation throws). Leaving the island in float cost no measurable time.

Measured on the gate frames (``benchmarks/bench_cpu_int8.py`` measures the speed): the CPU recipe
keeps every person, OKS 0.980; the TensorRT recipe runs *slower* than fp32 on ONNX Runtime
(symmetric int8 activations have no fast CPU kernel), OKS 0.941.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from rtpose._cpu import has_int8_dot_product
from rtpose._deps import require
from rtpose.deploy.onnx_files import check_paths, load_model, save_atomic
from rtpose.errors import EngineBuildError

log = logging.getLogger(__name__)

# Ops quantize_int8 leaves in float by default.
INT8_EXCLUDE_OPS: tuple[str, ...] = (
    # probabilities in [0, 1]: 1/127 steps are too coarse for keypoint visibility scores and the
    # DFL bin weights, and TensorRT runs these in float anyway
    "Softmax",
    "Sigmoid",
    # YOLO11-pose decodes offsets into pixel coordinates with Add/Mul (range 0..640 -> 5 px int8
    # steps). Cost: residual Adds stay float, so TensorRT cannot fuse them into the int8 conv.
    "Add",
    "Mul",
    # the YOLO head concatenates/splits boxes, scores and keypoints of very different ranges; one
    # shared scale would crush the small ones
    "Concat",
    "Split",
    "Gather",
    "Where",
    # data movement has no arithmetic to speed up, and ORT's QDQ quantizer then also quantizes
    # the producer's output: e.g. a head conv whose output is also the network's output
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Slice",
    # interpolating int8 values and re-rounding adds a step of error on every upsampled feature
    # map of the top-down nets, for an op that costs little in float
    "Resize",
    "InstanceNormalization",
    "LayerNormalization",
    "BatchNormalization",
)

# Ops the CPU recipe (target="cpu") leaves in float, besides the float tail and the attention
# island (see the module docstring): as for TensorRT (INT8_EXCLUDE_OPS), re-rounding
# interpolated int8 values costs accuracy on the upsampled maps, for an op that is cheap in float.
CPU_INT8_EXCLUDE_OPS: tuple[str, ...] = ("Resize",)

Target = Literal["tensorrt", "cpu"]


def quantize_int8(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    calibration: Sequence[np.ndarray],
    *,
    input_name: str,
    exclude_op_types: Sequence[str] = INT8_EXCLUDE_OPS,
    method: Literal["minmax", "percentile"] = "minmax",
    quantizer: Literal["auto", "onnxruntime", "modelopt"] = "auto",
    target: Target = "tensorrt",
) -> Path:
    """Write an int8 Q/DQ copy of the ONNX model ``src`` to ``dst``, calibrated on real inputs.

    Symmetric int8 activations (one scale per tensor) and weights (one scale per output channel),
    zero points 0, QDQ format: the explicit quantization TensorRT builds. Biases stay float32
    (TensorRT fuses them into the int8 conv; it has no int32 bias dequantisation). Inputs and
    outputs stay float32.

    Args:
        calibration: batches fed to ``input_name``, each (N, C, H, W) float32 and already
            preprocessed (see :func:`rtpose.deploy.calibration.calibration_batches`).
        exclude_op_types: op types left in float (default :data:`INT8_EXCLUDE_OPS`).
        method: "minmax" (default) takes each activation's largest magnitude seen. It is right for
            the few dozen frames a user calibrates on and for our outputs, whose peaks *are* the
            signal: a percentile clips heatmap maxima and flattens the argmax. "percentile"
            (99.999 %) suits activations with rare outliers and many calibration frames.
        quantizer: "auto" uses NVIDIA ModelOpt (``modelopt.onnx.quantization``) when importable,
            otherwise ONNX Runtime. The ModelOpt path is untested here (not installable on the
            CI machines). The CPU target always uses ONNX Runtime.
        target: "tensorrt" (default): the explicit quantization above, for TensorRT. "cpu": the
            CPU recipe of the module docstring (``exclude_op_types`` and ``quantizer`` do not
            apply; ``method`` does). On an x86 CPU without VNNI the weights keep 7 bits
            (``reduce_range``): ONNX Runtime's u8 x s8 kernels can saturate there.

    Returns:
        ``dst``, written atomically (nothing appears there on failure).
    """
    if isinstance(exclude_op_types, str):
        raise TypeError(
            f"exclude_op_types must be a sequence of op types, got {exclude_op_types!r}"
        )
    if target not in ("tensorrt", "cpu"):
        raise ValueError(f"target must be 'tensorrt' or 'cpu', got {target!r}")
    if method not in ("minmax", "percentile"):
        raise ValueError(f"method must be 'minmax' or 'percentile', got {method!r}")
    if quantizer not in ("auto", "onnxruntime", "modelopt"):
        raise ValueError(
            f"quantizer must be 'auto', 'onnxruntime' or 'modelopt', got {quantizer!r}"
        )
    src, dst = check_paths(src, dst)
    model = load_model(src)
    inputs = [
        i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    if input_name not in inputs:
        raise ValueError(f"{src} has no input {input_name!r}; its inputs are {inputs}")
    batches = _check_calibration(calibration)
    if target == "cpu":
        quantizer = "onnxruntime"
    elif quantizer == "auto":
        try:
            require("modelopt.onnx.quantization")
            quantizer = "modelopt"
        except ImportError:
            quantizer = "onnxruntime"
    log.info("int8 calibration of %s on %d batches with %s (%s, for %s)", src.name,
             len(batches), quantizer, method, target)  # fmt: skip

    src, dst = src.resolve(), dst.resolve()
    work = Path(tempfile.mkdtemp(prefix=dst.stem + "-", suffix=".int8.part", dir=dst.parent))
    cwd = os.getcwd()
    try:
        out = work / "quantized.onnx"
        # ORT's symbolic shape inference drops sym_shape_infer_temp.onnx and <uuid>.data files
        # into the working directory when it gives up: keep them in the work directory
        os.chdir(work)
        if target == "cpu":
            _quantize_cpu(model, src, out, batches, input_name, method)
        elif quantizer == "modelopt":
            _quantize_modelopt(src, out, batches, input_name, exclude_op_types, method)
        else:
            _quantize_onnxruntime(src, out, work, batches, input_name, exclude_op_types, method)
        os.chdir(cwd)
        quantized = load_model(out)
        save_atomic(quantized, dst)
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    return dst


def _check_calibration(calibration: Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(calibration, np.ndarray):
        calibration = [calibration]  # one batch
    batches = list(calibration)
    if not batches:
        raise ValueError("calibration is empty: pass at least one (N, C, H, W) float32 batch")
    for i, b in enumerate(batches):
        if not isinstance(b, np.ndarray) or b.ndim != 4 or b.dtype != np.float32 or len(b) == 0:
            got = f"{b.dtype} {b.shape}" if isinstance(b, np.ndarray) else type(b).__name__
            raise ValueError(
                f"calibration batch {i} must be a non-empty (N, C, H, W) float32 array, got {got}; "
                "build batches with rtpose.deploy.calibration.calibration_batches()"
            )
        if b.shape[1:] != batches[0].shape[1:]:
            raise ValueError(
                f"calibration batch {i} has sample shape {b.shape[1:]}, batch 0 has "
                f"{batches[0].shape[1:]}: all batches must share (C, H, W)"
            )
    return batches


def _reader(quant, batches, input_name):
    """ONNX Runtime's calibration reader over the batches."""

    class Reader(quant.CalibrationDataReader):
        def __init__(self):
            self._it = iter(batches)

        def get_next(self):
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

    return Reader()


def _calibration_method(quant, method: str):
    return {
        "minmax": quant.CalibrationMethod.MinMax,
        "percentile": quant.CalibrationMethod.Percentile,
    }[method]


def float_tail(model) -> list[str]:
    """Names of the nodes of ``model`` from which no Conv is reachable (in graph order).

    In a pose network these are the output convolutions of the head and everything after them
    (YOLO: decoding offsets into pixels, sigmoid scores): int8 there rounds the outputs
    themselves, with nothing downstream whose speed would pay for it.
    """
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    feeds_conv: dict[str, bool] = {}
    for node in reversed(model.graph.node):  # ONNX graphs are topologically sorted
        feeds_conv[node.name] = any(
            c.op_type == "Conv" or feeds_conv.get(c.name, False)
            for out in node.output
            for c in consumers.get(out, [])
        )
    return [n.name for n in model.graph.node if not feeds_conv[n.name]]


def attention_island(model) -> list[str]:
    """Names of the Softmax and MatMul nodes of ``model``, of every node joined to them through
    nodes other than Conv, and of the Conv nodes at the borders (in graph order): an attention
    block with the convolutions that make its queries, keys and values and project its output.

    The walk does not pass through ``Shape`` nodes (a reshape's target shape is read from
    feature maps anywhere in the network, which are no part of the block), and a Conv joined
    only through a ``Shape`` is no border.
    """
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    todo = [n for n in model.graph.node if n.op_type in ("Softmax", "MatMul")]
    seen = {n.name for n in todo}
    while todo:
        node = todo.pop()
        if node.op_type in ("Shape", "Conv"):
            continue
        near = [producers[i] for i in node.input if i in producers]
        near += [c for o in node.output for c in consumers.get(o, [])]
        for other in near:
            if other.name not in seen:
                seen.add(other.name)
                todo.append(other)
    return [n.name for n in model.graph.node if n.name in seen]


def _quantize_cpu(model, src, out, batches, input_name, method) -> None:
    quant = require("onnxruntime.quantization", purpose="int8 quantization")
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    if any(not n.name for n in model.graph.node):
        raise EngineBuildError(
            f"{src} has unnamed nodes; the CPU int8 recipe excludes nodes by name (re-export it)"
        )
    ops = sorted((set(QDQRegistry) | set(QLinearOpsRegistry)) - set(CPU_INT8_EXCLUDE_OPS))
    reduce_range = not has_int8_dot_product()
    if reduce_range:
        log.info("no VNNI on this CPU: int8 weights keep 7 bits (reduce_range)")
    _quantize_static(
        quant, src, src, out, batches, input_name, method, ops,
        nodes_to_exclude=sorted(set(float_tail(model)) | set(attention_island(model))),
        reduce_range=reduce_range, activation_type=quant.QuantType.QUInt8,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )  # fmt: skip


def _quantize_onnxruntime(src, out, work, batches, input_name, exclude_op_types, method) -> None:
    quant = require("onnxruntime.quantization", purpose="int8 quantization")
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    # symbolic shape inference gives the quantizer every tensor's shape; ORT's basic graph
    # optimisation folds constants and BN so no Q/DQ lands on foldable subgraphs
    pre = work / "preprocessed.onnx"
    try:
        quant.quant_pre_process(str(src), str(pre))
    except Exception as exc:  # ORT's pre-processing raises many kinds; none is fatal
        log.warning(
            "quant_pre_process failed on %s (%s); quantizing the model as exported", src, exc
        )
        pre = src
    ops = sorted((set(QDQRegistry) | set(QLinearOpsRegistry)) - set(exclude_op_types))
    _quantize_static(
        quant, src, pre, out, batches, input_name, method, ops,
        activation_type=quant.QuantType.QInt8,
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            # Q/DQ on op inputs only, TensorRT's recommended placement: it fuses the
            # requantisation into the producer, and a network output is never rounded to int8
            "OpTypesToExcludeOutputQuantization": ops,
        },
    )  # fmt: skip


def _quantize_static(quant, src, model_path, out, batches, input_name, method, ops, *,
                     extra_options, **recipe) -> None:  # fmt: skip
    """ONNX Runtime's static QDQ quantization of ``model_path`` (prepared from ``src``), with
    per-channel int8 weights and the recipe's other settings."""
    try:
        quant.quantize_static(
            str(model_path),
            str(out),
            _reader(quant, batches, input_name),
            quant_format=quant.QuantFormat.QDQ,
            op_types_to_quantize=ops,
            per_channel=True,
            weight_type=quant.QuantType.QInt8,
            calibrate_method=_calibration_method(quant, method),
            extra_options={
                **extra_options,
                **({"CalibPercentile": 99.999} if method == "percentile" else {}),
            },
            **recipe,
        )
    except (ValueError, RuntimeError) as exc:
        raise EngineBuildError(f"ONNX Runtime could not quantize {src}: {exc}") from exc


def _quantize_modelopt(src, out, batches, input_name, exclude_op_types, method) -> None:
    """NVIDIA ModelOpt's TensorRT-aware placement of Q/DQ. Untested here: not installable on CI."""
    mq = require("modelopt.onnx.quantization", purpose="int8 quantization with ModelOpt")
    mq.quantize(
        onnx_path=str(src),
        quantize_mode="int8",
        calibration_data={input_name: np.concatenate(batches)},
        calibration_method="max" if method == "minmax" else "entropy",
        op_types_to_exclude=list(exclude_op_types),
        high_precision_dtype="fp32",  # the rest stays fp32, as on the ONNX Runtime path
        output_path=str(out),
    )
