"""Reading checkpoint files and loading them through explicit key maps.

A family module (``mspn.py``, ``hourglass.py``, ...) owns the maps from each public checkpoint
layout to its own key names: pure ``dict -> dict`` functions that rename (and where needed fold
or drop) tensors. This module holds what every family shares:

- :func:`read_state_dict`: ``torch.load(weights_only=True)`` (never unpickles code) and unwraps
  the usual containers (``{"state_dict": ...}`` of MMPose, ``{"model": ...}`` of the Megvii
  ``cvpack`` trainer, ``{"state_dict": ...}`` with ``model.module.`` of pytorch_stacked_hourglass).
- :func:`strip_prefix`, :func:`rename`: the building blocks of the maps.
- :func:`load_state_dict_strict`: loads a mapped dict into a network, refusing missing, extra or
  mis-shaped tensors with a message that lists them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from rtpose._deps import require
from rtpose.errors import CheckpointError

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "net", "weights")
_LISTED = 12  # how many keys an error message shows per category


def read_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """The tensors of a checkpoint file, unwrapped from its training container.

    Raises:
        FileNotFoundError / IsADirectoryError: ``path`` is not a file.
        CheckpointError: the file is not a torch checkpoint, needs code to unpickle, or holds no
            tensor dictionary.
    """
    torch = require("torch", purpose="reading PyTorch checkpoints")
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"weights must be a checkpoint file, got a directory: {path}")
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt / foreign / unsafe files
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint with weights_only=True "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    return unwrap_state_dict(obj, source=str(path))


def unwrap_state_dict(obj: Any, *, source: str = "checkpoint") -> dict[str, Any]:
    """Find the ``name -> tensor`` dict inside a loaded checkpoint object."""
    torch = require("torch", purpose="reading PyTorch checkpoints")
    for _ in range(3):  # containers nest at most a couple of levels
        if not isinstance(obj, Mapping):
            break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {str(k): v for k, v in obj.items()}
        inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if isinstance(obj, Mapping) and obj:
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if len(tensors) == len(obj):
            return tensors
    kind = type(obj).__name__
    keys = list(obj)[:_LISTED] if isinstance(obj, Mapping) else []
    raise CheckpointError(
        f"{source}: no tensor dictionary found (top level is a {kind}"
        + (f" with keys {keys}" if keys else "")
        + "); expected a state_dict, or a dict holding one under 'state_dict' or 'model'"
    )


def strip_prefix(state: Mapping[str, Any], prefixes: Iterable[str]) -> dict[str, Any]:
    """Remove the first matching prefix of each key (e.g. ``module.``, ``model.module.``)."""
    prefixes = sorted(prefixes, key=len, reverse=True)
    out = {}
    for key, value in state.items():
        for p in prefixes:
            if key.startswith(p):
                key = key[len(p) :]
                break
        out[key] = value
    return out


def rename(
    state: Mapping[str, Any], rules: Iterable[tuple[str, str | Callable[[re.Match], str]]]
) -> dict[str, Any]:
    """Apply regex substitutions to every key, in order (``re.sub`` semantics per rule)."""
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out = {}
    for key, value in state.items():
        new = key
        for pattern, repl in compiled:
            new = pattern.sub(repl, new)
        if new in out:
            raise CheckpointError(f"key map sends two checkpoint keys to {new!r} (one is {key!r})")
        out[new] = value
    return out


def _listing(keys: list[str], *, depth: int = 4) -> str:
    """Keys for an error message: those sharing their first ``depth`` name parts are grouped
    (``backbone.multi_stage_rsn.1.downsample.* (420 keys)``), so a missing stage reads as one
    line instead of hundreds."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        parts = key.split(".")
        prefix = ".".join(parts[:depth]) + ".*" if len(parts) > depth + 1 else key
        groups.setdefault(prefix, []).append(key)
    items = [
        members[0] if len(members) == 1 else f"{prefix} ({len(members)} keys)"
        for prefix, members in groups.items()
    ]
    shown = ", ".join(items[:_LISTED])
    more = f", ... ({len(items) - _LISTED} more groups)" if len(items) > _LISTED else ""
    return shown + more


def load_state_dict_strict(model, state: Mapping[str, Any], *, arch: str, source: str) -> None:
    """Load ``state`` (already in the network's key names) into ``model``, all or nothing.

    Raises:
        CheckpointError: listing the missing keys, the unexpected keys and the keys whose shapes
            differ (checkpoint shape vs network shape); the network is left untouched.
    """
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state)
    extra = sorted(k for k in state if k not in own)
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(own)
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {_listing(missing)}")
        if extra:
            parts.append(f"{len(extra)} unexpected: {_listing(extra)}")
        if shapes:
            shown = ", ".join(shapes[:_LISTED])
            more = f", ... ({len(shapes) - _LISTED} more)" if len(shapes) > _LISTED else ""
            parts.append(f"{len(shapes)} with another shape (checkpoint vs {arch}): {shown}{more}")
        raise CheckpointError(
            f"{source} does not fit {arch}: " + "; ".join(parts) + ". Is it a checkpoint of "
            "another architecture, keypoint count or number of stages?"
        )
    model.load_state_dict(dict(state), strict=True)
