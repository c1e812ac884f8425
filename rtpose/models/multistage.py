"""The multi-stage U-shaped frame shared by MSPN and RSN (Megvii's COCO 2018 / 2019 winners).

MSPN: Li et al., "Rethinking on Multi-Stage Networks for Human Pose Estimation", arXiv 1901.00148.
RSN / PRM: Cai et al., "Learning Delicate Local Representations for Multi-Person Pose Estimation",
ECCV 2020.

A network is a ResNet "top" (7x7/2 conv + max-pool, stride 4) followed by S stages. Each stage is
a down path (4 layers, strides 4/8/16/32; the only part that differs between MSPN and RSN) and an
up path of 4 units with 256 channels, coarsest first. Every unit feeds a prediction head that
resizes its heatmaps to 1/4 of the input. Stages but the last also emit, per level, two 1x1
projections added to the next stage's down path (cross-stage aggregation) and a 256 -> 64
``cross_conv`` that replaces the top's output as the next stage's input.

Module and parameter names follow MMPose 1.x (``backbone.top``, ``backbone.multi_stage_<name>``,
``head.predict_layers``) so that MMPose checkpoints load without renaming.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

UNIT_CHANNELS = 256  # width of every up-path unit
NUM_UNITS = 4  # up-path units (and down-path layers) per stage
TOP_CHANNELS = 64  # output width of the ResNet top and of cross_conv


class ConvBN(nn.Module):
    """Conv (no bias) + BN + optional ReLU; children ``conv`` and ``bn`` like MMPose ConvModule."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class ResNetTop(nn.Module):
    """7x7/2 conv + BN + ReLU, 3x3/2 max-pool: (N, 3, H, W) -> (N, 64, H/4, W/4)."""

    def __init__(self) -> None:
        super().__init__()
        self.top = nn.Sequential(
            ConvBN(3, TOP_CHANNELS, 7, stride=2), nn.MaxPool2d(3, stride=2, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(x)


class DownPath(nn.Module):
    """Four down layers (``layer1`` .. ``layer4``, strides 4/8/16/32 of the input).

    Args:
        layers: the four layers, finest first.
        out_channels: their output widths, finest first.
    """

    def __init__(self, layers: Sequence[nn.Module], out_channels: Sequence[int]) -> None:
        super().__init__()
        if len(layers) != NUM_UNITS or len(out_channels) != NUM_UNITS:
            raise ValueError(
                f"a down path has {NUM_UNITS} layers, got {len(layers)} layers and "
                f"{len(out_channels)} widths"
            )
        for i, layer in enumerate(layers, start=1):
            self.add_module(f"layer{i}", layer)
        self.out_channels = tuple(out_channels)

    def forward(
        self,
        x: torch.Tensor,
        skip1: list[torch.Tensor] | None = None,
        skip2: list[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Down-path features, finest first; the previous stage's skips are added per level."""
        feats = []
        for i in range(NUM_UNITS):
            x = getattr(self, f"layer{i + 1}")(x)
            if skip1 is not None and skip2 is not None:
                x = x + skip1[i] + skip2[i]
            feats.append(x)
        return feats


class UpsampleUnit(nn.Module):
    """One up-path unit: ``in_skip`` of the down feature, plus ``up_conv`` of the upsampled
    coarser unit output (all but the coarsest unit), ReLU.

    With ``gen_skip`` it also projects the down feature (``out_skip1``, C -> C) and its own output
    (``out_skip2``, 256 -> C) for the next stage; with ``gen_cross_conv`` (finest unit only) it
    emits the next stage's 64-channel input.
    """

    def __init__(
        self, index: int, in_channels: int, *, gen_skip: bool, gen_cross_conv: bool
    ) -> None:
        super().__init__()
        self.index = index
        self.in_skip = ConvBN(in_channels, UNIT_CHANNELS, 1, relu=False)
        if index > 0:
            self.up_conv = ConvBN(UNIT_CHANNELS, UNIT_CHANNELS, 1, relu=False)
        self.gen_skip = gen_skip
        if gen_skip:
            self.out_skip1 = ConvBN(in_channels, in_channels, 1)
            self.out_skip2 = ConvBN(UNIT_CHANNELS, in_channels, 1)
        self.gen_cross_conv = gen_cross_conv
        if gen_cross_conv:
            self.cross_conv = ConvBN(UNIT_CHANNELS, TOP_CHANNELS, 1)

    def forward(
        self, x: torch.Tensor, up_x: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Returns (output (N, 256, h, w), skip1, skip2, cross_conv); absent ones are None."""
        out = self.in_skip(x)  # (N, 256, h, w)
        if up_x is not None:
            up_x = F.interpolate(up_x, size=x.shape[-2:], mode="bilinear", align_corners=True)
            out = out + self.up_conv(up_x)
        out = F.relu(out)
        skip1 = self.out_skip1(x) if self.gen_skip else None
        skip2 = self.out_skip2(out) if self.gen_skip else None
        cross = self.cross_conv(out) if self.gen_cross_conv else None
        return out, skip1, skip2, cross


class UpsamplePath(nn.Module):
    """Units ``up1`` (coarsest, stride 32) .. ``up4`` (finest, stride 4)."""

    def __init__(self, in_channels: Sequence[int], *, gen_skip: bool, gen_cross_conv: bool) -> None:
        """``in_channels``: the down-path widths, finest first."""
        super().__init__()
        coarse_first = list(in_channels)[::-1]
        for i, c in enumerate(coarse_first):
            unit = UpsampleUnit(
                i, c, gen_skip=gen_skip, gen_cross_conv=gen_cross_conv and i == NUM_UNITS - 1
            )
            self.add_module(f"up{i + 1}", unit)

    def forward(self, feats: list[torch.Tensor]):
        """``feats`` finest first -> (unit outputs coarsest first, skip1 and skip2 finest first
        or None, cross_conv or None)."""
        outs, skip1, skip2 = [], [], []
        up_x, cross = None, None
        for i in range(NUM_UNITS):
            up_x, s1, s2, cross = getattr(self, f"up{i + 1}")(feats[NUM_UNITS - 1 - i], up_x)
            outs.append(up_x)
            skip1.insert(0, s1)
            skip2.insert(0, s2)
        if skip1[0] is None:
            return outs, None, None, cross
        return outs, skip1, skip2, cross


class Stage(nn.Module):
    """One U-shaped stage: ``downsample`` (a :class:`DownPath`) and ``upsample``."""

    def __init__(self, down: DownPath, *, last: bool) -> None:
        super().__init__()
        self.downsample = down
        self.upsample = UpsamplePath(down.out_channels, gen_skip=not last, gen_cross_conv=not last)

    def forward(self, x, skip1=None, skip2=None):
        """-> (4 unit outputs coarsest first, skip1, skip2, next stage input or None)."""
        return self.upsample(self.downsample(x, skip1, skip2))


class DepthwiseSeparable(nn.Module):
    """Depthwise k x k conv-BN-ReLU then pointwise 1x1 conv-BN-ReLU (MMPose's module names)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.depthwise_conv = ConvBN(in_channels, in_channels, kernel_size, groups=in_channels)
        self.pointwise_conv = ConvBN(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class PRM(nn.Module):
    """Pose Refine Machine, MMPose variant: ``out = x1 * (1 + a * b)`` on K-channel heatmaps.

    ``x1`` = 3x3 conv-BN-ReLU of the input; ``a`` (N, K, 1, 1) = channel attention from the pooled
    ``x1`` (Linear-BN1d-ReLU twice, sigmoid); ``b`` (N, 1, H, W) = spatial attention (1x1
    conv-BN-ReLU, depthwise 9x9 conv-BN-ReLU, pointwise K -> 1 conv-BN-ReLU, sigmoid).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_bn_relu_prm_1 = ConvBN(channels, channels, 3)
        self.middle_path = nn.Sequential(
            nn.Linear(channels, channels),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Linear(channels, channels),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Sigmoid(),
        )
        self.bottom_path = nn.Sequential(
            ConvBN(channels, channels, 1), DepthwiseSeparable(channels, 1, 9), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv_bn_relu_prm_1(x)  # (N, K, H, W)
        a = self.middle_path(torch.flatten(F.adaptive_avg_pool2d(x1, 1), 1))  # (N, K)
        b = self.bottom_path(x1)  # (N, 1, H, W)
        return x1 * (1 + a[:, :, None, None] * b)


class PredictHeatmap(nn.Module):
    """Per-unit head: 1x1 conv 256 -> 256 BN ReLU, 3x3 conv 256 -> K BN, bilinear resize, PRM."""

    def __init__(self, num_keypoints: int, *, use_prm: bool = False) -> None:
        super().__init__()
        self.conv_layers = nn.Sequential(
            ConvBN(UNIT_CHANNELS, UNIT_CHANNELS, 1),
            ConvBN(UNIT_CHANNELS, num_keypoints, 3, relu=False),
        )
        self.prm = PRM(num_keypoints) if use_prm else None

    def forward(self, feature: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(N, 256, h, w) -> (N, K, *size)."""
        y = self.conv_layers(feature)  # (N, K, h, w)
        if tuple(y.shape[-2:]) != tuple(size):  # same size: align_corners=True would be identity
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=True)
        return self.prm(y) if self.prm is not None else y


class MultiStageBackbone(nn.Module):
    """``top`` and the stages, stored under ``stages_name`` (``multi_stage_mspn`` / ``_rsn``)."""

    def __init__(
        self, num_stages: int, make_down_path: Callable[[], DownPath], stages_name: str
    ) -> None:
        super().__init__()
        self.top = ResNetTop()
        stages = nn.ModuleList(
            Stage(make_down_path(), last=s == num_stages - 1) for s in range(num_stages)
        )
        self.stages_name = stages_name
        self.add_module(stages_name, stages)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """(N, 3, H, W) -> per stage, the 4 unit outputs (N, 256, ., .) coarsest first."""
        x = self.top(x)  # (N, 64, H/4, W/4)
        skip1 = skip2 = None
        feats = []
        for stage in getattr(self, self.stages_name):
            outs, skip1, skip2, x = stage(x, skip1, skip2)
            feats.append(outs)
        return feats


class MultiStageHead(nn.Module):
    """``predict_layers``: one :class:`PredictHeatmap` per unit, index ``stage * 4 + unit``."""

    def __init__(self, num_stages: int, num_keypoints: int, *, use_prm: bool) -> None:
        super().__init__()
        self.predict_layers = nn.ModuleList(
            PredictHeatmap(num_keypoints, use_prm=use_prm) for _ in range(num_stages * NUM_UNITS)
        )


class MultiStageNet(nn.Module):
    """A multi-stage U-shaped heatmap network; subclasses choose the down path.

    Args:
        num_stages: number of stages S (>= 1).
        num_keypoints: K.
        make_down_path: called once per stage to build that stage's own down path.
        stages_name: attribute name of the stage list inside ``backbone``.
        use_prm: put a Pose Refine Machine at the end of every prediction head.
    """

    def __init__(
        self,
        num_stages: int,
        num_keypoints: int,
        make_down_path: Callable[[], DownPath],
        *,
        stages_name: str,
        use_prm: bool = False,
    ) -> None:
        super().__init__()
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}")
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}")
        self.num_stages = num_stages
        self.num_keypoints = num_keypoints
        self.backbone = MultiStageBackbone(num_stages, make_down_path, stages_name)
        self.head = MultiStageHead(num_stages, num_keypoints, use_prm=use_prm)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) -> 4 * S heatmaps (N, K, H/4, W/4): stage 0 unit 0 (coarsest) first,
        last stage's finest unit last."""
        feats = self.backbone(x)
        size = tuple(feats[-1][-1].shape[-2:])  # the finest unit is at stride 4
        layers = self.head.predict_layers
        return [
            layers[s * NUM_UNITS + u](f, size)
            for s, stage in enumerate(feats)
            for u, f in enumerate(stage)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> final heatmaps (N, K, H/4, W/4): the last stage's finest unit."""
        finest = self.backbone(x)[-1][-1]  # (N, 256, H/4, W/4)
        return self.head.predict_layers[-1](finest, tuple(finest.shape[-2:]))
