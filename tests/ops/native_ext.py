"""The compiled extension for the op tests: the module, or a skip that says how to build it."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


def native_module() -> tuple[ModuleType | None, str]:
    """(rtpose._C, "") or (None, why it does not import)."""
    try:
        return importlib.import_module("rtpose._C"), ""
    except ImportError as exc:
        return None, str(exc)


def require_native() -> ModuleType:
    """rtpose._C, or skip the test (CI builds it, so there a skip means a broken build)."""
    native, error = native_module()
    if native is None:
        pytest.skip(f"rtpose._C is not built ({error}); run: pip install --no-build-isolation -e .")
    return native
