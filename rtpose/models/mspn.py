"""MSPN: Multi-Stage Pose Network (Li et al., "Rethinking on Multi-Stage Networks for Human Pose
Estimation", arXiv 1901.00148; COCO keypoint challenge 2018 winner).

Every stage is a ResNet-50 down path (Bottleneck blocks [3, 4, 6, 3]) plus the shared up path
and heads of :mod:`rtpose.models.multistage`. Key names are MMPose 1.x's; the maps from MMPose and
from the authors' checkpoints are in :mod:`rtpose.models.megvii_checkpoint`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rtpose.models.multistage import TOP_CHANNELS, ConvBN, DownPath, MultiStageNet

RESNET50_BLOCKS = (3, 4, 6, 3)
MAX_STAGES = 4  # the published MSPN variants have 1 to 4 stages


class Bottleneck(nn.Module):
    """ResNet bottleneck (expansion 4, stride on the 3x3 conv), MMPose names."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, *, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = ConvBN(in_channels, out_channels, 1, stride=stride, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + identity)


def resnet50_down_path() -> DownPath:
    """ResNet-50 layers 1-4: widths 256/512/1024/2048 at strides 4/8/16/32."""
    layers, widths = [], []
    in_channels = TOP_CHANNELS
    for i, num_blocks in enumerate(RESNET50_BLOCKS):
        width = 64 * 2**i
        blocks = []
        for b in range(num_blocks):
            stride = 2 if b == 0 and i > 0 else 1
            blocks.append(Bottleneck(in_channels, width, stride=stride))
            in_channels = width * Bottleneck.expansion
        layers.append(nn.Sequential(*blocks))
        widths.append(in_channels)
    return DownPath(layers, widths)


class MSPN(MultiStageNet):
    """MSPN-50 with ``num_stages`` stages (1 to 4): (N, 3, H, W) -> (N, K, H/4, W/4).

    Input normalisation: MMPose checkpoints expect RGB (``MMPOSE_NORMALISATION``), the authors'
    checkpoints BGR (``OFFICIAL_NORMALISATION``), both in :mod:`rtpose.models.megvii_checkpoint`.
    """

    def __init__(self, num_stages: int = 1, num_keypoints: int = 17) -> None:
        if not isinstance(num_stages, int) or not 1 <= num_stages <= MAX_STAGES:
            raise ValueError(
                f"MSPN num_stages must be an int in 1..{MAX_STAGES}, got {num_stages!r}"
            )
        super().__init__(
            num_stages, num_keypoints, resnet50_down_path, stages_name="multi_stage_mspn"
        )
