"""The fp16 pass (rtpose.deploy.fp16) on the tiny network of tiny_onnx.py.

Tolerance, relative to the fp32 output's largest magnitude: fp16 <= 5e-3: weights and activations
rounded to 11-bit mantissas (2^-11 = 4.9e-4 each) through three convolutions and a resize;
measured ~5e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

import tiny_onnx as tiny  # noqa: E402  (tests/deploy: on sys.path under pytest)
from tiny_onnx import F16, F32, SIZE  # noqa: E402

from rtpose.deploy.fp16 import FP32_OPS, convert_fp16  # noqa: E402
from rtpose.errors import EngineBuildError  # noqa: E402


def test_fp16_weights_io_and_kept_ops(fp32_model, tmp_path):
    before = tiny.digest(fp32_model)
    dst = convert_fp16(fp32_model, tmp_path / "tiny-fp16.onnx", keep_fp32_tail=False)
    assert tiny.digest(fp32_model) == before  # the source is never modified
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    assert [i.type.tensor_type.elem_type for i in (*graph.input, *graph.output)] == [F32, F32]

    consumers = tiny.consumers(graph)
    n_half = 0
    for init in graph.initializer:
        if init.data_type not in (F32, F16):
            continue  # shape constants
        users = consumers[init.name]
        fp32_use = all(
            n.op_type in FP32_OPS or (n.op_type == "Resize" and s == 2) for n, s in users
        )
        assert init.data_type == (F32 if fp32_use else F16), (
            init.name,
            [n.op_type for n, _ in users],
        )
        n_half += init.data_type == F16
    assert n_half >= 6  # 3 conv weights + 3 biases

    types = tiny.tensor_types(model)
    ops = {n.op_type for n in graph.node}
    assert {"Conv", "Resize", "Softmax", "Cast"} <= ops
    for node in graph.node:
        if node.op_type in FP32_OPS:  # computes in fp32: its float inputs and outputs are fp32
            assert all(types[t] == F32 for t in (*node.input, *node.output) if t), node.name
        elif node.op_type == "Conv":
            assert all(types[t] == F16 for t in node.input), node.name
        elif node.op_type == "Resize":
            assert types[node.input[0]] == F16 and types[node.input[2]] == F32  # scales: spec


def test_fp16_output_tail_stays_fp32(fp32_model, tmp_path):
    """After the head conv, the decode-like tail (Reshape, Softmax, Mul, Concat) runs in fp32."""
    model = onnx.load(str(convert_fp16(fp32_model, tmp_path / "tiny-fp16.onnx")))
    types = tiny.tensor_types(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    head = producer[producer[model.graph.output[0].name].input[0]]  # Concat <- Cast <- head
    assert head.op_type == "Cast" and types[head.input[0]] == F16
    assert producer[head.input[0]].op_type == "Conv"  # the head conv still computes in fp16
    for node in model.graph.node:
        if node.op_type in ("Mul", "Concat", "Softmax") and types.get(node.output[0]) != 7:
            assert all(types[t] == F32 for t in node.input if types.get(t) in (F16, F32))
            assert types[node.output[0]] == F32, node.name


def test_fp16_runs_in_onnxruntime_close_to_fp32(fp32_model, tmp_path):
    dst = convert_fp16(fp32_model, tmp_path / "tiny-fp16.onnx")
    x = np.random.default_rng(0).standard_normal((3, 3, SIZE, SIZE), dtype=np.float32)  # batch 3
    x0 = x.copy()
    ref, out = tiny.run(fp32_model, x), tiny.run(dst, x)
    np.testing.assert_array_equal(x, x0)
    assert out.dtype == np.float32 and out.shape == ref.shape == (3, 8, SIZE, SIZE)
    err = np.abs(out - ref).max() / np.abs(ref).max()
    assert 0 < err <= 5e-3  # > 0: the weights really were rounded to fp16


def test_fp16_without_fp32_io_and_with_other_kept_ops(fp32_model, tmp_path):
    dst = convert_fp16(
        fp32_model,
        tmp_path / "io16.onnx",
        keep_io_fp32=False,
        keep_fp32_ops=(),
        keep_fp32_tail=False,
    )
    model = onnx.load(str(dst))
    graph = model.graph
    assert [i.type.tensor_type.elem_type for i in (*graph.input, *graph.output)] == [F16, F16]
    types = tiny.tensor_types(model)
    softmax = next(n for n in graph.node if n.op_type == "Softmax")
    assert types[softmax.input[0]] == F16  # nothing kept fp32 any more
    x = np.random.default_rng(1).standard_normal((2, 3, SIZE, SIZE), dtype=np.float32)
    out = tiny.run(dst, x.astype(np.float16))
    ref = tiny.run(fp32_model, x)
    assert out.dtype == np.float16
    assert np.abs(out.astype(np.float32) - ref).max() / np.abs(ref).max() <= 5e-3

    # keeping Conv in fp32 keeps its weights fp32 and feeds it fp32
    dst = convert_fp16(fp32_model, tmp_path / "conv32.onnx", keep_fp32_ops=("Conv",))
    model = onnx.load(str(dst))
    types = tiny.tensor_types(model)
    for node in (n for n in model.graph.node if n.op_type == "Conv"):
        assert all(types[t] == F32 for t in node.input)


def test_fp16_errors_leave_no_file(fp32_model, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"definitely not protobuf \x00\xff" * 10)
    dst = tmp_path / "out" / "bad-fp16.onnx"
    with pytest.raises(EngineBuildError, match=r"bad\.onnx is not a valid ONNX model"):
        convert_fp16(bad, dst)
    assert not dst.exists() and not list(dst.parent.iterdir())  # no partial file either
    with pytest.raises(FileNotFoundError, match=r"missing\.onnx"):
        convert_fp16(tmp_path / "missing.onnx", dst)
    with pytest.raises(ValueError, match="must differ from src"):
        convert_fp16(fp32_model, fp32_model)
    with pytest.raises(TypeError, match="sequence of op types"):
        convert_fp16(fp32_model, dst, keep_fp32_ops="Softmax")
    assert not dst.exists()
