"""TensorRT runtime backend: the host-side logic here, real engines on the GPU machine (gpu)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from rtpose.backends.tensorrt import runtime as tensorrt
from rtpose.backends.tensorrt.batching import (
    batch_buckets,
    bucket_for,
    check_input_shape,
    pad_batch,
)
from rtpose.backends.tensorrt.flavour import FLAVOUR_MODULES, detect_flavour
from rtpose.backends.tensorrt.manifest import manifest_path, read_manifest
from rtpose.cuda import probe as gpu_probe
from rtpose.cuda.arrays import stream_handle
from rtpose.errors import BackendUnavailableError, InferenceError

TRT_MODULES = tuple(FLAVOUR_MODULES.values())


def test_gpu_status_without_gpu_reports_reason_and_imports_no_tensorrt():
    code = (
        "import sys\n"
        "from rtpose.cuda.probe import gpu_status\n"
        "s = gpu_status()\n"
        "print(s.available, s.device_count, repr(s.reason))\n"
        f"print([m for m in {TRT_MODULES!r} if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = done.stdout.strip().splitlines()
    status = gpu_probe.gpu_status()
    if status.available:
        pytest.skip("this machine has a GPU")
    assert first.startswith("False 0 ")
    assert len(status.reason) > 10 and status.name is None and status.compute_capability is None
    assert second == "[]"  # gpu_status imports no TensorRT module


def test_gpu_status_is_cached_and_validates_device():
    assert gpu_probe.gpu_status() is gpu_probe.gpu_status()
    with pytest.raises(ValueError, match="device must be"):
        gpu_probe.gpu_status(device=-1)


def test_gpu_status_falls_back_to_nvidia_smi(monkeypatch):
    """Without rtpose._C and cupy, nvidia-smi's answer decides (faked here)."""
    monkeypatch.setattr(gpu_probe._native, "load", lambda: None)
    monkeypatch.setattr(gpu_probe, "_cupy", lambda: None)
    monkeypatch.setattr(gpu_probe.shutil, "which", lambda name: "/usr/bin/nvidia-smi")

    def fake_run(command, **kwargs):
        assert kwargs["timeout"] > 0 and "--query-gpu=name,compute_cap" in command
        return subprocess.CompletedProcess(command, 0, "NVIDIA H200, 9.0\nNVIDIA L4, 8.9\n", "")

    monkeypatch.setattr(gpu_probe.subprocess, "run", fake_run)
    gpu_probe.clear_cache()
    try:
        status = gpu_probe.gpu_status(device=1)
        assert status == gpu_probe.GpuStatus(
            available=True,
            reason=status.reason,
            device_count=2,
            device=1,
            name="NVIDIA L4",
            compute_capability=(8, 9),
            source="nvidia-smi",
        )
        assert not gpu_probe.gpu_status(device=2).available  # only 2 devices
    finally:
        gpu_probe.clear_cache()


def test_gpu_status_nvidia_smi_failure_is_a_reason(monkeypatch):
    monkeypatch.setattr(gpu_probe._native, "load", lambda: None)
    monkeypatch.setattr(gpu_probe, "_cupy", lambda: None)
    monkeypatch.setattr(gpu_probe.shutil, "which", lambda name: "/usr/bin/nvidia-smi")

    def hang(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(gpu_probe.subprocess, "run", hang)
    gpu_probe.clear_cache()
    try:
        status = gpu_probe.gpu_status()
        assert not status.available and "TimeoutExpired" in status.reason
        assert "cupy is not installed" in status.reason
    finally:
        gpu_probe.clear_cache()


def test_parse_nvidia_smi_old_driver_without_compute_cap():
    assert gpu_probe.parse_nvidia_smi("Tesla K80, [N/A]\n\nNVIDIA A100-SXM4-40GB, 8.0\n") == [
        ("Tesla K80", None),
        ("NVIDIA A100-SXM4-40GB", (8, 0)),
    ]


def test_backend_refuses_before_touching_tensorrt(monkeypatch, tmp_path):
    def explode():
        raise AssertionError("TensorRT must not be imported without a GPU")

    monkeypatch.setattr(tensorrt, "detect_flavour", explode)
    monkeypatch.setattr(
        tensorrt,
        "gpu_status",
        lambda device: gpu_probe.GpuStatus(available=False, reason="no driver (test)"),
    )
    engine = tmp_path / "net.engine"
    engine.write_bytes(b"not a plan")
    before = {m for m in TRT_MODULES if m in sys.modules}  # other tests may have built engines
    with pytest.raises(BackendUnavailableError, match=r"no driver \(test\).*onnxruntime"):
        tensorrt.TensorRTBackend(engine)
    assert {m for m in TRT_MODULES if m in sys.modules} == before


def test_backend_on_this_machine_without_gpu(tmp_path):
    if gpu_probe.gpu_status().available:
        pytest.skip("this machine has a GPU")
    with pytest.raises(BackendUnavailableError, match="NVIDIA GPU/driver"):
        tensorrt.TensorRTBackend(tmp_path / "missing.engine")


def test_manifest_found_beside_engine_and_errors_on_bad_json(tmp_path, engine_manifest):
    engine = tmp_path / "rsn18.engine"
    engine.write_bytes(b"x")
    assert manifest_path(engine) is None
    assert read_manifest(engine, None) is None  # logged: nothing to check against
    engine_manifest.save(tmp_path / "rsn18.json")  # where rtpose-build writes it
    assert manifest_path(engine) == tmp_path / "rsn18.json"
    assert read_manifest(engine, None) == engine_manifest
    (tmp_path / "rsn18.engine.json").write_text("{broken")
    assert manifest_path(engine) == tmp_path / "rsn18.engine.json"  # <engine>.json wins
    with pytest.raises(InferenceError, match="unreadable"):  # a load failure, not a build one
        read_manifest(engine, None)
    assert read_manifest(engine, engine_manifest) is engine_manifest
    assert read_manifest(engine, json.loads(engine_manifest.to_json())) == engine_manifest
    with pytest.raises(ValueError, match=r"missing \[.*'builder'"):
        read_manifest(engine, {})


def test_batch_buckets():
    assert batch_buckets(1, 32) == (1, 2, 4, 8, 16, 32)
    assert batch_buckets(1, 12) == (1, 2, 4, 8, 12)
    assert batch_buckets(3, 20) == (3, 4, 8, 16, 20)
    assert batch_buckets(8, 8) == (8,)
    with pytest.raises(ValueError):
        batch_buckets(0, 4)
    with pytest.raises(ValueError):
        batch_buckets(5, 4)


def test_bucket_for_and_padding():
    buckets = batch_buckets(1, 12)
    assert [bucket_for(n, buckets) for n in (1, 2, 3, 5, 8, 9, 12)] == [1, 2, 4, 8, 8, 12, 12]
    with pytest.raises(ValueError, match="exceeds the engine's largest batch 12"):
        bucket_for(13, buckets)
    x = np.arange(3 * 2, dtype=np.float32).reshape(3, 2) + 1
    padded = pad_batch(x, 4)
    assert padded.shape == (4, 2) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:3], x)
    np.testing.assert_array_equal(padded[3], 0)
    assert pad_batch(x, 3) is x
    with pytest.raises(ValueError):
        pad_batch(x, 2)


def test_check_input_shape():
    kwargs = {"engine_shape": (-1, 3, 256, 192), "profile_min": (1, 3, 256, 192)}
    kwargs["profile_max"] = (32, 3, 256, 192)
    check_input_shape("input", (8, 3, 256, 192), **kwargs)
    with pytest.raises(ValueError, match=r"axis 0: 33.*--batch"):
        check_input_shape("input", (33, 3, 256, 192), **kwargs)
    with pytest.raises(ValueError, match=r"axis 2: 255"):
        check_input_shape("input", (1, 3, 255, 192), **kwargs)
    with pytest.raises(ValueError, match=r"\(-1, 3, 256, 192\)"):
        check_input_shape("input", (3, 256, 192), **kwargs)


class _CupyLikeStream:
    ptr = 0x1234


class _TorchLikeStream:
    cuda_stream = 0x5678


class _ProtocolStream:
    def __cuda_stream__(self):
        return (0, 0x9ABC)


def test_stream_handles_the_backend_accepts():
    assert stream_handle(0x42) == 0x42
    assert stream_handle(_CupyLikeStream()) == 0x1234
    assert stream_handle(_TorchLikeStream()) == 0x5678
    assert stream_handle(_ProtocolStream()) == 0x9ABC
    with pytest.raises(TypeError, match="stream must be"):
        stream_handle("stream 1")
    with pytest.raises(ValueError):
        stream_handle(-3)


# ---- on the GPU machine ---------------------------------------------------------------------


def _build_plan(tmp_path, batch=(1, 4, 8)):
    """A tiny conv net -> ONNX -> plan for the local GPU with the installed TensorRT flavour."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.head = torch.nn.Conv2d(8, 4, 1)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)))

    torch.manual_seed(0)
    onnx_path = tmp_path / "net.onnx"
    torch.onnx.export(
        Net().eval(),
        torch.randn(1, 3, 32, 24),
        str(onnx_path),
        input_names=["input"],
        output_names=["heatmaps"],
        dynamic_axes={"input": {0: "n"}, "heatmaps": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    flavour = detect_flavour()
    trt = flavour.module
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    errors = [] if parser.parse_from_file(str(onnx_path)) else range(parser.num_errors)
    assert not errors, [str(parser.get_error(i)) for i in errors]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    lo, opt, hi = batch
    profile.set_shape("input", (lo, 3, 32, 24), (opt, 3, 32, 24), (hi, 3, 32, 24))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None
    engine = tmp_path / "net.engine"
    engine.write_bytes(bytes(plan))
    return onnx_path, engine


def _skip_without_tensorrt():
    if not any(importlib.util.find_spec(m) for m in ("tensorrt", "tensorrt_rtx_bindings")):
        pytest.skip("no TensorRT builder installed")


def _onnxruntime(onnx_path, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(["heatmaps"], {"input": x})[0]


# fp32 convs on the GPU use TF32 where TensorRT picks it: 10-bit mantissa, |x| ~ 1 -> 2e-3.
_TOL = {"rtol": 5e-3, "atol": 5e-3}


@pytest.mark.gpu
def test_engine_matches_onnxruntime_numpy_and_device_inputs(tmp_path):
    _skip_without_tensorrt()
    onnx_path, engine = _build_plan(tmp_path)
    rng = np.random.default_rng(0)
    with tensorrt.TensorRTBackend(engine) as backend:
        assert backend.input_names == ["input"] and backend.output_names == ["heatmaps"]
        assert backend.batch_range == (1, 8)
        for n in (1, 3, 8):
            x = rng.standard_normal((n, 3, 32, 24), dtype=np.float32)
            out = backend.run({"input": x})["heatmaps"]
            assert isinstance(out, np.ndarray) and out.shape == (n, 4, 32, 24)
            np.testing.assert_allclose(out, _onnxruntime(onnx_path, x), **_TOL)
        with pytest.raises(ValueError, match="axis 0: 9"):
            backend.run({"input": np.zeros((9, 3, 32, 24), np.float32)})
        cupy = pytest.importorskip("cupy")
        x = rng.standard_normal((2, 3, 32, 24), dtype=np.float32)
        out = backend.run({"input": cupy.asarray(x)})["heatmaps"]
        assert not isinstance(out, np.ndarray)  # device in -> device out
        want = _onnxruntime(onnx_path, x)
        np.testing.assert_allclose(cupy.asnumpy(cupy.asarray(out)), want, **_TOL)


@pytest.mark.gpu
def test_cuda_graph_replay_equals_direct_run(tmp_path):
    _skip_without_tensorrt()
    _, engine = _build_plan(tmp_path)
    rng = np.random.default_rng(1)
    with (
        tensorrt.TensorRTBackend(engine) as direct,
        tensorrt.TensorRTBackend(engine, cuda_graphs=True) as graphed,
    ):
        assert graphed.buckets == (1, 2, 4, 8)
        for n in (3, 1, 3, 8, 5):  # 3 twice: the second call replays bucket 4
            x = rng.standard_normal((n, 3, 32, 24), dtype=np.float32)
            want = direct.run({"input": x})["heatmaps"]
            got = graphed.run({"input": x})["heatmaps"]
            assert got.shape == want.shape == (n, 4, 32, 24)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        assert sorted(graphed._buckets) == [1, 4, 8]
