"""The int8 pass (rtpose.deploy.int8) on the tiny network of tiny_onnx.py, calibrated on frames of
the sample video, and both passes on the real YOLO11n-pose (slow).

Tolerance, relative to the fp32 output's largest magnitude: int8 <= 5e-2: per-tensor activation
steps of 1/127 of the calibrated range at three conv inputs, on frames not used for calibration;
measured ~1e-2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

import tiny_onnx as tiny  # noqa: E402  (tests/deploy: on sys.path under pytest)
from onnx import numpy_helper  # noqa: E402
from tiny_onnx import F32, SIZE  # noqa: E402

from rtpose.deploy.calibration import calibration_batches, calibration_frames  # noqa: E402
from rtpose.deploy.fp16 import convert_fp16  # noqa: E402
from rtpose.deploy.int8 import quantize_int8  # noqa: E402
from rtpose.errors import EngineBuildError  # noqa: E402


@pytest.fixture(scope="module")
def video_frames(sample_video) -> list[np.ndarray]:
    return calibration_frames(sample_video, count=8)


@pytest.fixture(scope="module")
def int8_model(fp32_model, video_frames, tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    batches = calibration_batches(video_frames[::2], tiny.preprocess, batch=2)  # 4 frames
    copies = [b.copy() for b in batches]
    dst = quantize_int8(
        fp32_model, tmp_path_factory.mktemp("int8") / "tiny-int8.onnx", batches,
        input_name="images", quantizer="onnxruntime",
    )  # fmt: skip
    for b, c in zip(batches, copies):
        np.testing.assert_array_equal(b, c)  # calibration batches are not modified
    return dst, batches


def test_int8_qdq_per_channel_symmetric(int8_model):
    dst, _ = int8_model
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    assert [i.type.tensor_type.elem_type for i in (*graph.input, *graph.output)] == [F32, F32]
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}

    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == 3
    for conv in convs:
        act, weight = producer[conv.input[0]], producer[conv.input[1]]
        assert act.op_type == weight.op_type == "DequantizeLinear"
        assert producer[act.input[0]].op_type == "QuantizeLinear"  # Q -> DQ -> Conv
        q_weight, scale = inits[weight.input[0]], inits[weight.input[1]]
        assert q_weight.dtype == np.int8
        c_out = q_weight.shape[0]
        assert scale.shape == (c_out,) and (scale > 0).all()  # per output channel
        assert inits[act.input[1]].shape == ()  # activations: one scale per tensor
        assert conv.input[2] in inits and inits[conv.input[2]].dtype == np.float32  # float bias

    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    for node in qdq:  # symmetric: every zero point is an int8 zero
        zp = inits[node.input[2]]
        assert zp.dtype == np.int8 and not zp.any()
    # no network output is rounded to int8 (Q/DQ sit on op inputs only): neither the outputs
    # nor what their producer (the final Concat) reads come out of a DequantizeLinear
    for out in graph.output:
        last = producer[out.name]
        assert last.op_type != "DequantizeLinear"
        assert all(producer[t].op_type != "DequantizeLinear" for t in last.input if t in producer)


def test_int8_runs_in_onnxruntime_close_to_fp32(fp32_model, int8_model, video_frames):
    dst, _ = int8_model
    # frames the calibration did not see, at batch 3
    x = np.concatenate([tiny.preprocess(f) for f in video_frames[1::2][:3]])
    ref, out = tiny.run(fp32_model, x), tiny.run(dst, x)
    assert out.dtype == np.float32 and out.shape == ref.shape == (3, 8, SIZE, SIZE)
    err = np.abs(out - ref).max() / np.abs(ref).max()
    assert 0 < err <= 5e-2


def test_int8_errors_leave_no_file(fp32_model, int8_model, tmp_path):
    _, batches = int8_model
    dst = tmp_path / "out" / "q.onnx"
    with pytest.raises(ValueError, match=r"no input 'crops'.*\['images'\]"):
        quantize_int8(fp32_model, dst, batches, input_name="crops")
    with pytest.raises(ValueError, match="calibration is empty"):
        quantize_int8(fp32_model, dst, [], input_name="images")
    with pytest.raises(ValueError, match=r"batch 1 must be .*float32.*float64"):
        quantize_int8(fp32_model, dst, [batches[0], batches[0].astype(np.float64)],
                      input_name="images")  # fmt: skip
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(EngineBuildError, match=r"bad\.onnx"):
        quantize_int8(bad, dst, batches, input_name="images")
    assert not dst.exists() and not list(dst.parent.iterdir())


def test_tensorrt_rtx_builds_fp16_and_int8(fp32_model, int8_model, tmp_path):
    """The strongly typed builder accepts both files (builds on a CPU-only machine)."""
    trt = pytest.importorskip("tensorrt_rtx_bindings")
    fp16 = convert_fp16(fp32_model, tmp_path / "tiny-fp16.onnx")
    for path in (fp16, int8_model[0]):
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        assert parser.parse(path.read_bytes()), [
            parser.get_error(i).desc() for i in range(parser.num_errors)
        ]
        config = builder.create_builder_config()
        config.num_compute_capabilities = 1
        config.set_compute_capability(trt.ComputeCapability.SM80, 0)
        profile = builder.create_optimization_profile()
        profile.set_shape("images", (1, 3, SIZE, SIZE), (2, 3, SIZE, SIZE), (4, 3, SIZE, SIZE))
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        assert plan is not None and plan.nbytes > 0, path.name


@pytest.mark.slow
def test_yolo11n_pose_fp16_and_int8(default_weights, video_frames, tmp_path, monkeypatch):
    """The real network: its anchor grid comes from Range, which the ONNX spec keeps fp32.
    On anchors with score > 0.5, at 384x640: fp16 measured 0.07 px (box) / 0.05 px (keypoints),
    bound 0.5 px; int8 (4 calibration frames, MinMax) measured 4 px / 6.3 px, bound 15 px, and
    scores 0.09, bound 0.25."""
    from rtpose.deploy.onnx import export_yolo_onnx
    from rtpose.models import get_model_info

    src = export_yolo_onnx(get_model_info("yolo11n-pose"), default_weights, tmp_path / "y.onnx")

    def pre(frame):
        x = cv2.resize(frame, (640, 384))[:, :, ::-1].transpose(2, 0, 1)[None] / 255.0
        return x.astype(np.float32)

    fp16 = convert_fp16(src, tmp_path / "y16.onnx")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # ORT's shape inference gives up on this graph and leaves files behind
    calib = calibration_batches(video_frames[::2], pre, batch=2)
    int8 = quantize_int8(src, tmp_path / "y8.onnx", calib, input_name="images")
    x = np.concatenate([pre(f) for f in video_frames[1::2][:2]])
    ref = tiny.run(src, x)  # (2, 56, A): box xywh, score, 17 x (x, y, visibility)
    confident = ref[:, 4, :] > 0.5  # (2, A)
    assert not list(cwd.iterdir())  # ... but not in the caller's working directory
    assert confident.sum() >= 4
    for path, px, score in ((fp16, 0.5, 0.01), (int8, 15.0, 0.25)):
        err = np.abs(tiny.run(path, x) - ref).transpose(0, 2, 1)[confident]  # (M, 56)
        kpts = err[:, 5:].reshape(-1, 17, 3)
        assert err[:, :4].max() <= px and kpts[..., :2].max() <= px, path.name
        assert err[:, 4].max() <= score and kpts[..., 2].max() <= score, path.name
