"""Every backend has every member of the Backend protocol, closes idempotently and refuses to run
once closed; backend selection reads the one list of TensorRT modules.

ONNX Runtime runs a tiny onnx.helper graph, torch a tiny nn.Module. The TensorRT backend runs on
a stand-in TensorRT module and host (numpy) "device" buffers: what is checked here is the
backend's own logic (binding, buckets, lifetime, errors), not TensorRT's; real engines are run on
the GPU machine by test_tensorrt_backend.py.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import types

import numpy as np
import pytest

from rtpose.backends import base
from rtpose.backends.base import Backend, TensorSpec, resolve_backend_name
from rtpose.backends.tensorrt import runtime
from rtpose.backends.tensorrt.flavour import FLAVOUR_MODULES, Flavour
from rtpose.backends.tensorrt.manifest import BuilderStamp
from rtpose.cuda import probe
from rtpose.cuda.probe import GpuStatus
from rtpose.errors import EngineBuildError, InferenceError

MEMBERS = sorted(
    {*Backend.__annotations__}
    | {n for n, v in vars(Backend).items() if callable(v) and not n.startswith("_")}
)


def test_protocol_states_what_callers_use():
    expected = ["name", "input_names", "output_names", "inputs", "batch_range", "stream_handle"]
    assert sorted([*expected, "run", "close"]) == MEMBERS


def _check_backend(backend, x: np.ndarray) -> np.ndarray:
    """The protocol members are there with their types; returns the run's one output."""
    assert isinstance(backend, Backend)
    missing = [m for m in MEMBERS if not hasattr(backend, m)]
    assert not missing
    assert isinstance(backend.name, str) and backend.name in base.BACKENDS
    assert list(backend.inputs) == backend.input_names
    assert all(isinstance(spec, TensorSpec) for spec in backend.inputs.values())
    assert backend.stream_handle is None or isinstance(backend.stream_handle, int)
    out = backend.run({backend.input_names[0]: x})
    assert list(out) == backend.output_names
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(InferenceError, match="is closed; create a new backend"):
        backend.run({backend.input_names[0]: x})
    return out[backend.output_names[0]]


# ---- ONNX Runtime ---------------------------------------------------------------------------


def _relu_onnx(path, batch="n"):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, "h", "w"])
    y = helper.make_tensor_value_info("preds", TensorProto.FLOAT, [batch, 3, "h", "w"])
    graph = helper.make_graph([helper.make_node("Relu", ["images"], ["preds"])], "relu", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_onnxruntime_backend_has_the_protocol(tmp_path):
    pytest.importorskip("onnxruntime")
    from rtpose.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(_relu_onnx(tmp_path / "relu.onnx"), threads=1)
    assert backend.inputs == {"images": TensorSpec("images", (-1, 3, -1, -1), "float32")}
    assert backend.batch_range is None and backend.stream_handle is None
    x = np.linspace(-1, 1, 2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(_check_backend(backend, x), np.maximum(x, 0))
    assert backend.session is None  # the session is released, not left to the GC


def test_onnxruntime_copies_gpu_arrays_to_the_host_once_logged(tmp_path, emulated_gpu, caplog):
    import logging

    from gpu_support import HostCudaArray

    from rtpose.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(_relu_onnx(tmp_path / "relu.onnx"), threads=1)
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, 3, 2, 2)
    with caplog.at_level(logging.WARNING, logger="rtpose.backends.base"):
        for _ in range(2):
            out = backend.run({"images": HostCudaArray(x.copy())})["preds"]
            np.testing.assert_array_equal(out, np.maximum(x, 0))
    messages = [r.message for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("ONNX Runtime on the CPU got GPU arrays")


def test_onnxruntime_static_batch_is_its_batch_range(tmp_path):
    pytest.importorskip("onnxruntime")
    from rtpose.backends.onnxruntime import OnnxRuntimeBackend

    with OnnxRuntimeBackend(_relu_onnx(tmp_path / "relu1.onnx", batch=1), threads=1) as backend:
        assert backend.batch_range == (1, 1)
        assert backend.inputs["images"].shape == (1, 3, -1, -1)
    assert backend.session is None


# ---- torch ----------------------------------------------------------------------------------


def test_torch_backend_has_the_protocol():
    torch = pytest.importorskip("torch")
    from rtpose.backends.torch import TorchBackend

    torch.manual_seed(0)
    module = torch.nn.Conv2d(3, 2, 1)
    backend = TorchBackend(module, input_name="crops", output_name="heatmaps")
    assert backend.inputs == {"crops": TensorSpec("crops", (-1, -1, -1, -1), "float32")}
    assert backend.batch_range is None and backend.stream_handle is None  # CPU: no stream
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4), dtype=np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_check_backend(backend, x), want, rtol=1e-6, atol=1e-6)
    assert backend.module is None


# ---- TensorRT, on a stand-in TensorRT module --------------------------------------------------


class _HostArrays:
    """The ArrayLibrary interface on numpy: a "device address" is the array's data pointer."""

    name = "numpy"

    def __init__(self) -> None:
        self.at: dict[int, np.ndarray] = {}  # address -> array, for the fake execution

    def new_stream(self):
        return types.SimpleNamespace(synchronize=lambda: None), 0x51

    def external_stream(self, handle):
        return types.SimpleNamespace(synchronize=lambda: None)

    def on(self, stream):
        return contextlib.nullcontext()

    def synchronize(self, stream):
        stream.synchronize()

    def empty(self, shape, dtype):
        return np.full(shape, np.nan, dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def upload(self, host):
        return np.array(host)

    def download(self, array, stream):
        return np.array(array)

    def wrap(self, obj):
        return obj

    def ptr(self, array):
        self.at[array.ctypes.data] = array
        return array.ctypes.data

    def dtype(self, array):
        return array.dtype

    def is_contiguous(self, array):
        return array.flags.c_contiguous

    def contiguous_as(self, array, dtype):
        return np.ascontiguousarray(array, dtype)

    def copy_into(self, dst, src):
        dst[: src.shape[0]] = src

    def copy(self, array):
        return array.copy()

    def capture(self, stream, launch):
        return launch  # a "graph" replays the launch

    def replay(self, graph, stream):
        graph()


def _fake_tensorrt(arrays: _HostArrays) -> types.ModuleType:
    """A module with the TensorRT calls the backend makes, for an engine images (N, 3, 4, 4)
    -> heatmaps (N, 2, 4, 4) = 2 * images[:, :2], profile batch 1..4."""
    trt = types.ModuleType("fake_tensorrt")
    trt.__version__ = "10.13.0.35"
    severity = types.SimpleNamespace(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

    class ILogger:
        Severity = severity

        def __init__(self) -> None:
            pass

    trt.ILogger = ILogger
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = lambda dtype: np.float32
    shapes = {"images": (-1, 3, 4, 4), "heatmaps": (-1, 2, 4, 4)}

    class Context:
        def __init__(self) -> None:
            self.shape: dict[str, tuple] = {}
            self.address: dict[str, int] = {}

        def set_input_shape(self, name, shape):
            self.shape[name] = tuple(shape)
            return True

        def set_tensor_address(self, name, address):
            self.address[name] = address

        def get_tensor_shape(self, name):
            return (self.shape["images"][0], *shapes[name][1:])

        def execute_async_v3(self, stream):
            images = arrays.at[self.address["images"]]
            arrays.at[self.address["heatmaps"]][...] = 2 * images[:, :2]
            return True

    class Engine:
        num_io_tensors = 2
        contexts = 0

        def get_tensor_name(self, index):
            return list(shapes)[index]

        def get_tensor_mode(self, name):
            return "in" if name == "images" else "out"

        def get_tensor_profile_shape(self, name, profile):
            return [(1, 3, 4, 4), (2, 3, 4, 4), (4, 3, 4, 4)]

        def get_tensor_dtype(self, name):
            return "FLOAT"

        def get_tensor_shape(self, name):
            return shapes[name]

        def create_execution_context(self):
            Engine.contexts += 1
            return Context()

    class Runtime:
        def __init__(self, logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, blob):
            if blob.startswith(b"plan"):
                return Engine()
            self.logger.log(severity.ERROR, "Serialization assertion magicTagRead failed")
            return None

    trt.Runtime = Runtime
    trt.Engine = Engine
    return trt


@pytest.fixture
def fake_trt(monkeypatch, tmp_path):
    """(engine path, stand-in module) with the GPU probe, flavour and buffers faked."""
    arrays = _HostArrays()
    trt = _fake_tensorrt(arrays)
    status = GpuStatus(True, "fake", 1, 0, "Fake GPU", (9, 0), "cupy")
    monkeypatch.setattr(runtime, "gpu_status", lambda device: status)
    monkeypatch.setattr(
        runtime, "detect_flavour", lambda: Flavour("tensorrt", trt.__version__, 10, False, trt)
    )
    monkeypatch.setattr(runtime, "array_library", lambda prefer, device: arrays)
    engine = tmp_path / "net.engine"
    engine.write_bytes(b"plan bytes")
    return engine, trt


@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_tensorrt_backend_has_the_protocol(fake_trt, cuda_graphs):
    engine, _ = fake_trt
    backend = runtime.TensorRTBackend(engine, cuda_graphs=cuda_graphs)
    assert backend.inputs == {"images": TensorSpec("images", (-1, 3, 4, 4), "float32")}
    assert backend.outputs == {"heatmaps": TensorSpec("heatmaps", (-1, 2, 4, 4), "float32")}
    assert backend.batch_range == (1, 4) and backend.stream_handle == 0x51
    x = np.arange(3 * 3 * 4 * 4, dtype=np.float32).reshape(3, 3, 4, 4)
    if cuda_graphs:  # batch 3 runs in bucket 4; the output is sliced back to 3
        np.testing.assert_array_equal(backend.run({"images": x[:1]})["heatmaps"], 2 * x[:1, :2])
    out = _check_backend(backend, x)
    np.testing.assert_array_equal(out, 2 * x[:, :2])
    assert backend._engine is None and backend._context is None and not backend._buckets
    backend.synchronize()  # nothing left to wait for: no error


def test_tensorrt_backend_closes_as_a_context_manager(fake_trt):
    engine, _ = fake_trt
    with runtime.TensorRTBackend(engine) as backend:
        assert backend._engine is not None
    assert backend._engine is None
    with pytest.raises(InferenceError, match=r"TensorRTBackend for .*net\.engine is closed"):
        backend.run_async({"images": np.zeros((1, 3, 4, 4), np.float32)})


def test_tensorrt_plan_that_does_not_deserialize_is_an_inference_error(fake_trt):
    """Loading an engine at run time is not building one: InferenceError, not EngineBuildError."""
    engine, _ = fake_trt
    engine.write_bytes(b"garbage")
    with pytest.raises(InferenceError, match=r"could not deserialize.*magicTagRead") as err:
        runtime.TensorRTBackend(engine)
    assert not isinstance(err.value, EngineBuildError)
    assert "rebuild it here with rtpose-build" in str(err.value)


def test_tensorrt_manifest_of_another_builder_is_an_inference_error(fake_trt, make_manifest):
    engine, trt = fake_trt
    other = make_manifest(builder=BuilderStamp("tensorrt", "10.12.0.36", None, (9, 0)))
    with pytest.raises(InferenceError, match=r"version 10\.12\.0\.36 != 10\.13\.0\.35") as err:
        runtime.TensorRTBackend(engine, manifest=other)
    assert str(engine) in str(err.value)
    assert trt.Engine.contexts == 0  # refused before the plan was deserialized
    same = make_manifest(builder=BuilderStamp("tensorrt", "10.13.0.35", None, (9, 0)))
    manifest_file = engine.with_suffix(".json")
    same.save(manifest_file)  # found beside the engine
    with runtime.TensorRTBackend(engine) as backend:
        assert backend.manifest == same
    manifest_file.write_text("[]")
    with pytest.raises(InferenceError, match=r"net\.json is unreadable"):
        runtime.TensorRTBackend(engine)


# ---- selection ------------------------------------------------------------------------------


def test_auto_picks_tensorrt_only_for_a_module_the_backend_can_import(monkeypatch):
    """``auto`` asks the flavour list: a lean runtime or a module name no flavour imports does
    not make TensorRT "usable" (the backend could not load it)."""
    import importlib.util

    real = importlib.util.find_spec
    present: set[str] = set()

    def find_spec(name, *args):
        if name in {"tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings", "tensorrt_lean"}:
            return object() if name in present else None
        return real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(probe, "gpu_status", lambda **kw: GpuStatus(True, "fake GPU"))
    present.update({"tensorrt_lean", "tensorrt_rtx"})
    assert resolve_backend_name("auto") != "tensorrt"
    for module in FLAVOUR_MODULES.values():
        present.clear()
        present.add(module)
        assert resolve_backend_name("auto") == "tensorrt"
    monkeypatch.setattr(probe, "gpu_status", lambda **kw: GpuStatus(False, "no GPU"))
    assert resolve_backend_name("auto") != "tensorrt"


def test_backend_selection_imports_no_tensorrt():
    code = (
        "import sys\n"
        "from rtpose.backends import resolve_backend_name\n"
        "resolve_backend_name('auto')\n"
        f"print([m for m in {tuple(FLAVOUR_MODULES.values())!r} if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_unknown_backend_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown backend 'trt'; choose one of auto, onnxruntime"):
        resolve_backend_name("trt")
