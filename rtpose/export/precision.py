"""Precision lives in the ONNX file: fp16 mixed precision, int8 Q/DQ, and calibration frames.

TensorRT 11 and TensorRT-RTX build strongly typed networks only: there is no FP16/INT8 builder
flag and no calibrator. FP16 therefore comes from an ONNX whose weights and activations are
float16 (with the numerically sensitive ops kept float32 behind Cast nodes), INT8 from explicit
QuantizeLinear/DequantizeLinear pairs (ONNX Runtime static quantization in QDQ format, symmetric,
per-channel weights, calibrated on real frames). The same files serve TensorRT 10, which honours
both. See docs/design GPU.md; Q/DQ semantics follow Jacob et al., "Quantization and Training of
Neural Networks for Efficient Integer-Arithmetic-Only Inference" (CVPR 2018).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from rtpose._deps import require
from rtpose.errors import DecodeError, EngineBuildError

log = logging.getLogger(__name__)

# Ops computed in float32 inside an fp16 network (their inputs are cast up, outputs cast down).
FP32_OPS: tuple[str, ...] = (
    # exp() of a logit above ~11 overflows fp16 (max 65504): YOLO11-pose's DFL softmax over 16
    # box bins and attention softmax over H*W keys normalise sums of such terms.
    "Softmax",
    "LogSoftmax",
    # exp overflows above 11, pow/sqrt of large sums overflow, log/reciprocal lose relative
    # precision near 0 (fp16 normals stop at 6e-5).
    "Exp",
    "Log",
    "Pow",
    "Sqrt",
    "Reciprocal",
    # sums over whole feature maps (64x48 = 3072 heatmap pixels of magnitude ~30) leave fp16's range
    "ReduceSum",
    "ReduceSumSquare",
    "ReduceL2",
    "ReduceLogSumExp",
    # variance + eps under a square root: eps (1e-5) is below fp16's normal range. Our exports fold
    # BN into Conv, so these appear only in networks exported in training mode or with LN/IN/GN.
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "GroupNormalization",
)
# Deliberately fp16: Sigmoid (bounded output, fp16 keeps 3 decimals near 0.5 and saturates
# gracefully), Resize (bilinear weights average fp16 values, staying in range; its scales input
# stays float32 because the ONNX spec requires it), GlobalAveragePool/ReduceMean (a mean stays in
# the input's range and TensorRT accumulates in fp32), Conv/Gemm/MatMul (TensorRT accumulates fp16
# products in fp32) and Div (attention's 1/sqrt(d) scaling stays in range).

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

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

# (op type) -> input slots the ONNX spec types as float32 whatever the data type
_FLOAT32_SLOTS: dict[str, frozenset[int]] = {
    "Resize": frozenset({1, 2}),  # roi, scales
    "Upsample": frozenset({1}),  # scales
    "NonMaxSuppression": frozenset({0, 1, 3, 4}),  # boxes, scores, iou/score thresholds
}
# (op type) -> input slots that accept any data type (no Cast needed in front of them)
_ANY_TYPE_SLOTS: dict[str, frozenset[int]] = {
    "Cast": frozenset({0}),
    "Shape": frozenset({0}),
    "Size": frozenset({0}),
}
# ops whose float inputs the ONNX spec does not allow in fp16 (Range: anchor grids; CumSum before
# opset 14): always computed in fp32, whatever keep_fp32_ops says
_SPEC_FP32_OPS = frozenset({"Range", "CumSum"})
_FP16_MAX = float(np.finfo(np.float16).max)


# ------------------------------------------------------------------------------------- files


def _load_model(src: Path):
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
            f"{src} is not a valid ONNX model ({exc}); re-export it (rtpose.export.onnx)"
        ) from exc
    return model


def _check_paths(src: str | os.PathLike, dst: str | os.PathLike) -> tuple[Path, Path]:
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"dst must differ from src ({src}): the source model is never modified")
    dst.parent.mkdir(parents=True, exist_ok=True)
    return src, dst


def _save_atomic(model, dst: Path) -> Path:
    """Check ``model`` strictly (types included) and write it to ``dst`` atomically."""
    onnx = require("onnx", purpose="precision conversion of ONNX models")
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise EngineBuildError(
            f"the converted model for {dst.name} fails onnx.checker ({exc}); this is an rtpose "
            "bug for this graph, please report it with the source model"
        ) from exc
    fd, tmp = tempfile.mkstemp(prefix=dst.stem + "-", suffix=".onnx.part", dir=dst.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dst


# -------------------------------------------------------------------------------------- fp16


def convert_fp16(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    keep_io_fp32: bool = True,
    keep_fp32_ops: Sequence[str] = FP32_OPS,
    keep_fp32_tail: bool = True,
) -> Path:
    """Write a mixed-precision copy of the ONNX model ``src`` to ``dst``.

    Weights and activations become float16, except the inputs and outputs of ops in
    ``keep_fp32_ops`` (Cast nodes go around them) and spec-mandated float32 inputs (Resize
    scales). Graph inputs/outputs stay float32 with a Cast at the edge unless ``keep_io_fp32`` is
    False. This is the form strongly typed TensorRT (11, RTX) builds as FP16. Weights beyond the
    fp16 range are clipped to +-65504 with a warning. Graphs with control flow (If/Loop/Scan) are
    not supported.

    With ``keep_fp32_tail`` the output tail (every op after the last Conv/Gemm/MatMul on all its
    paths to an output) also stays fp32: it is cheap elementwise work, and it is where values
    take pixel units (YOLO11-pose decodes boxes and keypoints there; fp16 steps are 0.5 px at
    512-1023 px, which measured 2 px errors on the decoded keypoints).

    Returns:
        ``dst``, written atomically (nothing appears there on failure).
    """
    if isinstance(keep_fp32_ops, str):
        raise TypeError(
            f"keep_fp32_ops must be a sequence of op types, got the string {keep_fp32_ops!r}"
        )
    src, dst = _check_paths(src, dst)
    model = _load_model(src)
    keep = frozenset(keep_fp32_ops) | _SPEC_FP32_OPS
    _to_fp16(model, keep_io_fp32=keep_io_fp32, keep_fp32_ops=keep, keep_fp32_tail=keep_fp32_tail)
    _save_atomic(model, dst)
    log.info("fp16 model %s -> %s", src.name, dst)
    return dst


def _to_fp16(
    model, *, keep_io_fp32: bool, keep_fp32_ops: frozenset[str], keep_fp32_tail: bool
) -> None:
    """Rewrite ``model`` (a loaded copy) in place to mixed fp16/fp32."""
    onnx = require("onnx", purpose="fp16 conversion")
    from onnx import TensorProto, helper, numpy_helper

    F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
    graph = model.graph
    for node in graph.node:
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        ):
            raise EngineBuildError(
                f"convert_fp16 does not support control flow; node {node.name!r} ({node.op_type}) "
                "has a subgraph. Export the network without data-dependent control flow."
            )
    _constants_to_initializers(graph)
    init_names = {t.name for t in graph.initializer}
    # old-IR models list initializers as inputs too; they are constants here
    io_inputs = [i for i in graph.input if i.name not in init_names]
    del graph.input[:]
    graph.input.extend(io_inputs)

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    ig = inferred.graph
    is_float = {
        v.name
        for v in (*ig.input, *ig.value_info, *ig.output)
        if v.type.tensor_type.elem_type == F32
    } | {t.name for t in graph.initializer if t.data_type == F32}

    fp32_node = [n.op_type in keep_fp32_ops for n in graph.node]
    if keep_fp32_tail:
        fp32_node = [a or b for a, b in zip(fp32_node, _output_tail(graph))]

    def wanted(node, slot: int, node_is_fp32: bool) -> int | None:
        if slot in _ANY_TYPE_SLOTS.get(node.op_type, ()):
            return None
        if node_is_fp32 or slot in _FLOAT32_SLOTS.get(node.op_type, ()):
            return F32
        return F16

    # the data type every float tensor will be stored in
    stored: dict[str, int] = {}
    io_type = F32 if keep_io_fp32 else F16
    for inp in graph.input:
        if inp.name in is_float:
            stored[inp.name] = io_type
            inp.type.tensor_type.elem_type = io_type
    for node, keep in zip(graph.node, fp32_node):
        for out in node.output:
            if out in is_float:
                stored[out] = F32 if keep else F16
    wants: dict[str, set[int]] = {}
    for node, keep in zip(graph.node, fp32_node):
        for slot, name in enumerate(node.input):
            if name in is_float and (w := wanted(node, slot, keep)) is not None:
                wants.setdefault(name, set()).add(w)
    for out in graph.output:
        if out.name in is_float:
            wants.setdefault(out.name, set()).add(io_type)

    casts: dict[tuple[str, int], str] = {}  # (tensor, dtype) -> name of that tensor in dtype
    used = {n for node in graph.node for n in (*node.input, *node.output)} | init_names

    def fresh(base: str) -> str:
        name, i = base, 1
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        return name

    new_inits = []
    for init in graph.initializer:
        w = wants.get(init.name, set())
        if init.data_type != F32 or F16 not in w:
            stored[init.name] = init.data_type
            continue
        half = _to_half(numpy_helper.to_array(init), init.name)
        if F32 in w:  # also read in fp32: keep the exact weights and add an fp16 copy
            stored[init.name] = F32
            copy = numpy_helper.from_array(half, fresh(init.name + "_fp16"))
            casts[(init.name, F16)] = copy.name
            new_inits.append(copy)
        else:
            stored[init.name] = F16
            init.CopyFrom(numpy_helper.from_array(half, init.name))
    graph.initializer.extend(new_inits)

    # graph outputs keep their names; the fp16 producer writes to an internal name
    renamed: dict[str, str] = {}
    for out in graph.output:
        if out.name in stored and stored[out.name] != io_type:
            renamed[out.name] = fresh(out.name + ("_fp16" if io_type == F32 else "_fp32"))
            stored[renamed[out.name]] = stored[out.name]
        if out.name in is_float:
            out.type.tensor_type.elem_type = io_type
    for node in graph.node:
        node.output[:] = [renamed.get(n, n) for n in node.output]
        node.input[:] = [renamed.get(n, n) for n in node.input]

    def as_type(name: str, to: int, before: list) -> str:
        if stored.get(name, to) == to:
            return name
        if (name, to) not in casts:
            casts[(name, to)] = fresh(name + ("_fp16" if to == F16 else "_fp32"))
            before.append(helper.make_node("Cast", [name], [casts[(name, to)]], to=to,
                                           name=fresh(f"Cast_{casts[(name, to)]}")))  # fmt: skip
        return casts[(name, to)]

    nodes = []
    for node, keep in zip(list(graph.node), fp32_node):
        if not keep:
            _attributes_to_fp16(node, is_float, renamed)
        for slot, name in enumerate(node.input):
            if name and name in stored and (w := wanted(node, slot, keep)) is not None:
                node.input[slot] = as_type(name, w, nodes)
        nodes.append(node)
    for public, internal in renamed.items():
        nodes.append(helper.make_node("Cast", [internal], [public], to=io_type,
                                      name=fresh(f"Cast_{public}")))  # fmt: skip
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # stale float32 annotations; shape inference rebuilds them


_WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def _output_tail(graph) -> list[bool]:
    """For each node: does it lie after the last weighted op on every path to a graph output?"""
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(i)
    outputs = {o.name for o in graph.output}
    tail = [False] * len(graph.node)
    for i in reversed(range(len(graph.node))):  # consumers come later in topological order
        node = graph.node[i]
        uses = [j for o in node.output for j in consumers.get(o, [])]
        feeds = bool(uses) or any(o in outputs for o in node.output)
        tail[i] = node.op_type not in _WEIGHTED_OPS and feeds and all(tail[j] for j in uses)
    return tail


def _to_half(array: np.ndarray, name: str) -> np.ndarray:
    over = np.abs(array) > _FP16_MAX
    if over.any():
        log.warning(
            "%d values of %s exceed the fp16 range; clipped to +-%g", over.sum(), name, _FP16_MAX
        )
    return np.clip(array, -_FP16_MAX, _FP16_MAX).astype(np.float16)


def _attributes_to_fp16(node, is_float: set[str], renamed: dict[str, str]) -> None:
    """Float32 constants and dtype attributes of a node that now computes in fp16."""
    from onnx import TensorProto, helper, numpy_helper

    outputs_float = any(o in is_float or o in renamed.values() for o in node.output)
    for attr in node.attribute:
        if attr.type == attr.TENSOR and attr.t.data_type == TensorProto.FLOAT:
            attr.t.CopyFrom(numpy_helper.from_array(
                _to_half(numpy_helper.to_array(attr.t), f"{node.name}.{attr.name}"), attr.t.name
            ))  # fmt: skip
        elif attr.name in ("to", "dtype") and attr.i == TensorProto.FLOAT and outputs_float:
            attr.i = TensorProto.FLOAT16
    if node.op_type == "ConstantOfShape" and outputs_float and not node.attribute:
        # no value attribute means float32 zeros
        node.attribute.append(helper.make_attribute(
            "value", numpy_helper.from_array(np.zeros(1, np.float16))
        ))  # fmt: skip


def _constants_to_initializers(graph) -> None:
    """Float Constant nodes become initializers, so they are converted like weights."""
    from onnx import TensorProto, numpy_helper

    keep = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1:
            attr = node.attribute[0]
            value = None
            if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                value = numpy_helper.to_array(attr.t)
            elif attr.name == "value_float":
                value = np.array(attr.f, np.float32)
            elif attr.name == "value_floats":
                value = np.array(list(attr.floats), np.float32)
            if value is not None:
                graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
                continue
        keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


# -------------------------------------------------------------------------------------- int8


def quantize_int8(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    calibration: Sequence[np.ndarray],
    *,
    input_name: str,
    exclude_op_types: Sequence[str] = INT8_EXCLUDE_OPS,
    method: Literal["minmax", "percentile"] = "minmax",
    quantizer: Literal["auto", "onnxruntime", "modelopt"] = "auto",
) -> Path:
    """Write an int8 Q/DQ copy of the ONNX model ``src`` to ``dst``, calibrated on real inputs.

    Symmetric int8 activations (one scale per tensor) and weights (one scale per output channel),
    zero points 0, QDQ format: the explicit quantization TensorRT builds. Biases stay float32
    (TensorRT fuses them into the int8 conv; it has no int32 bias dequantisation). Inputs and
    outputs stay float32.

    Args:
        calibration: batches fed to ``input_name``, each (N, C, H, W) float32 and already
            preprocessed (see :func:`calibration_batches`).
        exclude_op_types: op types left in float (default :data:`INT8_EXCLUDE_OPS`).
        method: "minmax" (default) takes each activation's largest magnitude seen. It is right for
            the few dozen frames a user calibrates on and for our outputs, whose peaks *are* the
            signal: a percentile clips heatmap maxima and flattens the argmax. "percentile"
            (99.999 %) suits activations with rare outliers and many calibration frames.
        quantizer: "auto" uses NVIDIA ModelOpt (``modelopt.onnx.quantization``) when importable,
            otherwise ONNX Runtime. The ModelOpt path is untested here (not installable on the
            CI machines).

    Returns:
        ``dst``, written atomically (nothing appears there on failure).
    """
    if isinstance(exclude_op_types, str):
        raise TypeError(
            f"exclude_op_types must be a sequence of op types, got {exclude_op_types!r}"
        )
    if method not in ("minmax", "percentile"):
        raise ValueError(f"method must be 'minmax' or 'percentile', got {method!r}")
    if quantizer not in ("auto", "onnxruntime", "modelopt"):
        raise ValueError(
            f"quantizer must be 'auto', 'onnxruntime' or 'modelopt', got {quantizer!r}"
        )
    src, dst = _check_paths(src, dst)
    model = _load_model(src)
    inputs = [
        i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    if input_name not in inputs:
        raise ValueError(f"{src} has no input {input_name!r}; its inputs are {inputs}")
    batches = _check_calibration(calibration)
    if quantizer == "auto":
        try:
            require("modelopt.onnx.quantization")
            quantizer = "modelopt"
        except ImportError:
            quantizer = "onnxruntime"
    log.info("int8 calibration of %s on %d batches with %s (%s)", src.name, len(batches),
             quantizer, method)  # fmt: skip

    src, dst = src.resolve(), dst.resolve()
    work = Path(tempfile.mkdtemp(prefix=dst.stem + "-", suffix=".int8.part", dir=dst.parent))
    cwd = os.getcwd()
    try:
        out = work / "quantized.onnx"
        # ORT's symbolic shape inference drops sym_shape_infer_temp.onnx and <uuid>.data files
        # into the working directory when it gives up: keep them in the work directory
        os.chdir(work)
        if quantizer == "modelopt":
            _quantize_modelopt(src, out, batches, input_name, exclude_op_types, method)
        else:
            _quantize_onnxruntime(src, out, work, batches, input_name, exclude_op_types, method)
        os.chdir(cwd)
        quantized = _load_model(out)
        _save_atomic(quantized, dst)
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
                "build batches with calibration_batches()"
            )
        if b.shape[1:] != batches[0].shape[1:]:
            raise ValueError(
                f"calibration batch {i} has sample shape {b.shape[1:]}, batch 0 has "
                f"{batches[0].shape[1:]}: all batches must share (C, H, W)"
            )
    return batches


def _quantize_onnxruntime(src, out, work, batches, input_name, exclude_op_types, method) -> None:
    quant = require("onnxruntime.quantization", purpose="int8 quantization")
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    class Reader(quant.CalibrationDataReader):
        def __init__(self):
            self._it = iter(batches)

        def get_next(self):
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

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
    calibrate = {
        "minmax": quant.CalibrationMethod.MinMax,
        "percentile": quant.CalibrationMethod.Percentile,
    }[method]
    try:
        quant.quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=quant.QuantFormat.QDQ,
            op_types_to_quantize=ops,
            per_channel=True,
            activation_type=quant.QuantType.QInt8,
            weight_type=quant.QuantType.QInt8,
            calibrate_method=calibrate,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                # Q/DQ on op inputs only, TensorRT's recommended placement: it fuses the
                # requantisation into the producer, and a network output is never rounded to int8
                "OpTypesToExcludeOutputQuantization": ops,
                **({"CalibPercentile": 99.999} if method == "percentile" else {}),
            },
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


# ------------------------------------------------------------------------------- calibration


def calibration_frames(source: str | os.PathLike, *, count: int) -> list[np.ndarray]:
    """``count`` frames evenly spaced through a video file or a folder of images.

    A folder contributes its ``*.jpg/*.jpeg/*.png/*.bmp`` files in sorted name order. A source
    with fewer than ``count`` frames yields all of them (with a warning).

    Returns:
        frames, each (H, W, 3) uint8 BGR.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"calibration source not found: {source}")
    if source.is_dir():
        frames = _folder_frames(source, count)
    elif source.suffix.lower() in IMAGE_SUFFIXES:
        frames = _folder_frames(source, count, files=[source])
    else:
        frames = _video_frames(source, count)
    if len(frames) < count:
        log.warning("calibration source %s has only %d frames (asked for %d)", source,
                    len(frames), count)  # fmt: skip
    return frames


def _spaced(total: int, count: int) -> list[int]:
    """Indices of ``count`` evenly spaced items out of ``total`` (first and last included)."""
    if total <= count:
        return list(range(total))
    return np.linspace(0, total - 1, count).round().astype(int).tolist()


def _folder_frames(folder: Path, count: int, files: list[Path] | None = None) -> list[np.ndarray]:
    cv2 = require("cv2", purpose="reading calibration images")
    if files is None:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(
            f"calibration source {folder} has no frames: no {'/'.join(IMAGE_SUFFIXES)} files in it"
        )
    frames = []
    for i in _spaced(len(files), count):
        image = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
        if image is None:
            raise DecodeError(f"calibration image {files[i]} could not be decoded")
        frames.append(image)
    return frames


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    cv2 = require("cv2", purpose="reading calibration frames from a video")
    # the container's frame count can be wrong (or 0); once a pass has counted the frames, a
    # second pass picks the right ones
    total = _reported_count(cv2, path)
    if total <= 0:
        total = _video_pass(cv2, path, set())[0]
    n, frames = _video_pass(cv2, path, set(_spaced(total, count)))
    if n != total:
        n, frames = _video_pass(cv2, path, set(_spaced(n, count)))
    if n == 0:
        raise ValueError(
            f"calibration source {path} has no frames (not a video OpenCV can decode?)"
        )
    return frames


def _reported_count(cv2, path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


def _video_pass(cv2, path: Path, wanted: set[int]) -> tuple[int, list[np.ndarray]]:
    """Decode the whole video; return the number of frames and those whose index is wanted."""
    cap = cv2.VideoCapture(str(path))
    frames, n = [], 0
    try:
        while cap.isOpened() and cap.grab():
            if n in wanted:
                ok, frame = cap.retrieve()
                if not ok:
                    raise DecodeError(f"frame {n} of {path} could not be decoded")
                frames.append(frame)
            n += 1
    finally:
        cap.release()
    return n, frames


def calibration_batches(
    frames: Sequence[np.ndarray],
    preprocess: Callable[[np.ndarray], np.ndarray],
    *,
    batch: int,
) -> list[np.ndarray]:
    """Preprocess frames as the model does at run time and pack the samples into batches.

    Args:
        frames: (H, W, 3) uint8 BGR frames (see :func:`calibration_frames`).
        preprocess: one frame -> (n, 3, h, w) float32 network inputs: the whole frame for a
            bottom-up model (n = 1), every person crop for a top-down one (n >= 0).
        batch: samples per batch; the last batch may be smaller.

    Returns:
        batches, each (<= batch, 3, h, w) float32.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    samples = []
    for i, frame in enumerate(frames):
        x = preprocess(frame)
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype != np.float32:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"preprocess must return an (n, 3, h, w) float32 array; for frame {i} "
                             f"it returned {got}")  # fmt: skip
        if samples and len(x) and x.shape[1:] != samples[0].shape[1:]:
            raise ValueError(
                f"preprocess returned samples of shape {x.shape[1:]} for frame {i} and "
                f"{samples[0].shape[1:]} before: calibration needs one input size"
            )
        if len(x):
            samples.append(x)
    if not samples:
        raise ValueError(f"preprocess produced no samples from {len(frames)} frames (no persons "
                         "found in any frame?): calibrate on frames that show people")  # fmt: skip
    stacked = np.concatenate(samples)  # (S, 3, h, w)
    return [np.ascontiguousarray(stacked[i : i + batch]) for i in range(0, len(stacked), batch)]
