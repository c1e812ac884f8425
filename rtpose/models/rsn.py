"""RSN: Residual Steps Network, with the optional Pose Refine Machine (Cai et al., "Learning
Delicate Local Representations for Multi-Person Pose Estimation", ECCV 2020; COCO keypoint
challenge 2019 winner).

The down path of every stage is built from Residual Steps Blocks (RSB): a 1x1 conv splits the
input into 4 branches; branch i is a chain of i 3x3 convs, and each conv also receives the output
of the conv at the same depth of the previous branch (the "residual steps"), so features of many
receptive fields are fused densely. The rest of the network is the frame of
:mod:`rtpose.models.multistage`. Key names are MMPose 1.x's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rtpose.models.multistage import TOP_CHANNELS, ConvBN, DownPath, MultiStageNet

NUM_STEPS = 4  # branches per RSB
EXPAND_TIMES = 26  # branch width = in_channels * 26 // 64 (MMPose expand_times / res_top_channels)


class RSB(nn.Module):
    """Residual Steps Block (expansion 1; stride on the first 1x1 conv).

    The branch width is computed from the block's *input* channels, so the first block of
    layers 2-4 is narrower than the others (as in the released code and checkpoints).
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1) -> None:
        super().__init__()
        self.branch_channels = in_channels * EXPAND_TIMES // TOP_CHANNELS
        b = self.branch_channels
        self.conv_bn_relu1 = ConvBN(in_channels, NUM_STEPS * b, 1, stride=stride)
        for i in range(1, NUM_STEPS + 1):
            for j in range(1, i + 1):
                self.add_module(f"conv_bn_relu2_{i}_{j}", ConvBN(b, b, 3))
        self.conv_bn3 = ConvBN(NUM_STEPS * b, out_channels, 1, relu=False)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = ConvBN(in_channels, out_channels, 1, stride=stride, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        branches = torch.split(
            self.conv_bn_relu1(x), self.branch_channels, dim=1
        )  # 4 x (N, b, ., .)
        previous: list[torch.Tensor] = []  # outputs of the previous branch, by depth
        ends = []
        for i in range(NUM_STEPS):
            current = []
            for j in range(i + 1):
                y = branches[i] if j == 0 else current[j - 1]
                if j < i:  # the previous branch has a conv at this depth
                    y = y + previous[j]
                current.append(getattr(self, f"conv_bn_relu2_{i + 1}_{j + 1}")(y))
            ends.append(current[-1])
            previous = current
        y = self.conv_bn3(torch.cat(ends, dim=1))  # (N, out, ., .)
        return F.relu(y + identity)


def rsb_down_path(num_blocks: Sequence[int]) -> DownPath:
    """RSB layers 1-4: widths 64/128/256/512 at strides 4/8/16/32."""
    layers, widths = [], []
    in_channels = TOP_CHANNELS
    for i, n in enumerate(num_blocks):
        width = 64 * 2**i
        blocks = []
        for b in range(n):
            blocks.append(RSB(in_channels, width, stride=2 if b == 0 and i > 0 else 1))
            in_channels = width
        layers.append(nn.Sequential(*blocks))
        widths.append(width)
    return DownPath(layers, widths)


class RSN(MultiStageNet):
    """RSN with ``num_stages`` stages: (N, 3, H, W) -> (N, K, H/4, W/4).

    Args:
        num_stages: stages (>= 1); k x RSN-50 has k.
        num_blocks: RSBs per down layer; RSN-18 = (2, 2, 2, 2), RSN-50 = (3, 4, 6, 3).
        num_keypoints: K.
        use_prm: a Pose Refine Machine after every prediction head (MMPose's variant; no released
            checkpoint uses it).
    """

    def __init__(
        self,
        num_stages: int = 1,
        num_blocks: Sequence[int] = (2, 2, 2, 2),
        num_keypoints: int = 17,
        use_prm: bool = False,
    ) -> None:
        if not isinstance(num_stages, int) or num_stages < 1:
            raise ValueError(f"RSN num_stages must be an int >= 1, got {num_stages!r}")
        blocks = tuple(num_blocks)
        if len(blocks) != 4 or not all(isinstance(n, int) and n >= 1 for n in blocks):
            raise ValueError(
                f"RSN num_blocks must be 4 positive ints (RSBs per down layer), got {num_blocks!r}"
            )
        super().__init__(
            num_stages,
            num_keypoints,
            lambda: rsb_down_path(blocks),
            stages_name="multi_stage_rsn",
            use_prm=use_prm,
        )
