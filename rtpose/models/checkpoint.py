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

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from rtpose._deps import require
from rtpose.errors import CheckpointError

log = logging.getLogger(__name__)

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "net", "weights")
_LISTED = 12  # how many keys an error message shows per category


def read_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """The tensors of a checkpoint file, unwrapped from its training container.

    Raises:
        FileNotFoundError / IsADirectoryError: ``path`` is not a file.
        CheckpointError: the file is not a torch checkpoint, needs code to unpickle, or holds no
            tensor dictionary.
    """
    return read_checkpoint(path)[0]


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The tensors of a checkpoint file (as :func:`read_state_dict`) and the dataset metadata it
    carries, if any: ``meta["dataset_meta"]`` of files written by mmengine's runner and kept by
    MMPose's ``publish_model`` (keypoint names, flip pairs, sigmas, colours as numpy arrays).

    ``torch.load(weights_only=True)`` admits, besides tensors and plain containers, exactly
    numpy's array and scalar reconstruction (``ndarray``, ``dtype`` and the classes of the
    numeric, bool and string dtypes, ``_reconstruct``, ``scalar``; ``numpy._core.multiarray``
    as numpy 2 writes it and ``numpy.core.multiarray`` as numpy 1 did): data, never code.
    """
    torch = require("torch", purpose="reading PyTorch checkpoints")
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"weights must be a checkpoint file, got a directory: {path}")
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        with torch.serialization.safe_globals(_numpy_reconstruction()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt / foreign / unsafe files
        raise CheckpointError(_load_failure(path, exc)) from exc
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    dataset = meta.get("dataset_meta") if isinstance(meta, Mapping) else None
    return unwrap_state_dict(obj, source=str(path)), (
        dict(dataset) if isinstance(dataset, Mapping) else None
    )


def _numpy_reconstruction() -> list:
    """numpy's pickling entry points for arrays and scalars, under both module spellings."""
    import numpy as np

    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    names = []
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        names += [(multiarray._reconstruct, f"{module}._reconstruct"),
                  (multiarray.scalar, f"{module}.scalar")]  # fmt: skip
    # unpickling ``numpy.dtype("u1")`` builds an instance of its class (numpy.dtypes.UInt8DType),
    # which torch checks too: the classes of the numeric, bool and string dtypes
    kinds = [type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGUS"]
    return [np.ndarray, np.dtype, *dict.fromkeys(kinds), *names]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _load_failure(path: Path, exc: Exception) -> str:
    """rtpose's own words for a file torch.load(weights_only=True) refused."""
    text = _ANSI.sub("", str(exc))
    found = _UNSUPPORTED.search(text)
    if found:
        return (
            f"{path}: the checkpoint holds a pickled {found.group(1)}, which rtpose does not "
            "load: unpickling it could run code from the file. rtpose reads tensors, numpy "
            "arrays and plain containers only; save just the weights "
            "(torch.save(checkpoint['state_dict'], 'weights.pth')) and load that"
        )
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {first})"


def _side_name(name: str) -> str:
    """A keypoint name with the side spelled out: MMPose writes MPII's ``right_ankle`` where
    rtpose (after the MPII release) writes ``r_ankle``."""
    name = name.lower()
    for short, long in (("r_", "right_"), ("l_", "left_")):
        if name.startswith(short):
            return long + name[len(short) :]
    return name


def check_dataset_meta(meta: Mapping[str, Any] | None, skeleton, *, source: str) -> None:
    """Hold a checkpoint's dataset metadata (:func:`read_checkpoint`) to the zoo entry's
    skeleton: a different keypoint count, names or flip pairs raise CheckpointError (the network
    was trained on another keypoint set); different OKS sigmas are logged (they change only
    evaluation). Metadata without these fields passes."""
    if not meta:
        return
    n = meta.get("num_keypoints")
    if n is not None and int(n) != len(skeleton.keypoints):
        raise CheckpointError(
            f"{source}: trained on {int(n)} keypoints ({meta.get('dataset_name', 'its dataset')}),"
            f" but this model's keypoint set {skeleton.name} has {len(skeleton.keypoints)}"
        )
    names = meta.get("keypoint_id2name")
    if isinstance(names, Mapping):
        ordered = tuple(str(names[i]) for i in sorted(names))
        ours = skeleton.keypoints
        if tuple(map(_side_name, ordered)) != tuple(map(_side_name, ours)):
            diff = [f"{i}: {a} != {b}" for i, (a, b) in enumerate(zip(ordered, ours))
                    if _side_name(a) != _side_name(b)][:4]  # fmt: skip
            raise CheckpointError(
                f"{source}: its keypoints are not {skeleton.name}'s, in order "
                f"({'; '.join(diff) or f'{len(ordered)} names'})"
            )
    pairs = meta.get("flip_pairs")
    if pairs is not None:
        theirs = {tuple(sorted(int(v) for v in p)) for p in pairs}
        ours = {tuple(sorted(p)) for p in skeleton.flip_pairs}
        if theirs != ours:
            raise CheckpointError(
                f"{source}: its flip pairs {sorted(theirs)} are not {skeleton.name}'s "
                f"{sorted(ours)}"
            )
    sigmas = meta.get("sigmas")
    if sigmas is not None and skeleton.sigmas:
        import numpy as np

        theirs = np.asarray(sigmas, np.float64).ravel()
        if theirs.shape != (len(skeleton.sigmas),) or not np.allclose(
            theirs, skeleton.sigmas, atol=1e-6
        ):
            log.warning("%s: its OKS sigmas differ from %s's (evaluation uses %s's)", source,
                        skeleton.name, skeleton.name)  # fmt: skip


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
