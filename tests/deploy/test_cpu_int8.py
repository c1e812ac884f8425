"""The CPU int8 recipe (rtpose.deploy.int8, target="cpu") on the tiny network of tiny_onnx.py,
and the gated, cached CPU build (rtpose.deploy.cpu_build) of the real YOLO11n-pose (slow).

Tolerance on the tiny net, relative to the fp32 output's largest magnitude: <= 5e-2, as for the
TensorRT recipe (test_int8.py): uint8 steps of 1/255 of each activation's calibrated range at
the two body convolutions; the head runs in float.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

import tiny_onnx as tiny  # noqa: E402  (tests/deploy: on sys.path under pytest)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from rtpose.deploy import int8 as int8_mod  # noqa: E402
from rtpose.deploy.calibration import calibration_batches, calibration_frames  # noqa: E402
from rtpose.deploy.cpu_build import build_cpu_model  # noqa: E402
from rtpose.deploy.int8 import attention_island, float_tail, quantize_int8  # noqa: E402
from rtpose.errors import EngineBuildError  # noqa: E402


@pytest.fixture(scope="module")
def video_frames(sample_video) -> list[np.ndarray]:
    return calibration_frames(sample_video, count=8)


def _quantize(fp32_model, video_frames, dst, monkeypatch, *, vnni: bool):
    monkeypatch.setattr(int8_mod, "has_int8_dot_product", lambda: vnni)
    batches = calibration_batches(video_frames[::2], tiny.preprocess, batch=2)
    return quantize_int8(fp32_model, dst, batches, input_name="images", target="cpu")


def test_float_tail_is_what_reaches_no_conv():
    def node(op, ins, out):
        return helper.make_node(op, ins, [out], name=out)

    nodes = [
        node("Conv", ["x", "w1"], "c1"), node("Relu", ["c1"], "r1"),
        node("Conv", ["r1", "w2"], "c2"),  # the head: nothing after it is a Conv
        node("Sigmoid", ["c2"], "s"), node("Mul", ["c2", "s"], "y"),
        node("Shape", ["r1"], "shape"),  # a side branch of the body that reaches no Conv
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    assert float_tail(helper.make_model(graph)) == ["c2", "s", "y", "shape"]


def test_attention_island_ends_at_its_convolutions_and_at_shape_reads():
    def node(op, ins, out):
        return helper.make_node(op, ins, [out], name=out)

    nodes = [
        node("Conv", ["x", "w0"], "body"), node("Sigmoid", ["body"], "sig"),
        node("Mul", ["body", "sig"], "silu"),  # a SiLU of the body: not part of the block
        node("Conv", ["silu", "w1"], "qkv"), node("Split", ["qkv"], "q"),
        node("Transpose", ["q"], "qt"), node("MatMul", ["qt", "q"], "att"),
        node("Mul", ["att", "scale"], "scaled"), node("Softmax", ["scaled"], "p"),
        node("MatMul", ["q", "p"], "mixed"),
        node("Shape", ["silu"], "shape"),  # the reshape target is read from the body
        node("Reshape", ["mixed", "shape"], "back"), node("Conv", ["back", "w2"], "proj"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("proj", TensorProto.FLOAT, None)],
    )  # fmt: skip
    island = attention_island(helper.make_model(graph))
    assert island == ["qkv", "q", "qt", "att", "scaled", "p", "mixed", "shape", "back", "proj"]


def test_cpu_recipe_uint8_activations_int8_weights_float_head(
    fp32_model, video_frames, tmp_path, monkeypatch
):
    dst = _quantize(fp32_model, video_frames, tmp_path / "q.onnx", monkeypatch, vnni=True)
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == 3
    body, head = convs[:2], convs[2]
    for conv in body:
        act, weight = producer[conv.input[0]], producer[conv.input[1]]
        assert act.op_type == weight.op_type == "DequantizeLinear"
        assert inits[act.input[2]].dtype == np.uint8  # asymmetric uint8 activations
        q_weight, scale = inits[weight.input[0]], inits[weight.input[1]]
        assert q_weight.dtype == np.int8 and scale.shape == (q_weight.shape[0],)
        assert not inits[weight.input[2]].any()  # symmetric weights
        assert np.abs(q_weight).max() == 127  # 8-bit weights with VNNI
    # the head convolution and everything after it stay float; so do the outputs
    assert all(producer[t].op_type != "DequantizeLinear" for t in head.input if t in producer)
    assert not any(n.op_type == "Softmax" and n.input[0] in producer
                   and producer[n.input[0]].op_type == "DequantizeLinear"
                   for n in graph.node)  # fmt: skip
    for out in graph.output:
        assert producer[out.name].op_type != "DequantizeLinear"

    x = np.concatenate([tiny.preprocess(f) for f in video_frames[1::2][:3]])  # unseen frames
    ref, got = tiny.run(fp32_model, x), tiny.run(dst, x)
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert 0 < err <= 5e-2


def test_cpu_recipe_keeps_7_bit_weights_without_vnni(
    fp32_model, video_frames, tmp_path, monkeypatch
):
    dst = _quantize(fp32_model, video_frames, tmp_path / "q.onnx", monkeypatch, vnni=False)
    graph = onnx.load(str(dst)).graph
    weights = [
        numpy_helper.to_array(t)
        for t in graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and t.dims
    ]
    assert weights and max(int(np.abs(w).max()) for w in weights) == 64  # [-64, 64]: 7 bits


def test_cpu_target_rejects_other_precisions(tmp_path, capsys):
    with pytest.raises(ValueError, match="fp16 is not faster than fp32"):
        build_cpu_model("yolo11n-pose", precision="fp16", out=tmp_path)
    with pytest.raises(ValueError, match="fp32 needs no build"):
        build_cpu_model("yolo11n-pose", precision="fp32", out=tmp_path)
    with pytest.raises(ValueError, match="target must be"):
        quantize_int8(tmp_path / "a.onnx", tmp_path / "b.onnx", [], input_name="x",
                      target="gpu")  # fmt: skip
    from rtpose.cli.build import main

    assert main(["yolo11n-pose", "--target", "cpu", "--precision", "fp16", "--out",
                 str(tmp_path)]) == 1  # fmt: skip
    assert "rtpose-build: error: the CPU target builds int8 models only" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_yolo11n_pose_cpu_int8_is_gated_and_cached(tmp_path, default_weights, sample_video,
                                                    monkeypatch, capsys):  # fmt: skip
    lines = []
    result = build_cpu_model("yolo11n-pose", out=tmp_path, progress=lines.append)
    assert [line[:5] for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert not result.reused and not result.forced
    assert result.engine.suffix == ".onnx" and result.engine.parent == tmp_path
    manifest = json.loads(result.manifest.read_text())
    acc = manifest["gates"]["onnxruntime"]
    assert list(manifest["gates"]) == ["onnxruntime"]
    # measured 0.980 over 26 persons, none lost (the TensorRT recipe: 0.94 on the same frames)
    assert acc["passed"] and acc["oks_mean"] >= 0.95 and acc["missed"] == 0
    assert acc["instances"] >= 20
    assert manifest["model_name"] == "yolo11n-pose" and manifest["precision"] == "int8"
    assert manifest["onnxruntime"] == ort.__version__
    from rtpose.assets import sha256_of

    assert manifest["model_sha256"] == sha256_of(result.engine)
    # the int8 model runs the stream's rectangular input, batch 1 and 2
    sess = ort.InferenceSession(str(result.engine), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"images": np.zeros((2, 3, 384, 640), np.float32)})[0].shape[0] == 2

    def no_quantize(*args, **kwargs):
        raise AssertionError("a cache hit must not recalibrate")

    monkeypatch.setattr("rtpose.deploy.cpu_build.calibrate_int8", no_quantize)
    again = build_cpu_model("yolo11n-pose", out=tmp_path)
    assert again.reused and again.engine == result.engine and again.accuracy == acc
    from rtpose.cli.build import main

    assert main(["yolo11n-pose", "--target", "cpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "yolo11n-pose int8 (cpu)" in out and "(reused from the cache)" in out
    assert f"mean OKS {acc['oks_mean']:.4f} vs fp32, passed" in out
    monkeypatch.undo()

    # OpenVINO rounds its own way: the model is gated again as OpenVINO runs it, once, and the
    # report joins the manifest (OpenVINO 2026.4.1 measured: mean OKS 0.924, 1 person missed)
    if importlib.util.find_spec("openvino") is not None:
        try:
            build_cpu_model("yolo11n-pose", out=tmp_path, backend="openvino")
            passed = True
        except EngineBuildError as exc:
            assert "use backend='onnxruntime' for int8" in str(exc)
            passed = False
        gates = json.loads(result.manifest.read_text())["gates"]
        assert set(gates) == {"onnxruntime", "openvino"} and gates["onnxruntime"] == acc
        assert gates["openvino"]["passed"] is passed
        assert gates["openvino"]["candidate"] == "int8 ONNX (openvino)"

    # a gate it cannot pass: nothing is written; with force it is kept, and said so
    strict = {"out": tmp_path / "strict", "calib_frames": 8, "eval_frames": 4, "min_oks": 1.0}
    with pytest.raises(EngineBuildError, match="failed the accuracy gate"):
        build_cpu_model("yolo11n-pose", **strict)
    assert not list((tmp_path / "strict").glob("*"))
    forced = build_cpu_model("yolo11n-pose", force=True, **strict)
    assert forced.forced and json.loads(forced.manifest.read_text())["forced"]
    failed = r"int8 CPU model .* failed the accuracy gate on onnxruntime"
    with pytest.raises(EngineBuildError, match=failed):
        build_cpu_model("yolo11n-pose", **strict)
