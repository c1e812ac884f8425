"""rtpose._cpu: thread pools are sized from the process's CPU mask, not the machine."""

from __future__ import annotations

import os

import pytest

from rtpose._cpu import usable_cores


def test_usable_cores_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert usable_cores() == 1


def test_usable_cores_without_an_affinity_call(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cores() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert usable_cores() == 6


def test_onnxruntime_threads_default_to_the_usable_cores(monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    import rtpose.backends.onnxruntime as ortb

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    monkeypatch.setattr(ortb, "usable_cores", lambda: 1)
    backend = ortb.OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"])
    assert backend.session.get_session_options().intra_op_num_threads == 1
    backend = ortb.OnnxRuntimeBackend(path, threads=3, providers=["CPUExecutionProvider"])
    assert backend.session.get_session_options().intra_op_num_threads == 3


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("fpu sse avx2 avx512f avx512_vnni", True), ("avx2 avx_vnni", True), ("sse avx avx2", False)],
)
def test_int8_dot_product_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    from rtpose._cpu import has_int8_dot_product

    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\n")
    assert has_int8_dot_product(str(info)) is expected
    assert has_int8_dot_product(str(tmp_path / "missing")) is False
