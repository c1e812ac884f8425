"""The TensorRT builder on the real TensorRT-RTX builder (it builds plans without a GPU).

Models are made here: a torch conv+relu with dynamic batch, and onnx.helper graphs for FP16
(FP16 initializers, Casts at the I/O), INT8 (Q/DQ around a conv), a static batch, an unknown op.
Plans cannot be run here (no GPU), so they are checked for existence, size and the build facts.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rtpose._io
from rtpose.backends.tensorrt.flavour import Flavour, compute_capability, detect_flavour
from rtpose.cuda.probe import GpuStatus, gpu_status
from rtpose.deploy import trt_builder as tensorrt_build
from rtpose.deploy.trt_builder import build_serialized_engine
from rtpose.errors import BackendUnavailableError, EngineBuildError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

HAS_RTX = importlib.util.find_spec("tensorrt_rtx_bindings") is not None
needs_rtx = pytest.mark.skipif(not HAS_RTX, reason="tensorrt_rtx_bindings not installed")


# --- models -------------------------------------------------------------------------------


def _save(graph, path: Path, opsets=(("", 17),)) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _io(batch="batch"):
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 16, 16])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 8, 16, 16])
    return x, y


def _weights(dtype=np.float32):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    return w, b


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    torch = pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("models")
    out: dict[str, Path] = {}

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval()
    out["fp32"] = d / "conv_relu.onnx"
    with torch.no_grad():
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, 16, 16),),
            str(out["fp32"]),
            dynamo=False,
            input_names=["images"],
            output_names=["out"],
            dynamic_axes={"images": {0: "batch"}, "out": {0: "batch"}},
            opset_version=17,
        )

    # FP16: FP32 I/O, Cast to FP16, FP16 conv weights, Cast back (strongly typed precision)
    w, b = _weights(np.float16)
    x, y = _io()
    nodes = [
        helper.make_node("Cast", ["images"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["x16", "w", "b"], ["c16"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c16"], ["r16"]),
        helper.make_node("Cast", ["r16"], ["out"], to=TensorProto.FLOAT),
    ]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    out["fp16"] = _save(helper.make_graph(nodes, "fp16", [x], [y], inits), d / "fp16.onnx")

    # INT8: Q/DQ on the activation, int8 weights with per-channel DQ, conv in between
    w, b = _weights()
    w_scale = (np.abs(w).reshape(8, -1).max(axis=1) / 127).astype(np.float32)
    w_q = np.clip(np.round(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "x_zero"),
        numpy_helper.from_array(w_q, "w_q"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(8, np.int8), "w_zero"),
        numpy_helper.from_array(b, "b"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["images", "x_scale", "x_zero"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xdq"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["wdq"], axis=0),
        helper.make_node("Conv", ["xdq", "wdq", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["out"]),
    ]
    x, y = _io()
    out["int8"] = _save(helper.make_graph(nodes, "int8", [x], [y], inits), d / "int8.onnx")

    # the FP32 conv with its weights in an external-data file beside the model
    model = onnx.load(str(out["fp32"]))
    out["external"] = d / "external" / "conv_relu.onnx"
    out["external"].parent.mkdir()
    onnx.save(
        model,
        str(out["external"]),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )

    # static batch 1
    w, b = _weights()
    x, y = _io(batch=1)
    nodes = [helper.make_node("Conv", ["images", "w", "b"], ["out"], pads=[1, 1, 1, 1])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    out["static"] = _save(helper.make_graph(nodes, "static", [x], [y], inits), d / "static.onnx")

    # an operator no TensorRT knows
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 16, 16])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, 16, 16])
    node = helper.make_node("Frobnicate", ["images"], ["out"], domain="com.example", name="frob")
    out["unknown_op"] = _save(
        helper.make_graph([node], "bad", [x], [y]),
        d / "unknown_op.onnx",
        opsets=(("", 17), ("com.example", 1)),
    )

    # bytes protobuf rejects, and bytes it reads as an empty message
    out["garbage"] = d / "garbage.onnx"
    out["garbage"].write_bytes(b"not an onnx file at all")
    out["garbage_empty"] = d / "garbage_empty.onnx"
    out["garbage_empty"].write_bytes(b"this is not a protobuf")
    return out


@pytest.fixture(scope="module")
def rtx() -> Flavour:
    if not HAS_RTX:
        pytest.skip("tensorrt_rtx_bindings not installed")
    return detect_flavour("tensorrt_rtx")


def _build(rtx: Flavour, onnx_path: Path, out: Path, **kw):
    options = dict(
        input_name="images", batch=(1, 2, 4), gpu_arch="sm80", timing_cache=None, flavour=rtx
    )
    options.update(kw)
    return build_serialized_engine(onnx_path, out, **options)


def _empty(d: Path) -> bool:
    return not d.exists() or not any(d.iterdir())


# --- flavour ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, cc",
    [("sm80", (8, 0)), ("SM_86", (8, 6)), ("8.9", (8, 9)), ("80", (8, 0)), ("sm_120", (12, 0))],
)
def test_compute_capability_spellings(text, cc):
    assert compute_capability(text) == cc


@pytest.mark.parametrize("text", ["", "ampere", "sm8", "8", "sm80a", "8.10"])
def test_compute_capability_rejects(text):
    with pytest.raises(ValueError, match="sm80"):
        compute_capability(text)


@needs_rtx
def test_detect_flavour_rtx(rtx):
    assert rtx.name == "tensorrt_rtx"
    assert rtx.strongly_typed
    assert rtx.major == int(rtx.version.split(".")[0])
    assert rtx.display.startswith("TensorRT-RTX ")
    assert "module" not in repr(rtx)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt installed")
def test_detect_flavour_missing_names_pip_command():
    with pytest.raises(BackendUnavailableError, match="pip install tensorrt"):
        detect_flavour("tensorrt")


def test_import_pulls_no_tensorrt():
    code = (
        "import sys, rtpose.deploy.trt_builder, rtpose.backends.tensorrt.manifest;"
        "bad = [m for m in ('tensorrt', 'tensorrt_rtx_bindings', 'torch', 'onnxruntime')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_builder_asks_the_one_gpu_probe(monkeypatch):
    """The builder's GPU check is rtpose.cuda.probe.gpu_status, and its reason is quoted."""
    asked = []

    def fake_status(*, device: int = 0) -> GpuStatus:
        asked.append(device)
        return GpuStatus(available=False, reason="no driver (test)")

    monkeypatch.setattr(tensorrt_build, "gpu_status", fake_status)
    trt10 = Flavour("tensorrt", "10.13.0.35", 10, False, module=sys)
    with pytest.raises(EngineBuildError, match=r"GPU it runs on.*no driver \(test\)"):
        tensorrt_build._resolve_target(trt10, None)
    rtx = Flavour("tensorrt_rtx", "1.7.1.116", 1, True, module=sys)
    with pytest.raises(EngineBuildError, match=r"no driver \(test\).*--gpu-arch"):
        tensorrt_build._resolve_target(rtx, None)
    assert asked == [0, 0]


def test_builder_gpu_without_a_known_capability_builds_for_it(monkeypatch):
    status = GpuStatus(available=True, reason="1 device", device_count=1, name="GPU X")
    monkeypatch.setattr(tensorrt_build, "gpu_status", lambda *, device=0: status)
    trt10 = Flavour("tensorrt", "10.13.0.35", 10, False, module=sys)
    target = tensorrt_build._resolve_target(trt10, "sm80")
    assert (target.cc, target.gpu_name, target.rtx_member) == ((8, 0), "GPU X", None)


# --- building plans -----------------------------------------------------------------------


@needs_rtx
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_builds_plan(rtx, models, tmp_path, precision):
    lines: list[str] = []
    out = tmp_path / "engines" / f"{precision}.plan"
    info = _build(rtx, models[precision], out, batch=(1, 3, 8), log=lines.append)
    assert out.is_file() and out.stat().st_size == info.size_bytes > 10_000
    assert info.path == out
    assert (info.flavour, info.flavour_version) == ("tensorrt_rtx", rtx.version)
    assert info.compute_capability == "SM80" and info.gpu_name is None
    assert (info.min_shape, info.opt_shape, info.max_shape) == (
        (1, 3, 16, 16),
        (3, 3, 16, 16),
        (8, 3, 16, 16),
    )
    assert info.seconds > 0
    assert any("SM80" in line for line in lines)
    assert sorted(p.name for p in out.parent.iterdir()) == [f"{precision}.plan"]  # no temp left


@needs_rtx
def test_external_data_is_found(rtx, models, tmp_path):
    assert (models["external"].parent / "weights.bin").stat().st_size > 8 * 27 * 4
    info = _build(rtx, models["external"], tmp_path / "e.plan", workspace_mb=64)
    assert info.size_bytes > 10_000


@needs_rtx
@pytest.mark.parametrize("workspace_mb", [0, -1, 1.5])
def test_bad_workspace(rtx, models, tmp_path, workspace_mb):
    with pytest.raises(ValueError, match="workspace_mb"):
        _build(rtx, models["fp32"], tmp_path / "e.plan", workspace_mb=workspace_mb)


@needs_rtx
def test_plans_differ_by_architecture(rtx, models, tmp_path):
    a = _build(rtx, models["fp32"], tmp_path / "a.plan", gpu_arch="sm80")
    b = _build(rtx, models["fp32"], tmp_path / "b.plan", gpu_arch="SM_89")
    assert b.compute_capability == "SM89"
    assert a.path.read_bytes() != b.path.read_bytes()


@needs_rtx
def test_rtx_has_no_timing_cache_and_says_so(rtx, models, tmp_path):
    cache = tmp_path / "timing.cache"
    info = _build(rtx, models["fp32"], tmp_path / "e.plan", timing_cache=cache)
    assert info.timing_cache is None
    assert "no timing cache" in info.timing_cache_note
    assert not cache.exists()  # nothing faked


@needs_rtx
@pytest.mark.parametrize("name", ["garbage", "garbage_empty"])
def test_unparsable_file(rtx, models, tmp_path, name):
    out = tmp_path / "out"
    with pytest.raises(EngineBuildError, match="could not parse") as err:
        _build(rtx, models[name], out / "e.plan")
    assert f"{name}.onnx" in str(err.value)
    assert _empty(out)


@needs_rtx
def test_unsupported_operator_is_named(rtx, models, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(EngineBuildError, match="Frobnicate") as err:
        _build(rtx, models["unknown_op"], out / "e.plan")
    assert "'frob'" in str(err.value)  # the node's name too
    assert _empty(out)


@needs_rtx
def test_static_batch_cannot_take_profile(rtx, models, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(EngineBuildError, match=r"static shape \(1, 3, 16, 16\).*1:4:8"):
        _build(rtx, models["static"], out / "e.plan", batch=(1, 4, 8))
    assert _empty(out)
    info = _build(rtx, models["static"], out / "e.plan", batch=(1, 1, 1))  # what it can take
    assert info.max_shape == (1, 3, 16, 16)


@needs_rtx
@pytest.mark.parametrize("batch", [(0, 1, 2), (2, 1, 4), (1, 4, 2), (1, 2)])
def test_bad_batch_profile(rtx, models, tmp_path, batch):
    with pytest.raises(ValueError, match="batch"):
        _build(rtx, models["fp32"], tmp_path / "out" / "e.plan", batch=batch)
    assert _empty(tmp_path / "out")


@needs_rtx
def test_wrong_input_name_lists_inputs(rtx, models, tmp_path):
    with pytest.raises(
        EngineBuildError, match=r"no input named 'pixels'.*images \(-1, 3, 16, 16\)"
    ):
        _build(rtx, models["fp32"], tmp_path / "out" / "e.plan", input_name="pixels")
    assert _empty(tmp_path / "out")


@needs_rtx
def test_sm90_on_rtx_lists_supported(rtx, models, tmp_path):
    with pytest.raises(EngineBuildError, match="SM80") as err:
        _build(rtx, models["fp32"], tmp_path / "out" / "e.plan", gpu_arch="sm90")
    text = str(err.value)
    assert "SM90" in text and "SM86" in text and "CURRENT" in text
    assert _empty(tmp_path / "out")


@needs_rtx
@pytest.mark.skipif(gpu_status().available, reason="this machine has a GPU")
def test_rtx_without_arch_or_gpu_asks_for_arch(rtx, models, tmp_path):
    with pytest.raises(EngineBuildError, match="--gpu-arch"):
        _build(rtx, models["fp32"], tmp_path / "out" / "e.plan", gpu_arch=None)
    assert _empty(tmp_path / "out")


@needs_rtx
@pytest.mark.skipif(gpu_status().available, reason="this machine has a GPU")
def test_nvidia_tensorrt_needs_a_gpu_before_any_object(rtx, models, tmp_path):
    # A TensorRT 10 flavour: the GPU probe must refuse before the module is touched, so any
    # module (here TensorRT-RTX's) stands in for it.
    trt10 = Flavour("tensorrt", "10.13.0.35", 10, False, rtx.module)
    with pytest.raises(EngineBuildError, match="GPU it runs on"):
        _build(trt10, models["fp32"], tmp_path / "out" / "e.plan", gpu_arch=None, fp16_flag=True)
    assert _empty(tmp_path / "out")


@needs_rtx
def test_fp16_flag_refused_when_strongly_typed(rtx, models, tmp_path):
    with pytest.raises(ValueError, match="mixed-precision"):
        _build(rtx, models["fp32"], tmp_path / "e.plan", fp16_flag=True)


@needs_rtx
def test_failed_write_leaves_nothing(rtx, models, tmp_path, monkeypatch):
    out = tmp_path / "out"
    old = tmp_path / "out" / "e.plan"
    out.mkdir()
    old.write_bytes(b"previous engine")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(rtpose._io.os, "replace", broken_replace)  # the one atomic writer
    with pytest.raises(OSError, match="disk full"):
        _build(rtx, models["fp32"], old)
    assert [p.name for p in out.iterdir()] == ["e.plan"]  # temp file removed
    assert old.read_bytes() == b"previous engine"  # old engine untouched


def test_missing_onnx(tmp_path):
    flavour = Flavour("tensorrt_rtx", "1.7.1.116", 1, True, module=sys)
    with pytest.raises(FileNotFoundError, match=r"nope\.onnx"):
        build_serialized_engine(
            tmp_path / "nope.onnx",
            tmp_path / "e.plan",
            input_name="images",
            batch=(1, 1, 1),
            gpu_arch="sm80",
            timing_cache=None,
            flavour=flavour,
        )
