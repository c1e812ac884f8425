"""Thin driver for the CMake build of the native extension ``rtpose._C``.

Project metadata lives in pyproject.toml; this file only tells setuptools that ``rtpose._C`` is
built by CMake (CMakeLists.txt), in the style of pybind11's cmake_example and torchcodec. Works
with and without build isolation, editable or not.

Environment:
    RTPOSE_BUILD_JOBS: parallel compile jobs (default: number of CPUs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    """An extension whose sources are listed in CMakeLists.txt, not here."""

    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures and builds the CMake project, placing the module where setuptools expects it."""

    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, CMakeExtension):
            super().build_extension(ext)
            return
        cmake = _find_cmake()
        ext_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = ROOT / "build" / _build_tag()
        configure = [
            cmake,
            "-S",
            str(ROOT),
            "-B",
            str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={ext_dir}",
            # Passed every time: a cached path into a deleted isolated build env must not stick.
            f"-Dpybind11_DIR={_pybind11_cmake_dir()}",
        ]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        build = [cmake, "--build", str(build_dir), "-j", str(self._jobs())]
        _run(configure, step="configure")
        _run(build, step="build")

    def _jobs(self) -> int:
        env_jobs = os.environ.get("RTPOSE_BUILD_JOBS")
        if env_jobs:
            try:
                return max(1, int(env_jobs))
            except ValueError as exc:
                raise CompileError(
                    f"RTPOSE_BUILD_JOBS must be a positive integer, got {env_jobs!r}"
                ) from exc
        if isinstance(self.parallel, int) and self.parallel > 0:
            return self.parallel
        return os.cpu_count() or 1


def _find_cmake() -> str:
    """The cmake of the `cmake` pip package (a build requirement) if importable, else PATH's."""
    try:
        import cmake as cmake_package

        bundled = Path(cmake_package.CMAKE_BIN_DIR) / "cmake"
        if bundled.is_file():
            return str(bundled)
    except (ImportError, AttributeError):
        pass
    cmake = shutil.which("cmake")
    if cmake is None:
        raise CompileError(
            "rtpose: cmake was not found on PATH, so the native extension rtpose._C cannot be "
            "built. Install it (pip install 'cmake>=3.18') or build with isolation (pip install .)."
        )
    return cmake


def _pybind11_cmake_dir() -> str:
    try:
        import pybind11
    except ImportError as exc:
        raise CompileError(
            "rtpose: pybind11 is needed to build rtpose._C: pip install 'pybind11>=2.12', "
            "or build with isolation (pip install .)."
        ) from exc
    return pybind11.get_cmake_dir()


def _build_tag() -> str:
    """One CMake build directory per platform, interpreter and generator.

    CMake refuses to reuse a build directory configured with another generator, and a directory
    per interpreter keeps builds for several Pythons apart.
    """
    generator = "ninja" if shutil.which("ninja") else "make"
    return f"{sysconfig.get_platform()}-{sys.implementation.cache_tag}-{generator}"


def _run(cmd: list[str], *, step: str) -> None:
    print(" ".join(cmd), flush=True)
    try:
        subprocess.run(cmd, cwd=ROOT, check=True)
    except subprocess.CalledProcessError as exc:
        raise CompileError(
            f"rtpose: CMake {step} step failed (exit code {exc.returncode}), so the native "
            f"extension rtpose._C was not built. See the CMake output above.\n"
            f"Command: {' '.join(cmd)}"
        ) from exc


setup(
    ext_modules=[CMakeExtension("rtpose._C")],
    cmdclass={"build_ext": CMakeBuild},
)
