"""Checkpoint maps for MSPN and RSN: MMPose files and the authors' own (``cvpack``) files.

- MMPose 0.x files name the head ``keypoint_head.``, 1.x files ``head.``; our names are 1.x's.
- The authors' files (megvii-research/MSPN, caiyuanhao1998/RSN) wrap every conv in
  ``conv_bn_relu`` with a conv *bias* followed by BatchNorm, keep the prediction convs inside the
  up-path units (``res_conv1/2``) and name a few modules differently. A conv bias in front of a BN
  is folded exactly (in eval) into the BN: ``running_mean -= bias``.
- The authors' networks take BGR input (``OFFICIAL_NORMALISATION``), MMPose's RGB
  (``MMPOSE_NORMALISATION``): same numbers, opposite channel order.

All maps are pure functions ``state -> state`` (the caller's dict and tensors are not modified);
load the result with :func:`rtpose.models.checkpoint.load_state_dict_strict`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from rtpose.errors import CheckpointError
from rtpose.models.checkpoint import strip_prefix
from rtpose.models.zoo import MMPOSE_NORM, Normalisation

_WRAPPER_PREFIXES = ("module.", "model.module.")
_LISTED = 12
_TENSOR = r"(conv\.weight|bn\.(?:weight|bias|running_mean|running_var|num_batches_tracked))"


MMPOSE_NORMALISATION = MMPOSE_NORM
# cvpack: ToTensor (/255), then mean (0.406, 0.456, 0.485), std (0.225, 0.224, 0.229) on BGR.
OFFICIAL_NORMALISATION = Normalisation(
    mean=(0.406 * 255, 0.456 * 255, 0.485 * 255),
    std=(0.225 * 255, 0.224 * 255, 0.229 * 255),
    channel_order="bgr",
)


def detect_layout(state: Mapping[str, Any]) -> Literal["mmpose", "official"]:
    """Which layout a MSPN / RSN state dict has, from its key names.

    Raises:
        CheckpointError: neither ``backbone.`` (MMPose) nor ``top.conv.`` / ``stage{s}.``
            (authors') keys are present.
    """
    keys = list(strip_prefix(state, _WRAPPER_PREFIXES))
    if any(k.startswith("backbone.") for k in keys):
        return "mmpose"
    if any(k.startswith("top.conv.") or re.match(r"stage\d+\.", k) for k in keys):
        return "official"
    raise CheckpointError(
        f"not a MSPN / RSN checkpoint: expected keys starting with 'backbone.' (MMPose) or "
        f"'top.conv.' / 'stage0.' (authors' code), got {_listing(sorted(keys))}"
    )


def mmpose_to_rtpose(state: Mapping[str, Any]) -> dict[str, Any]:
    """MMPose 0.x / 1.x MSPN or RSN state dict -> our names.

    Strips ``module.`` wrappers, renames the 0.x head prefix ``keypoint_head.`` to ``head.`` and
    drops ``data_preprocessor.*`` (normalisation constants, not weights; MMPose drops them too).
    """
    state = strip_prefix(state, _WRAPPER_PREFIXES)
    out = {}
    for key, value in state.items():
        if key.startswith("data_preprocessor."):
            continue
        if key.startswith("keypoint_head."):
            key = "head." + key[len("keypoint_head.") :]
        out[key] = value
    return out


def _head_key(m: re.Match) -> str:
    s, k, n, tensor = int(m[1]), int(m[2]), int(m[3]), m[4]
    return f"head.predict_layers.{s * 4 + k - 1}.conv_layers.{n - 1}.{tensor}"


def _official_rules(family: Literal["mspn", "rsn"]) -> list[tuple[str, str | Callable]]:
    """(full-match pattern, replacement) for the authors' keys, after bias folding."""
    t = _TENSOR
    layer = r"stage(\d+)\.downsample\.layer([1-4])\.(\d+)"  # -> \1 stage, \2 layer, \3 block
    up = r"stage(\d+)\.upsample\.up([1-4])"  # -> \1 stage, \2 unit
    block = rf"backbone.multi_stage_{family}.\1.downsample.layer\2.\3"
    unit = rf"backbone.multi_stage_{family}.\1.upsample.up\2"
    rules: list[tuple[str, str | Callable]] = [
        (rf"top\.conv\.{t}", r"backbone.top.top.0.\1"),
        (rf"{layer}\.downsample\.{t}", block + r".downsample.\4"),
        (rf"{up}\.u_skip\.{t}", unit + r".in_skip.\3"),
        (rf"{up}\.skip([12])\.{t}", unit + r".out_skip\3.\4"),
        (rf"stage(\d+)\.upsample\.up([2-4])\.up_conv\.{t}", unit + r".up_conv.\3"),
        (rf"stage(\d+)\.upsample\.up(4)\.cross_conv\.{t}", unit + r".cross_conv.\3"),
        (rf"{up}\.res_conv([12])\.{t}", _head_key),
    ]
    if family == "mspn":  # Bottleneck: conv_bn_relu{n}.conv / .bn -> conv{n} / bn{n}
        rules += [
            (rf"{layer}\.conv_bn_relu([123])\.conv\.weight", block + r".conv\4.weight"),
            (rf"{layer}\.conv_bn_relu([123])\.bn\.(\w+)", block + r".bn\4.\5"),
        ]
    else:  # RSB: names kept, except conv_bn_relu3 -> conv_bn3
        rules += [
            (rf"{layer}\.(conv_bn_relu1|conv_bn_relu2_[1-4]_[1-4])\.{t}", block + r".\4.\5"),
            (rf"{layer}\.conv_bn_relu3\.{t}", block + r".conv_bn3.\4"),
        ]
    return rules


def official_mspn_to_rtpose(state: Mapping[str, Any]) -> dict[str, Any]:
    """State dict of megvii-research/MSPN (``iter-N.pth['model']``) -> our MSPN names.

    Raises:
        CheckpointError: a conv bias without its BN, or keys the map does not know (listed).
    """
    return _official_to_rtpose(state, "mspn")


def official_rsn_to_rtpose(state: Mapping[str, Any]) -> dict[str, Any]:
    """State dict of caiyuanhao1998/RSN (``iter-N.pth['model']``) -> our RSN names.

    Raises:
        CheckpointError: a conv bias without its BN, or keys the map does not know (listed).
    """
    return _official_to_rtpose(state, "rsn")


def megvii_to_rtpose(state: Mapping[str, Any], *, family: Literal["mspn", "rsn"]) -> dict[str, Any]:
    """Any MSPN / RSN state dict (MMPose 0.x / 1.x or the authors') -> our names.

    Use :func:`detect_layout` to choose the input normalisation of the loaded network.
    """
    if family not in ("mspn", "rsn"):
        raise ValueError(f"family must be 'mspn' or 'rsn', got {family!r}")
    if detect_layout(state) == "mmpose":
        return mmpose_to_rtpose(state)
    return _official_to_rtpose(state, family)


def _official_to_rtpose(state: Mapping[str, Any], family: Literal["mspn", "rsn"]) -> dict[str, Any]:
    state = _fold_conv_biases(strip_prefix(state, _WRAPPER_PREFIXES))
    rules = [(re.compile(p), r) for p, r in _official_rules(family)]
    out: dict[str, Any] = {}
    unmapped = []
    for key, value in state.items():
        match = next(((m, r) for p, r in rules if (m := p.fullmatch(key))), None)
        if match is None:
            unmapped.append(key)
            continue
        m, repl = match
        new = repl(m) if callable(repl) else m.expand(repl)
        if new in out:
            raise CheckpointError(f"key map sends two checkpoint keys to {new!r} (one is {key!r})")
        out[new] = value
    if unmapped:
        raise CheckpointError(
            f"{len(unmapped)} keys of the {family.upper()} authors' checkpoint have no rtpose "
            f"name: {_listing(sorted(unmapped))}. Is it a {family.upper()} checkpoint of the "
            "authors' code (megvii-research/MSPN, caiyuanhao1998/RSN)?"
        )
    return out


def _fold_conv_biases(state: Mapping[str, Any]) -> dict[str, Any]:
    """``P.conv.bias`` + ``P.bn.*`` -> ``P.bn.running_mean - bias``, bias dropped (exact in eval:
    BN subtracts its running mean right after the conv)."""
    out = dict(state)
    orphans = []
    for key in [k for k in state if k.endswith(".conv.bias")]:
        mean_key = key[: -len("conv.bias")] + "bn.running_mean"
        if mean_key not in state:
            orphans.append(key)
            continue
        bias = out.pop(key)
        out[mean_key] = state[mean_key] - bias.to(state[mean_key].dtype)
    if orphans:
        raise CheckpointError(
            f"conv biases without a BatchNorm to fold them into (expected '<name>.bn.running_mean' "
            f"beside each): {_listing(sorted(orphans))}"
        )
    return out


def _listing(keys: list[str]) -> str:
    more = f", ... ({len(keys) - _LISTED} more)" if len(keys) > _LISTED else ""
    return ", ".join(keys[:_LISTED]) + more
