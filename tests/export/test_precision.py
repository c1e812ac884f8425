"""fp16 / int8 ONNX conversion and calibration frames, on a tiny conv+BN+ReLU network with a
bilinear Resize and a Softmax branch, exported with dynamic batch.

Tolerances, relative to the fp32 output's largest magnitude:
- fp16 <= 5e-3: weights and activations rounded to 11-bit mantissas (2^-11 = 4.9e-4 each) through
  three convolutions and a resize; measured ~5e-4.
- int8 <= 5e-2: per-tensor activation steps of 1/127 of the calibrated range at three conv inputs,
  on frames not used for calibration; measured ~1e-2.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

from onnx import TensorProto, numpy_helper  # noqa: E402

from rtpose.errors import EngineBuildError  # noqa: E402
from rtpose.export.onnx import export_onnx  # noqa: E402
from rtpose.export.precision import (  # noqa: E402
    FP32_OPS,
    calibration_batches,
    calibration_frames,
    convert_fp16,
    quantize_int8,
)

SIZE = 32  # network input is (N, 3, 32, 32)
F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


class TinyNet(torch.nn.Module):
    """conv+BN+ReLU x2 -> bilinear x2 upsample -> 1x1 head; a spatial Softmax branch."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):  # (N, 3, 32, 32)
        y = self.body(x)  # (N, 16, 16, 16)
        y = torch.nn.functional.interpolate(y, scale_factor=2.0, mode="bilinear")  # (N,16,32,32)
        h = self.head(y)  # (N, 4, 32, 32)
        n, k = h.shape[:2]
        p = torch.softmax(h.flatten(2) * 4.0, dim=-1).view(n, k, SIZE, SIZE)
        return torch.cat([h, p * 100.0], 1)  # (N, 8, 32, 32)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x})[0]


def _preprocess(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (1, 3, 32, 32) float32 RGB in [0, 1]."""
    small = cv2.resize(frame, (SIZE, SIZE), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    return (small.transpose(2, 0, 1)[None] / 255.0).astype(np.float32)


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = TinyNet().eval()
    with torch.no_grad():  # non-default BN statistics, as a trained network has
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("precision") / "tiny.onnx"
    return export_onnx(model, path, sample_shape=(1, 3, SIZE, SIZE), dynamic_size=False)


@pytest.fixture(scope="module")
def video_frames(sample_video) -> list[np.ndarray]:
    return calibration_frames(sample_video, count=8)


def _consumers(graph) -> dict[str, list]:
    out: dict[str, list] = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            out.setdefault(name, []).append((node, slot))
    return out


def _types(model) -> dict[str, int]:
    g = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.value_info, *g.output)}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


# ---------------------------------------------------------------------------------------- fp16


def test_fp16_weights_io_and_kept_ops(fp32_model, tmp_path):
    before = _digest(fp32_model)
    dst = convert_fp16(fp32_model, tmp_path / "tiny-fp16.onnx", keep_fp32_tail=False)
    assert _digest(fp32_model) == before  # the source is never modified
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    assert [i.type.tensor_type.elem_type for i in (*graph.input, *graph.output)] == [F32, F32]

    consumers = _consumers(graph)
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

    types = _types(model)
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
    types = _types(model)
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
    ref, out = _run(fp32_model, x), _run(dst, x)
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
    types = _types(model)
    softmax = next(n for n in graph.node if n.op_type == "Softmax")
    assert types[softmax.input[0]] == F16  # nothing kept fp32 any more
    x = np.random.default_rng(1).standard_normal((2, 3, SIZE, SIZE), dtype=np.float32)
    out = _run(dst, x.astype(np.float16))
    ref = _run(fp32_model, x)
    assert out.dtype == np.float16
    assert np.abs(out.astype(np.float32) - ref).max() / np.abs(ref).max() <= 5e-3

    # keeping Conv in fp32 keeps its weights fp32 and feeds it fp32
    dst = convert_fp16(fp32_model, tmp_path / "conv32.onnx", keep_fp32_ops=("Conv",))
    model = onnx.load(str(dst))
    types = _types(model)
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


# ---------------------------------------------------------------------------------------- int8


@pytest.fixture(scope="module")
def int8_model(fp32_model, video_frames, tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    batches = calibration_batches(video_frames[::2], _preprocess, batch=2)  # 4 frames
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
    x = np.concatenate([_preprocess(f) for f in video_frames[1::2][:3]])
    ref, out = _run(fp32_model, x), _run(dst, x)
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


# --------------------------------------------------------------------------------- calibration


def _write_video(path: Path, n: int) -> None:
    """MJPEG clip whose frame i is filled with grey level 5 * i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 32))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((32, 48, 3), 5 * i, np.uint8))
    writer.release()


def test_calibration_frames_from_video_evenly_spaced(tmp_path, sample_video):
    path = tmp_path / "ramp.avi"
    _write_video(path, 41)
    frames = calibration_frames(path, count=5)
    assert [f.shape for f in frames] == [(32, 48, 3)] * 5 and frames[0].dtype == np.uint8
    levels = [round(float(f.mean()) / 5) for f in frames]  # MJPEG is lossy, levels are not
    assert levels == [0, 10, 20, 30, 40]

    real = calibration_frames(sample_video, count=3)
    assert [f.shape for f in real] == [(994, 1768, 3)] * 3
    assert not np.array_equal(real[0], real[2])


def test_calibration_frames_from_image_folder(tmp_path, caplog):
    for i in range(10):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((8, 6, 3), i, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    frames = calibration_frames(tmp_path, count=4)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 3, 6, 9]
    assert frames[0].shape == (8, 6, 3) and frames[0].dtype == np.uint8
    assert len(calibration_frames(tmp_path / "05.png", count=1)) == 1
    with caplog.at_level(logging.WARNING, logger="rtpose.export.precision"):
        assert len(calibration_frames(tmp_path, count=50)) == 10
    assert "only 10 frames" in caplog.text


def test_calibration_frames_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        calibration_frames(tmp_path / "nowhere", count=2)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images")
    with pytest.raises(ValueError, match=r"calibration source .*empty has no frames"):
        calibration_frames(empty, count=2)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(ValueError, match=r"calibration source .*broken.mp4 has no frames"):
        calibration_frames(broken, count=2)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="count must be an integer >= 1"):
            calibration_frames(empty, count=bad)


def test_calibration_batches_shapes_and_crops():
    frames = [np.full((20, 30, 3), i, np.uint8) for i in range(5)]
    originals = [f.copy() for f in frames]

    def crops(frame):  # a top-down model: frame i shows i % 3 persons
        n = int(frame[0, 0, 0]) % 3
        return np.full((n, 3, 16, 12), frame[0, 0, 0], np.float32)

    batches = calibration_batches(frames, crops, batch=3)  # 0+1+2+0+1 = 4 crops
    assert [b.shape for b in batches] == [(3, 3, 16, 12), (1, 3, 16, 12)]
    assert [int(b[i, 0, 0, 0]) for b in batches for i in range(len(b))] == [1, 2, 2, 4]
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in batches)
    for f, o in zip(frames, originals):
        np.testing.assert_array_equal(f, o)

    with pytest.raises(ValueError, match="batch must be an integer >= 1"):
        calibration_batches(frames, crops, batch=0)
    with pytest.raises(ValueError, match=r"float32 array; for frame 0 it returned float64"):
        calibration_batches(frames, lambda f: np.zeros((1, 3, 4, 4)), batch=2)
    with pytest.raises(ValueError, match="no samples"):
        calibration_batches(frames, lambda f: np.zeros((0, 3, 4, 4), np.float32), batch=2)
    sizes = iter([(1, 3, 4, 4), (1, 3, 8, 8)])
    with pytest.raises(ValueError, match="one input size"):
        calibration_batches(frames[:2], lambda f: np.zeros(next(sizes), np.float32), batch=2)


@pytest.mark.slow
def test_yolo11n_pose_fp16_and_int8(default_weights, video_frames, tmp_path, monkeypatch):
    """The real network: its anchor grid comes from Range, which the ONNX spec keeps fp32.
    On anchors with score > 0.5, at 384x640: fp16 measured 0.07 px (box) / 0.05 px (keypoints),
    bound 0.5 px; int8 (4 calibration frames, MinMax) measured 4 px / 6.3 px, bound 15 px, and
    scores 0.09, bound 0.25."""
    from rtpose.engine.loader import export_yolo_onnx
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
    ref = _run(src, x)  # (2, 56, A): box xywh, score, 17 x (x, y, visibility)
    confident = ref[:, 4, :] > 0.5  # (2, A)
    assert not list(cwd.iterdir())  # ... but not in the caller's working directory
    assert confident.sum() >= 4
    for path, px, score in ((fp16, 0.5, 0.01), (int8, 15.0, 0.25)):
        err = np.abs(_run(path, x) - ref).transpose(0, 2, 1)[confident]  # (M, 56)
        kpts = err[:, 5:].reshape(-1, 17, 3)
        assert err[:, :4].max() <= px and kpts[..., :2].max() <= px, path.name
        assert err[:, 4].max() <= score and kpts[..., 2].max() <= score, path.name
