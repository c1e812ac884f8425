"""``backend="auto"`` on the CPU follows the committed measurement
(benchmarks/bench_cpu_backends.py): the table in rtpose/backends/base.py is that measurement,
and auto takes the faster installed backend by it."""

from __future__ import annotations

import importlib.util
import json
from importlib import metadata
from pathlib import Path

import pytest

from rtpose.backends import base
from rtpose.backends.base import (
    CPU_BACKEND_MS,
    CPU_INT8_BACKENDS,
    fastest_cpu_backend,
    resolve_backend_name,
)
from rtpose.cuda import probe
from rtpose.cuda.probe import GpuStatus

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def newest_measurement() -> dict:
    files = sorted(RESULTS.glob("*-backends.json"))
    assert files, f"no CPU backend measurement in {RESULTS}: run benchmarks/bench_cpu_backends.py"
    return json.loads(files[-1].read_text())


def test_the_table_is_the_committed_measurement():
    measured = newest_measurement()["backends"]
    table = {name: round(measured[name]["median_ms"], 1) for name in CPU_BACKEND_MS}
    assert table == pytest.approx(CPU_BACKEND_MS, abs=0.051)


def test_the_committed_measurement_is_of_what_the_table_says():
    m = newest_measurement()
    assert m["what"] == "cpu-backends" and m["model"] == "yolo11n-pose"
    assert m["input_shapes"] == [[1, 3, 384, 640]]
    # the fp32 backends it times compute the same thing (raw predictions, input pixels)
    assert m["backends"]["openvino"]["vs_onnxruntime_fp32"]["max_abs_diff"] < 0.02


def test_int8_backends_are_those_that_kept_the_persons():
    """OpenVINO's int8 entry in the measurement lost every person: auto leaves it out."""
    entry = newest_measurement()["backends"].get("openvino-int8")
    if entry is None:
        pytest.skip("the committed measurement has no int8 run (--int8)")
    kept = entry["vs_onnxruntime_fp32"]["oks_mean"] >= 0.95
    assert ("openvino" in CPU_INT8_BACKENDS) == kept


@pytest.fixture
def installed(monkeypatch):
    """The set of CPU backends find_spec reports as installed (others as absent); no GPU build
    of ONNX Runtime and no TensorRT."""
    real = importlib.util.find_spec
    present = {"onnxruntime", "openvino"}

    def find_spec(name, *args):
        if name in {"onnxruntime", "openvino"}:
            return object() if name in present else None
        return real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(base, "_tensorrt_usable", lambda: False)
    monkeypatch.setattr(base, "_onnxruntime_on_gpu", lambda: False)
    return present


def test_auto_takes_the_faster_installed_cpu_backend(installed, monkeypatch):
    fastest = min(CPU_BACKEND_MS, key=CPU_BACKEND_MS.__getitem__)
    assert resolve_backend_name("auto") == fastest == fastest_cpu_backend()
    monkeypatch.setattr(base, "CPU_BACKEND_MS", {"onnxruntime": 2.0, "openvino": 1.0})
    assert resolve_backend_name("auto") == "openvino"
    monkeypatch.setattr(base, "CPU_BACKEND_MS", {"onnxruntime": 1.0, "openvino": 2.0})
    assert resolve_backend_name("auto") == "onnxruntime"


def test_auto_int8_takes_only_the_int8_backends(installed, monkeypatch):
    monkeypatch.setattr(base, "CPU_BACKEND_MS", {"onnxruntime": 2.0, "openvino": 1.0})
    assert resolve_backend_name("auto", precision="fp32") == "openvino"
    assert resolve_backend_name("auto", precision="int8") == "onnxruntime"
    assert resolve_backend_name("openvino", precision="int8") == "openvino"  # asked for
    installed.discard("onnxruntime")
    assert fastest_cpu_backend(precision="int8") is None


def test_auto_takes_openvino_only_when_installed(installed, monkeypatch):
    monkeypatch.setattr(base, "CPU_BACKEND_MS", {"onnxruntime": 2.0, "openvino": 1.0})
    installed.discard("openvino")
    assert resolve_backend_name("auto") == "onnxruntime"
    installed.add("openvino")
    installed.discard("onnxruntime")
    assert resolve_backend_name("auto") == "openvino"
    monkeypatch.setattr(base, "CPU_BACKEND_MS", {"onnxruntime": 1.0, "openvino": 2.0})
    assert resolve_backend_name("auto") == "openvino"  # the only one installed


def test_auto_keeps_onnxruntime_with_its_gpu_build_and_a_gpu(installed, monkeypatch):
    monkeypatch.setattr(base, "CPU_BACKEND_MS", {"onnxruntime": 2.0, "openvino": 1.0})
    monkeypatch.setattr(base, "_onnxruntime_on_gpu", lambda: True)
    assert resolve_backend_name("auto") == "onnxruntime"


def test_onnxruntime_on_gpu_needs_the_gpu_build_and_a_gpu(monkeypatch):
    def version(name):
        if name == "onnxruntime-gpu":
            return "1.22.0"
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(probe, "gpu_status", lambda **kw: GpuStatus(True, "fake GPU"))
    assert not base._onnxruntime_on_gpu()  # the CPU build here
    monkeypatch.setattr(metadata, "version", version)
    assert base._onnxruntime_on_gpu()
    monkeypatch.setattr(probe, "gpu_status", lambda **kw: GpuStatus(False, "no GPU"))
    assert not base._onnxruntime_on_gpu()


def test_no_cpu_backend_falls_back_to_torch_then_says_what_to_install(installed, monkeypatch):
    installed.clear()
    real = importlib.util.find_spec
    if real("torch") is not None:
        assert resolve_backend_name("auto") == "torch"
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(base.BackendUnavailableError, match=r"rtpose\[openvino\]"):
        resolve_backend_name("auto")


def test_openvino_is_a_backend_name():
    assert "openvino" in base.BACKENDS
    assert resolve_backend_name("openvino") == "openvino"
