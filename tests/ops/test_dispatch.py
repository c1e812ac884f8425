"""rtpose.ops._dispatch: the one way every op reaches its kernels (CPU and GPU), and the
translation of native failures into rtpose.errors.KernelError."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import numpy as np
import pytest
from gpu_support import HostCudaArray

from rtpose import _native
from rtpose.errors import KernelError
from rtpose.ops import affine_warp, decode_heatmaps, flip_merge
from rtpose.ops._dispatch import GpuCall, kernel_errors
from rtpose.skeletons import COCO17

FLIP17 = np.array(COCO17.flip_index)
FRAME = np.zeros((20, 30, 3), np.uint8)
MAPS = np.zeros((2, 17, 8, 6), np.float32)

# op name -> a call of it on host arrays (wrap=np.asarray) or emulated GPU arrays (HostCudaArray).
CALLS = {
    "affine_warp": lambda wrap: affine_warp(wrap(FRAME), np.eye(2, 3), (4, 4)),
    "flip_merge": lambda wrap: flip_merge(wrap(MAPS), wrap(MAPS), FLIP17),
    "decode_heatmaps": lambda wrap: decode_heatmaps(wrap(MAPS)),
}


def _native_raising(monkeypatch, error: Exception) -> None:
    """rtpose._C as a stand-in whose every op raises ``error``."""

    def fail(*args, **kwargs):
        raise error

    stand_in = types.SimpleNamespace(has_cuda=False, **{op: fail for op in CALLS})
    monkeypatch.setattr(_native, "load", lambda: stand_in)


@pytest.mark.parametrize("op", CALLS)
def test_cpu_kernel_failure_is_a_kernel_error(monkeypatch, op):
    cause = RuntimeError("std::bad_function_call in the kernel")
    _native_raising(monkeypatch, cause)
    with pytest.raises(KernelError, match=rf"^{op}: the native kernel failed: std::bad_") as info:
        CALLS[op](np.asarray)
    assert info.value.__cause__ is cause


@pytest.mark.parametrize("op", CALLS)
def test_binding_argument_errors_pass_unchanged(monkeypatch, op):
    _native_raising(monkeypatch, ValueError(f"{op}: out must be C-contiguous"))
    with pytest.raises(ValueError, match=rf"^{op}: out must be C-contiguous"):
        CALLS[op](np.asarray)


@pytest.mark.parametrize("op", CALLS)
def test_gpu_launch_failure_is_a_kernel_error(emulated_gpu, op):
    message = f"{op}: CUDA kernel launch failed: cudaErrorLaunchOutOfResources: too many resources"
    emulated_gpu.failures[op] = message
    with pytest.raises(KernelError, match=rf"^{op}: the native kernel failed: {message}") as info:
        CALLS[op](HostCudaArray)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert [name for name, _ in emulated_gpu.launches] == [op]


def test_gpu_allocation_failure_is_a_kernel_error(emulated_gpu):
    def out_of_memory(nbytes, device, stream):
        raise RuntimeError("cudaMallocAsync: cudaErrorMemoryAllocation: out of memory")

    emulated_gpu.DeviceBuffer = out_of_memory
    with pytest.raises(KernelError, match=r"^decode_heatmaps: .*cudaErrorMemoryAllocation"):
        decode_heatmaps(HostCudaArray(MAPS))


def test_python_runtime_errors_are_not_kernel_errors():
    with pytest.raises(RecursionError), kernel_errors("op"):
        raise RecursionError("not from the extension")


def test_gpu_call_keeps_uploads_until_the_launch(emulated_gpu):
    call = GpuCall("op", stream=4)
    ptr = call.upload(np.arange(6.0), device=0)
    assert call._keep and call._keep[0].ptr == ptr and call._keep[0].stream == 4
    emulated_gpu.flip_merge = lambda *args: emulated_gpu.launches.append(("flip_merge", args))
    call.launch("flip_merge", 1, 2, device=0)
    assert emulated_gpu.launches == [("flip_merge", (1, 2, 0, 4))]  # device, stream appended
    assert call._keep == []


def test_gpu_parameters_must_be_on_the_inputs_device(emulated_gpu):
    call = GpuCall("op", stream=None)
    with pytest.raises(ValueError, match=r"op: maps must be on device 1 .*got device 0"):
        call.parameter(HostCudaArray(np.zeros(3)), "maps", device=1, check=lambda v: None,
                       host=np.asarray)  # fmt: skip
    host = call.parameter([1, 2], "maps", device=0, check=lambda v: None, host=np.asarray)
    assert host == call._keep[-1].ptr


def _marshalling_calls(tree: ast.Module) -> set[str]:
    """The GPU marshalling functions of rtpose.cuda.arrays that a module uses itself."""
    private = {"cuda_ops", "device_view", "upload", "empty", "check_out", "stream_handle"}
    aliases, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "rtpose.cuda":
            aliases |= {a.asname or a.name for a in node.names if a.name == "arrays"}
        if isinstance(node, ast.ImportFrom) and node.module == "rtpose.cuda.arrays":
            used |= {a.name for a in node.names if a.name in private}
    for node in ast.walk(tree):
        is_attribute = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        if is_attribute and node.value.id in aliases and node.attr in private:
            used.add(node.attr)
    return used


def test_ops_reach_the_gpu_only_through_the_dispatcher():
    """No op module marshals GPU arrays itself (the per-op copies this module replaced)."""
    ops_dir = Path(__file__).resolve().parents[2] / "rtpose" / "ops"
    for path in sorted(ops_dir.glob("*.py")):
        if path.name != "_dispatch.py":
            used = _marshalling_calls(ast.parse(path.read_text()))
            assert not used, f"{path.name} calls rtpose.cuda.arrays.{sorted(used)} itself"
