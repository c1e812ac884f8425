"""Load ultralytics YOLO checkpoints without importing ultralytics and without running pickled code.

An ultralytics ``.pt`` file pickles whole module objects (``ultralytics.nn.tasks.PoseModel`` and its
children). ``torch.load(weights_only=True)`` refuses every class that is not allow-listed, so we
allow-list *stand-in* classes under the original names. A stand-in only records the pickled state
(``__setstate__`` stores the attribute dict); no ultralytics code exists here and nothing from
the file is executed. We then read the architecture description (``yaml``) and collect the
tensors of every ``_parameters`` / ``_buffers`` dict into a flat state_dict with ultralytics'
key names.
"""

from __future__ import annotations

import io
import logging
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtpose._deps import require
from rtpose.errors import CheckpointError

log = logging.getLogger(__name__)


class _StandIn:
    """Placeholder for a pickled class: keeps the pickled attribute dict, executes nothing."""

    _pickled_name = "?"

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"_state": state}

    def __repr__(self) -> str:
        return f"<stand-in for {self._pickled_name}>"


def _stand_in_getattr(obj: Any, name: str) -> str:
    """Stands in for ``builtins.getattr`` (pickled for bound methods): returns a tag only."""
    return f"<getattr {getattr(obj, '_pickled_name', type(obj).__name__)}.{name}>"


def _pickled_globals(path: Path) -> set[str]:
    """Every ``module.name`` named by GLOBAL opcodes of the checkpoint's pickle (no execution)."""
    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkl:
            raise CheckpointError(
                f"{path}: not a torch checkpoint (no data.pkl inside the zip file)"
            )
        data = zf.read(pkl[0])
    names: set[str] = set()
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if op.name == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            names.add(f"{'builtins' if module == '__builtin__' else module}.{name}")
        elif op.name in ("STACK_GLOBAL", "INST"):
            raise CheckpointError(f"{path}: unsupported pickle opcode {op.name} in checkpoint")
    return names


# Plain-data globals that torch's weights-only unpickler already allows (tensors, storages, ...).
_HANDLED_BY_TORCH = ("torch._utils.", "torch.", "collections.OrderedDict", "builtins.set")
# Classes we replace with stand-ins: modules from ultralytics and torch.nn only.
_STAND_IN_PREFIXES = ("ultralytics.", "torch.nn.modules.")


@dataclass(frozen=True)
class YoloCheckpoint:
    """What we take from an ultralytics checkpoint: the architecture dict and the weights."""

    yaml: dict[str, Any]  # the model's stored architecture description (parsed YAML)
    state_dict: dict[str, Any]  # key -> torch.Tensor, ultralytics key names ("model.0.conv.weight")
    metadata: dict[str, Any]  # version, date, license, task ... (plain values only)


def load_yolo_checkpoint(path: str | Path) -> YoloCheckpoint:
    """Read an ultralytics YOLO ``.pt`` file safely (``weights_only=True``, stand-in classes).

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: the file is not a torch checkpoint, is corrupt, or is not an ultralytics
            model checkpoint.
    """
    torch = require("torch", purpose="loading YOLO checkpoints")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path}: not a torch checkpoint (not a zip archive; corrupt or wrong file?)"
        )
    try:
        names = _pickled_globals(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint ({exc})") from exc

    allowed: list[Any] = []
    for full in sorted(names):
        if full.startswith(_STAND_IN_PREFIXES):
            module, _, cls_name = full.rpartition(".")
            cls = type(cls_name, (_StandIn,), {"__module__": module, "_pickled_name": full})
            allowed.append((cls, full))
        elif full == "builtins.getattr":
            allowed.append((_stand_in_getattr, full))
        elif not full.startswith(_HANDLED_BY_TORCH):
            raise CheckpointError(
                f"{path}: the checkpoint references '{full}', which is not part of an ultralytics "
                "model; refusing to load it"
            )
    try:
        with torch.serialization.safe_globals(allowed):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (
        Exception
    ) as exc:  # torch raises many types for corrupt files (RuntimeError, Unpickling...)
        raise CheckpointError(
            f"{path}: cannot read checkpoint: {type(exc).__name__}: {exc}"
        ) from exc

    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(model, _StandIn) or not isinstance(model.state.get("yaml"), dict):
        raise CheckpointError(
            f"{path}: not an ultralytics YOLO model checkpoint "
            "(no 'model' entry with an architecture)"
        )
    state_dict: dict[str, Any] = {}
    _collect_tensors(model, "", state_dict)
    metadata = {k: v for k, v in ckpt.items() if isinstance(v, (str, int, float)) and k != "model"}
    return YoloCheckpoint(yaml=dict(model.state["yaml"]), state_dict=state_dict, metadata=metadata)


def _collect_tensors(node: _StandIn, prefix: str, out: dict[str, Any]) -> None:
    """Flatten ``_parameters`` / ``_buffers`` of a stand-in module tree into ``out``."""
    state = node.state
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    for key in ("_parameters", "_buffers"):
        for name, tensor in (state.get(key) or {}).items():
            if tensor is not None and name not in non_persistent:
                out[prefix + name] = tensor
    for name, child in (state.get("_modules") or {}).items():
        if isinstance(child, _StandIn):
            _collect_tensors(child, f"{prefix}{name}.", out)


def load_yolo_pose(path: str | Path, *, expect_scale: str | None = None):
    """Build a :class:`rtpose.models.yolo.YoloPose` from an ultralytics pose checkpoint.

    Args:
        path: the ``.pt`` file.
        expect_scale: the scale letter the caller asked for (``"n"`` for ``yolo11n-pose``); a
            checkpoint of another scale is refused rather than silently used.

    Raises:
        CheckpointError: unreadable file, not a YOLO11 pose checkpoint, wrong scale, or weights that
            do not fit the architecture (the message lists the offending keys).
    """
    from rtpose.models.yolo import YoloPose  # torch-dependent; keep this module importable alone

    ckpt = load_yolo_checkpoint(path)
    rows = ckpt.yaml.get("head") or []
    head = rows[-1][2] if rows and len(rows[-1]) == 4 else None
    if head != "Pose":
        raise CheckpointError(
            f"{path}: this is a YOLO '{head}' checkpoint, not a pose model (expected a Pose head)"
        )
    scale = ckpt.yaml.get("scale") or "n"
    if expect_scale is not None and scale != expect_scale:
        raise CheckpointError(
            f"{path}: checkpoint is YOLO11{scale}-pose but the model asked for is "
            f"yolo11{expect_scale}-pose; pass model='yolo11{scale}-pose' or the matching weights"
        )
    head_idx = len(ckpt.yaml["backbone"]) + len(rows) - 1
    nc_key = f"model.{head_idx}.cv3.0.2.bias"
    if nc_key not in ckpt.state_dict:
        raise CheckpointError(f"{path}: checkpoint has no '{nc_key}'; not a YOLO11 pose head")
    try:
        model = YoloPose(ckpt.yaml, scale=scale, nc=int(ckpt.state_dict[nc_key].shape[0]))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(f"{path}: unsupported architecture: {exc}") from exc
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()}
    ours = model.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    mis_shaped = sorted(k for k in set(ours) & set(state) if ours[k].shape != state[k].shape)
    if missing or unexpected or mis_shaped:
        raise CheckpointError(
            f"{path}: weights do not match the YOLO11{scale}-pose architecture: "
            f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}, "
            f"mis-shaped {mis_shaped[:8]}{' ...' if len(mis_shaped) > 8 else ''}"
        )
    model.load_state_dict(state, strict=True)
    return model.eval()
