"""Loading of the native extension ``rtpose._C``, shared by the ops (rtpose.ops) and the GPU probe
(rtpose.cuda.probe)."""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

_module: ModuleType | None = None
_tried = False
_error = ""


def load() -> ModuleType | None:
    """``rtpose._C``, imported on first use; None (and :func:`error` says why) when it fails."""
    global _module, _tried, _error
    if not _tried:
        _tried = True
        # The kernels use OpenMP. libgomp's default is to spin-wait after each parallel region,
        # which steals the cores from the inference runtime that runs right after the warp;
        # passive waiting costs nothing here (measured: model time 46.8 -> 44.6 ms/frame on
        # 2 cores). setdefault: a user's own setting wins. Read when libgomp loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            _module = importlib.import_module("rtpose._C")
        except ImportError as exc:
            _error = f"{type(exc).__name__}: {exc}"
    return _module


def error() -> str:
    """Why ``rtpose._C`` failed to import ("" when it imported or was not tried)."""
    return _error


class NativeLoader:
    """One op's view of the extension: returns it, and warns once when the op falls back to
    its numpy reference because the extension is missing."""

    def __init__(self, op: str, log: logging.Logger, *, force_missing: bool = False) -> None:
        """``force_missing`` (tests): behave as if the extension failed to import."""
        self._op = op
        self._log = log
        self._force_missing = force_missing
        self._warned = False

    @property
    def op(self) -> str:
        return self._op

    def get(self) -> ModuleType | None:
        return None if self._force_missing else load()

    @property
    def error(self) -> str:
        return "ImportError: disabled for a test" if self._force_missing else error()

    def warn_fallback(self) -> None:
        if not self._warned:
            self._warned = True
            self._log.warning(
                "rtpose native extension rtpose._C is not available (%s); %s uses the slower "
                "numpy reference. Rebuild it with: pip install --no-build-isolation -e .",
                self.error,
                self._op,
            )
