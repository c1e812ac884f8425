"""The fp16 pass: a mixed-precision copy of an ONNX model, float16 except where float16 breaks.

Precision lives in the ONNX file. TensorRT 11 and TensorRT-RTX build strongly typed networks only
(there is no FP16 builder flag), so a network runs in fp16 exactly where its ONNX tensors are
float16; TensorRT 10 builds the same file the same way. :func:`convert_fp16` stores weights and
activations as float16 and keeps float32, behind Cast nodes, the ops whose values leave fp16's
range or lose the precision the result needs: exponentials, sums over whole feature maps,
normalisations, and the output tail where values take pixel units. Keeping such ops in float32
while the bulk of the arithmetic runs in float16 is the mixed-precision scheme of Micikevicius et
al., "Mixed Precision Training" (ICLR 2018); :data:`FP32_OPS` gives the reason per op.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rtpose._deps import require
from rtpose.deploy.onnx_files import check_paths, load_model, save_atomic
from rtpose.errors import EngineBuildError

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
    src, dst = check_paths(src, dst)
    model = load_model(src)
    keep = frozenset(keep_fp32_ops) | _SPEC_FP32_OPS
    _to_fp16(model, keep_io_fp32=keep_io_fp32, keep_fp32_ops=keep, keep_fp32_tail=keep_fp32_tail)
    save_atomic(model, dst)
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
