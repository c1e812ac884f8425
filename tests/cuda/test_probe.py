"""One GPU probe: every GPU check of rtpose answers what rtpose.cuda.probe.gpu_status answers.

The probe's own sources (rtpose._C, cupy, nvidia-smi) are tested in
tests/backends/test_tensorrt_backend.py; here its answer is monkeypatched and the checks derived
from it are held to it.
"""

from __future__ import annotations

import importlib.util
import re
import types

import pytest

import rtpose.ops
import rtpose.video
from rtpose import _native
from rtpose.cuda import arrays, probe
from rtpose.cuda.probe import GpuStatus
from rtpose.errors import BackendUnavailableError

ANSWERS = [
    GpuStatus(
        True, "2 CUDA device(s) found by rtpose._C", 2, 0, "NVIDIA H200", (9, 0), "rtpose._C"
    ),
    GpuStatus(False, "CUDA runtime: no CUDA-capable device is detected", source="rtpose._C"),
    GpuStatus(False, "device 0 requested but only 0 CUDA device(s) are visible", source="cupy"),
]


@pytest.fixture
def cuda_build(monkeypatch):
    """An rtpose._C built with CUDA whose device queries must not be asked directly."""

    def unexpected():
        raise AssertionError("a GPU check asked rtpose._C instead of rtpose.cuda.probe")

    cuda = types.SimpleNamespace(device_count=unexpected, device_error=unexpected)
    monkeypatch.setattr(_native, "load", lambda: types.SimpleNamespace(has_cuda=True, cuda=cuda))


def _answer(monkeypatch, status: GpuStatus) -> None:
    monkeypatch.setattr(probe, "gpu_status", lambda *, device=0: status)


def _cupy_installed(monkeypatch, installed: bool) -> None:
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "cupy":
            return object() if installed else None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize("status", ANSWERS, ids=["gpu", "no-driver", "no-device"])
def test_every_gpu_check_agrees_with_gpu_status(monkeypatch, cuda_build, status):
    _answer(monkeypatch, status)
    _cupy_installed(monkeypatch, True)
    assert rtpose.ops.gpu_available is arrays.gpu_available
    assert arrays.gpu_available() is status.available
    assert rtpose.video._gpu_available() is status.available
    if status.available:
        arrays.cuda_ops("op")
    else:
        with pytest.raises(BackendUnavailableError, match=rf"^op: .*{re.escape(status.reason)}"):
            arrays.cuda_ops("op")


def test_video_also_needs_cupy_for_gpu_frames(monkeypatch, cuda_build):
    """DALI frames are held as cupy arrays: a GPU without cupy is no GPU for decoding."""
    _answer(monkeypatch, ANSWERS[0])
    _cupy_installed(monkeypatch, False)
    assert not rtpose.video._gpu_available()
    assert arrays.gpu_available()  # the ops' kernels need no cupy


def test_kernels_need_a_cuda_build_whatever_the_probe_says(monkeypatch):
    """A GPU found by cupy or nvidia-smi cannot run kernels that rtpose._C was built without."""
    _answer(monkeypatch, ANSWERS[0])
    monkeypatch.setattr(_native, "load", lambda: types.SimpleNamespace(has_cuda=False))
    assert not arrays.gpu_available()
    with pytest.raises(BackendUnavailableError, match=r"built without CUDA"):
        arrays.cuda_ops("op")


def test_the_probe_answers_from_the_emulated_rtpose_c(emulated_gpu):
    """With rtpose._C built with CUDA, gpu_status asks it first: the derived checks cannot
    disagree with the kernels' own view."""
    status = probe.gpu_status()
    assert status.available and status.source == "rtpose._C" and status.device_count == 1
    assert arrays.gpu_available()
