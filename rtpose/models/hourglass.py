"""Stacked Hourglass network (Newell, Yang, Deng, "Stacked Hourglass Networks for Human Pose
Estimation", ECCV 2016, arXiv 1603.06937).

The layout and key names follow the PyTorch port ``princeton-vl/pytorch_stacked_hourglass``
(``PoseNet``), whose ``original_2hg`` / ``original_8hg`` checkpoints load through
:func:`stacked_hourglass_to_rtpose`. Two differences from the port, neither changing the outputs:

- the input is NCHW (the port takes NHWC and permutes inside the network);
- a same-width :class:`Residual` has no ``skip_layer`` (the port builds one and never uses it).

Input: (N, 3, 256, 256) RGB in [0, 1] (mean 0, std 255). Output: (N, K, 64, 64) heatmaps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rtpose.errors import CheckpointError
from rtpose.models.checkpoint import strip_prefix


class Conv(nn.Module):
    """Conv (with bias), optional BN, optional ReLU: the port's ``Conv`` (keys ``conv``, ``bn``)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, *, bn: bool, relu: bool
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=(kernel - 1) // 2, bias=True)
        self.bn = nn.BatchNorm2d(out_ch) if bn else None
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Residual(nn.Module):
    """Pre-activation bottleneck: (BN-ReLU-conv) x3 with widths C/2, C/2, C, plus a skip.

    The skip is the identity, or a 1x1 conv (``skip_layer``) when the width changes.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = Conv(in_ch, mid, 1, bn=False, relu=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = Conv(mid, mid, 3, bn=False, relu=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = Conv(mid, out_ch, 1, bn=False, relu=False)
        self.skip_layer = Conv(in_ch, out_ch, 1, bn=False, relu=False) if in_ch != out_ch else None
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.skip_layer is None else self.skip_layer(x)
        y = self.conv1(self.relu(self.bn1(x)))
        y = self.conv2(self.relu(self.bn2(y)))
        y = self.conv3(self.relu(self.bn3(y)))
        return y + skip


class Hourglass(nn.Module):
    """Recursive hourglass of ``depth`` levels, constant width ``channels``.

    ``up1`` keeps the resolution; ``low1`` (after a 2x2 max-pool), ``low2`` (the next level, or a
    Residual at the bottom) and ``low3`` work at half resolution; nearest x2 upsampling joins them.
    The input side must be divisible by ``2 ** depth``.
    """

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        self.depth = depth
        self.up1 = Residual(channels, channels)
        self.pool = nn.MaxPool2d(2, 2)
        self.low1 = Residual(channels, channels)
        self.low2 = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.low3 = Residual(channels, channels)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_levels(x)[-1]

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every level, coarsest first (the last one is :meth:`forward`'s).

        For a (N, C, 64, 64) input and depth 4: sides 8, 16, 32, 64 (the upsampling side).
        """
        up1 = self.up1(x)  # (N, C, H, W)
        low = self.low1(self.pool(x))  # (N, C, H/2, W/2)
        if self.depth > 1:
            levels = self.low2.forward_levels(low)
            low = levels[-1]
        else:
            levels = []
            low = self.low2(low)
        out = up1 + self.up2(self.low3(low))  # (N, C, H, W)
        return [*levels, out]


class Merge(nn.Module):
    """1x1 conv with bias, the port's ``Merge`` (key ``conv.conv``)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = Conv(in_ch, out_ch, 1, bn=False, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def make_stem(num_features: int) -> nn.Sequential:
    """The port's ``pre``: 7x7/2 conv, Residuals, max-pool; (N, 3, H, W) -> (N, F, H/4, W/4)."""
    return nn.Sequential(
        Conv(3, 64, 7, 2, bn=True, relu=True),
        Residual(64, 128),
        nn.MaxPool2d(2, 2),
        Residual(128, 128),
        Residual(128, num_features),
    )


def make_features(num_features: int) -> nn.Sequential:
    """Per-stack head body: Residual, then 1x1 conv + BN + ReLU (the paper's "lin")."""
    return nn.Sequential(
        Residual(num_features, num_features),
        Conv(num_features, num_features, 1, bn=True, relu=True),
    )


class StackedHourglass(nn.Module):
    """Newell's stacked hourglass with intermediate supervision after every stack.

    Args:
        num_stacks: number of hourglasses (the paper: 8; the port also publishes 2).
        num_features: width of every hourglass (256).
        num_keypoints: heatmap channels K (MPII: 16).
    """

    def __init__(self, num_stacks: int = 8, num_features: int = 256, num_keypoints: int = 16):
        super().__init__()
        if num_stacks < 1:
            raise ValueError(f"num_stacks must be >= 1, got {num_stacks}")
        self.num_stacks = num_stacks
        self.num_keypoints = num_keypoints
        f, k = num_features, num_keypoints
        self.pre = make_stem(f)
        self.hgs = nn.ModuleList(nn.Sequential(Hourglass(4, f)) for _ in range(num_stacks))
        self.features = nn.ModuleList(make_features(f) for _ in range(num_stacks))
        self.outs = nn.ModuleList(Conv(f, k, 1, bn=False, relu=False) for _ in range(num_stacks))
        self.merge_features = nn.ModuleList(Merge(f, f) for _ in range(num_stacks - 1))
        self.merge_preds = nn.ModuleList(Merge(k, f) for _ in range(num_stacks - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> the last stack's heatmaps (N, K, H/4, W/4)."""
        return self.forward_all(x)[-1]

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stack's heatmaps (N, K, H/4, W/4), last stack last."""
        x = self.pre(x)  # (N, F, H/4, W/4)
        preds = []
        for s in range(self.num_stacks):
            feature = self.features[s](self.hgs[s](x))  # (N, F, H/4, W/4)
            pred = self.outs[s](feature)  # (N, K, H/4, W/4)
            preds.append(pred)
            if s < self.num_stacks - 1:
                x = x + self.merge_preds[s](pred) + self.merge_features[s](feature)
        return preds


# Every key a pytorch_stacked_hourglass PoseNet state_dict may hold (after the prefix).
_BN = r"bn\d?\.(weight|bias|running_mean|running_var|num_batches_tracked)"
_RESIDUAL = r"(pre\.[134]|hgs\.\d+\.0(\.low2)*\.(up1|low1|low2|low3)|features\.\d+\.0)"
_PORT_KEY = re.compile(
    r"(pre\.0\.(conv\.(weight|bias)|" + _BN + r")"
    rf"|{_RESIDUAL}\.({_BN}|(conv[123]|skip_layer)\.conv\.(weight|bias))"
    rf"|features\.\d+\.1\.(conv\.(weight|bias)|{_BN})"
    r"|outs\.\d+\.conv\.(weight|bias)"
    r"|merge_(features|preds)\.\d+\.conv\.conv\.(weight|bias))"
)


def stacked_hourglass_to_rtpose(state: Mapping[str, Any]) -> dict[str, Any]:
    """Map a pytorch_stacked_hourglass checkpoint to :class:`StackedHourglass` keys.

    Strips ``model.module.`` / ``module.`` and drops the ``skip_layer`` of every same-width
    Residual (a square 1x1 conv the port builds but never runs). Nothing else is changed.

    Raises:
        CheckpointError: a key that a PoseNet state_dict cannot hold (listed).
    """
    state = strip_prefix(state, ["model.module.", "module."])
    unknown = sorted(k for k in state if not _PORT_KEY.fullmatch(k))
    if unknown:
        shown = ", ".join(unknown[:12])
        if len(unknown) > 12:
            shown += f", ... ({len(unknown) - 12} more)"
        raise CheckpointError(
            f"{len(unknown)} keys are not pytorch_stacked_hourglass PoseNet keys: {shown}; "
            "expected pre.*, hgs.*, features.*, outs.*, merge_features.*, merge_preds.*"
        )
    out = {}
    for key, value in state.items():
        if ".skip_layer.conv." in key:
            weight = state.get(key.rsplit(".", 1)[0] + ".weight")
            if weight is not None and weight.shape[0] == weight.shape[1]:
                continue  # unused: the Residual keeps its width, the skip is the identity
        out[key] = value
    return out
