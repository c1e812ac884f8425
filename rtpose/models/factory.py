"""``create_model``: the one front door from a zoo name (and a checkpoint) to a torch network.

Checkpoints load through each family's explicit key map (MMPose 0.x / 1.x files, the authors'
MSPN / RSN files, pytorch_stacked_hourglass files; files saved from our own networks load through
the same maps, since our key names are the MMPose / port names). Loading is all or nothing: a
missing, extra or mis-shaped tensor raises :class:`rtpose.errors.CheckpointError` listing them,
and a checkpoint of another family or keypoint count says so in plain words.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rtpose.errors import CheckpointError
from rtpose.models.zoo import ModelInfo, Normalisation, get_model_info

# Key fragments that identify a checkpoint's family, checked in this order.
_SIGNATURES: tuple[tuple[str, str], ...] = (
    ("multi_stage_mspn.", "mspn (MSPN-50)"),
    ("multi_stage_rsn.", "rsn (RSN)"),
    ("hourglass_modules.", "hourglass52 (MMPose HourglassNet)"),
    ("msr_hg.", "mssnet (MSS-net)"),
    ("hgs.", "hourglass (Newell stacked hourglass)"),
    ("stage0.downsample.layer1.0.conv_bn_relu2_1_1", "rsn (RSN, authors' layout)"),
    ("stage0.downsample.layer1.0.conv_bn_relu1", "mspn (MSPN, authors' layout)"),
    ("model.23.", "yolo-pose (ultralytics)"),
    ("model.22.", "yolo-pose (ultralytics)"),
)


def _network_class(family: str) -> Callable[..., Any]:
    if family == "hourglass":
        from rtpose.models.hourglass import StackedHourglass

        return StackedHourglass
    if family == "mssnet":
        from rtpose.models.mssnet import MSSNet

        return MSSNet
    if family == "hourglass52":
        from rtpose.models.hourglass52 import HourglassNet

        return HourglassNet
    if family == "mspn":
        from rtpose.models.mspn import MSPN

        return MSPN
    if family == "rsn":
        from rtpose.models.rsn import RSN

        return RSN
    raise ValueError(f"no network class for family {family!r}")


def build_network(info: ModelInfo):
    """The randomly initialised network of a top-down zoo entry, in eval mode."""
    net = _network_class(info.family)(**dict(info.arch), num_keypoints=info.num_keypoints)
    return net.eval()


def create_model(name: str, weights: str | os.PathLike | None = None, **overrides: Any):
    """Build the torch network of zoo entry ``name``, optionally loading a checkpoint.

    Args:
        name: zoo name (:func:`rtpose.models.list_models`).
        weights: checkpoint file (MMPose, authors' or pytorch_stacked_hourglass layout; see the
            README). None: random initialisation (top-down models) / the fetched default weights
            (YOLO11n-pose).
        overrides: ``input_size=(h, w)`` to use the network at another input size (checked
            against the network's stride).

    Returns:
        The network (``torch.nn.Module``, eval mode) with two attributes: ``info`` (the
        :class:`ModelInfo`, at the requested input size) and ``normalisation`` (how its input
        crops are normalised: this depends on the checkpoint layout, e.g. the authors' MSPN /
        RSN files expect BGR).
    """
    info = get_model_info(name)
    unknown = set(overrides) - {"input_size"}
    if unknown:
        raise TypeError(f"create_model() got unexpected keyword arguments {sorted(unknown)}")
    if "input_size" in overrides:
        info = info.with_input_size(overrides["input_size"])
    if not info.top_down:
        from rtpose.models.weights import resolve_weights
        from rtpose.models.yolo_checkpoint import load_yolo_pose

        model = load_yolo_pose(resolve_weights(info, weights), expect_scale=info.scale)
        model.info, model.normalisation = info, info.normalisation
        return model
    model = build_network(info)
    norm = info.normalisation
    if weights is not None:
        norm = load_weights(model, info, weights)
    model.info = info
    model.normalisation = norm
    return model


def load_weights(model, info: ModelInfo, weights: str | os.PathLike) -> Normalisation:
    """Map and load ``weights`` into ``model`` (a network of ``info``); return its normalisation."""
    from rtpose.models.checkpoint import check_dataset_meta, load_state_dict_strict, read_checkpoint
    from rtpose.skeletons import get_skeleton

    path = Path(weights).expanduser()
    state, meta = read_checkpoint(path)
    check_dataset_meta(meta, get_skeleton(info.skeleton), source=str(path))
    _check_family(state, info, path)
    mapped, norm = map_checkpoint(info, state, source=str(path))
    _check_keypoint_count(model, mapped, info, path)
    load_state_dict_strict(model, mapped, arch=f"{info.name} ({info.family})", source=str(path))
    return norm


def map_checkpoint(
    info: ModelInfo, state: Mapping[str, Any], *, source: str = "checkpoint"
) -> tuple[dict[str, Any], Normalisation]:
    """Rename a checkpoint's tensors to ``info``'s network names; also the input normalisation
    the checkpoint was trained with."""
    family = info.family
    if family == "hourglass":
        from rtpose.models.hourglass import stacked_hourglass_to_rtpose

        return stacked_hourglass_to_rtpose(state), info.normalisation
    if family == "hourglass52":
        from rtpose.models.hourglass52 import mmpose_hourglass_to_rtpose

        return mmpose_hourglass_to_rtpose(state), info.normalisation
    if family in ("mspn", "rsn"):
        from rtpose.models import megvii_checkpoint as megvii

        if megvii.detect_layout(state) == "official":
            return megvii.megvii_to_rtpose(state, family=family), megvii.OFFICIAL_NORMALISATION
        return megvii.mmpose_to_rtpose(state), info.normalisation
    from rtpose.models.checkpoint import strip_prefix

    return strip_prefix(state, ("module.",)), info.normalisation  # mssnet: our own files


def identify_checkpoint(keys: Any) -> str | None:
    """Best guess of the network family a checkpoint's key names belong to (None: unknown)."""
    keys = list(keys)
    for fragment, family in _SIGNATURES:
        if any(fragment in k for k in keys):
            return family
    return None


def _check_family(state: Mapping[str, Any], info: ModelInfo, path: Path) -> None:
    found = identify_checkpoint(state)
    if found is None or found.split(" ")[0] == info.family:
        return
    # mssnet builds on the Newell hourglass: its keys also contain "hgs."
    if info.family == "mssnet" and found.startswith("hourglass "):
        return
    raise CheckpointError(
        f"{path} looks like a {found} checkpoint, but model {info.name!r} is a {info.family} "
        f"network; choose the zoo model that matches the checkpoint"
    )


def _check_keypoint_count(model, mapped: Mapping[str, Any], info: ModelInfo, path: Path) -> None:
    """Say 'wrong keypoint count' when every shape mismatch is K' in place of our K."""
    k = info.num_keypoints
    own = model.state_dict()
    counts = set()
    for key, tensor in mapped.items():
        if key not in own or tuple(tensor.shape) == tuple(own[key].shape):
            continue
        ours, theirs = tuple(own[key].shape), tuple(tensor.shape)
        diff = [(a, b) for a, b in zip(ours, theirs) if a != b]
        if len(ours) != len(theirs) or any(a != k for a, _ in diff):
            return  # some other mismatch: the strict loader lists it
        counts.update(b for _, b in diff)
    if len(counts) == 1:
        (other,) = counts
        raise CheckpointError(
            f"{path} predicts {other} keypoints, but {info.name!r} outputs the {k} keypoints of "
            f"the {info.skeleton} skeleton; use a zoo model for a {other}-keypoint set "
            f"(e.g. an -mpii entry for MPII's 16 joints)"
        )
