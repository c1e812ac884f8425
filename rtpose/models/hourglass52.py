"""MMPose "hourglass52" / "hourglass104": the CornerNet-style HourglassNet with a CPM-style head.

Backbone from Law & Deng, "CornerNet: Detecting Objects as Paired Keypoints", ECCV 2018
(arXiv 1808.01244), itself a variant of Newell et al., "Stacked Hourglass Networks for Human Pose
Estimation", ECCV 2016. Unlike Newell's design it uses post-activation BasicBlocks, strided
blocks instead of max-pooling, and widths growing with depth (256, 256, 384, 384, 384, 512).

Key names are the MMPose 1.x names (``backbone.*``, ``head.multi_final_layers.*``); the published
0.x checkpoints load through :func:`mmpose_hourglass_to_rtpose`.

Input: (N, 3, H, W), ImageNet mean/std normalised RGB, H and W divisible by 128 (256 or 384).
Output: (N, K, H/4, W/4) heatmaps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rtpose.models.checkpoint import rename, strip_prefix

_STAGE_CHANNELS = (256, 256, 384, 384, 384, 512)
_STAGE_BLOCKS = (2, 2, 2, 2, 2, 4)
_FEAT_CHANNELS = 256


class ConvBN(nn.Module):
    """Conv (no bias) -> BN -> optional ReLU (MMCV ``ConvModule`` keys ``conv``, ``bn``)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, *, relu: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.relu is None else self.relu(x)


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU.

    The shortcut (``downsample``: 1x1 conv + BN) exists when the stride or the width changes.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + skip)


def res_layer(
    in_ch: int, out_ch: int, blocks: int, stride: int = 1, *, change_first: bool = True
) -> nn.Sequential:
    """``blocks`` BasicBlocks; the width (and stride) change in the first block, or in the last
    one when ``change_first`` is False (MMPose ``ResLayer(downsample_first=False)``)."""
    if change_first:
        layers = [BasicBlock(in_ch, out_ch, stride)]
        layers += [BasicBlock(out_ch, out_ch) for _ in range(blocks - 1)]
    else:
        layers = [BasicBlock(in_ch, in_ch) for _ in range(blocks - 1)]
        layers.append(BasicBlock(in_ch, out_ch, stride))
    return nn.Sequential(*layers)


class HourglassModule(nn.Module):
    """One CornerNet hourglass level; recursive over ``channels[1:]`` / ``blocks[1:]``.

    ``up1`` keeps the resolution; ``low1`` halves it with a strided block and widens to
    ``channels[1]``; ``low2`` is the next level (or 4 blocks at the bottom); ``low3`` narrows back;
    nearest x2 upsampling joins the two branches.
    """

    def __init__(self, depth: int, channels: tuple[int, ...], blocks: tuple[int, ...]) -> None:
        super().__init__()
        cur, nxt = channels[0], channels[1]
        self.up1 = res_layer(cur, cur, blocks[0])
        self.low1 = res_layer(cur, nxt, blocks[0], stride=2)
        if depth > 1:
            self.low2 = HourglassModule(depth - 1, channels[1:], blocks[1:])
        else:
            self.low2 = res_layer(nxt, nxt, blocks[1])
        self.low3 = res_layer(nxt, cur, blocks[0], change_first=False)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low3(self.low2(self.low1(x)))  # (N, C', H/2, W/2) -> (N, C, H/2, W/2)
        return self.up1(x) + self.up2(low)  # (N, C, H, W)


class HourglassBackbone(nn.Module):
    """The stacked CornerNet hourglass: stem (1/4 resolution), hourglasses, per-stack 3x3 convs.

    ``inters`` (one BasicBlock between consecutive stacks) is only built for 2 or more stacks:
    MMPose builds one even for a single stack, where it is never run.
    """

    def __init__(self, num_stacks: int) -> None:
        super().__init__()
        cur = _STAGE_CHANNELS[0]
        self.num_stacks = num_stacks
        self.stem = nn.Sequential(ConvBN(3, cur // 2, 7, 2), res_layer(cur // 2, cur, 1, stride=2))
        depth = len(_STAGE_CHANNELS) - 1
        self.hourglass_modules = nn.ModuleList(
            HourglassModule(depth, _STAGE_CHANNELS, _STAGE_BLOCKS) for _ in range(num_stacks)
        )
        self.out_convs = nn.ModuleList(ConvBN(cur, _FEAT_CHANNELS, 3) for _ in range(num_stacks))
        between = num_stacks - 1
        self.conv1x1s = nn.ModuleList(ConvBN(cur, cur, 1, relu=False) for _ in range(between))
        self.remap_convs = nn.ModuleList(
            ConvBN(_FEAT_CHANNELS, cur, 1, relu=False) for _ in range(between)
        )
        self.inters = nn.ModuleList(BasicBlock(cur, cur) for _ in range(between))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) -> every stack's features (N, 256, H/4, W/4)."""
        inter = self.stem(x)  # (N, 256, H/4, W/4)
        feats = []
        for s in range(self.num_stacks):
            feat = self.out_convs[s](self.hourglass_modules[s](inter))  # (N, 256, H/4, W/4)
            feats.append(feat)
            if s < self.num_stacks - 1:
                inter = self.relu(self.conv1x1s[s](inter) + self.remap_convs[s](feat))
                inter = self.inters[s](inter)
        return feats


class MultiStageHead(nn.Module):
    """One 1x1 conv (with bias) per stack to K heatmaps (MMPose ``CPMHead`` without deconvs)."""

    def __init__(self, num_stacks: int, num_keypoints: int) -> None:
        super().__init__()
        self.multi_final_layers = nn.ModuleList(
            nn.Conv2d(_FEAT_CHANNELS, num_keypoints, 1) for _ in range(num_stacks)
        )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [layer(f) for layer, f in zip(self.multi_final_layers, feats, strict=True)]


class HourglassNet(nn.Module):
    """MMPose hourglass52 (``num_stacks=1``) / hourglass104 (``num_stacks=2``) pose network.

    Size of hourglass52 (K=17): 93.67 M parameters, 28.62 GMACs at 256x256, 64.40 at 384x384.
    MMPose's module counts 94.85 M: it also holds the never-run ``inters.0`` block (1,180,672
    parameters), which this network does not build.

    Args:
        num_stacks: number of hourglasses.
        num_keypoints: heatmap channels K (COCO 17, MPII 16).
    """

    def __init__(self, num_stacks: int = 1, num_keypoints: int = 17) -> None:
        super().__init__()
        if num_stacks < 1:
            raise ValueError(f"num_stacks must be >= 1, got {num_stacks}")
        self.num_keypoints = num_keypoints
        self.backbone = HourglassBackbone(num_stacks)
        self.head = MultiStageHead(num_stacks, num_keypoints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> the last stack's heatmaps (N, K, H/4, W/4)."""
        return self.forward_all(x)[-1]

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stack's heatmaps (N, K, H/4, W/4), last stack last."""
        return self.head(self.backbone(x))


_HOURGLASS_INDEX = re.compile(r"backbone\.hourglass_modules\.(\d+)\.")
_INTERS_INDEX = re.compile(r"backbone\.inters\.(\d+)\.")


def mmpose_hourglass_to_rtpose(state: Mapping[str, Any]) -> dict[str, Any]:
    """Map an MMPose (0.x or 1.x) hourglass checkpoint to :class:`HourglassNet` keys.

    Strips ``module.``, renames ``keypoint_head.`` to ``head.``, and drops the never-run
    ``backbone.inters.{n}`` blocks (n >= number of stacks - 1, the stack count being read from
    the ``backbone.hourglass_modules.{s}`` keys). Nothing else is changed: other surprises are
    reported by :func:`~rtpose.models.checkpoint.load_state_dict_strict`.
    """
    state = rename(strip_prefix(state, ["module."]), [(r"^keypoint_head\.", "head.")])
    stacks = {int(m.group(1)) for k in state if (m := _HOURGLASS_INDEX.match(k))}
    num_stacks = max(stacks) + 1 if stacks else 0
    out = {}
    for key, value in state.items():
        m = _INTERS_INDEX.match(key)
        if m and num_stacks and int(m.group(1)) >= num_stacks - 1:
            continue  # MMPose builds this block for a single stack too, and never runs it
        out[key] = value
    return out
