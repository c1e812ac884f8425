"""Test oracle: MSPN / RSN laid out as in the authors' code (megvii-research/MSPN,
caiyuanhao1998/RSN), written independently of rtpose.models.

What differs from rtpose's (MMPose's) layout, and so what the key maps must handle:
every conv is a ``conv_bn_relu`` with a conv bias; module names (``top.conv``, ``stage{s}``,
``conv_bn_relu{1,2,3}``, ``u_skip``, ``skip1/2``); the prediction convs ``res_conv1/2`` live
inside the up-path units; up-path sizes and the heatmap size are fixed at construction from the
input size (as in the authors' configs) instead of following the feature shapes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class conv_bn_relu(nn.Module):  # the authors' class name
    def __init__(self, cin, cout, k, stride=1, padding=0, has_relu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=True)
        self.bn = nn.BatchNorm2d(cout)
        self.has_relu = has_relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return torch.relu(x) if self.has_relu else x


class ResNetTop(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = conv_bn_relu(3, 64, 7, stride=2, padding=3)

    def forward(self, x):
        return F.max_pool2d(self.conv(x), kernel_size=3, stride=2, padding=1)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv_bn_relu1 = conv_bn_relu(in_planes, planes, 1)
        self.conv_bn_relu2 = conv_bn_relu(planes, planes, 3, stride=stride, padding=1)
        self.conv_bn_relu3 = conv_bn_relu(planes, planes * 4, 1, has_relu=False)
        self.downsample = downsample

    def forward(self, x):
        out = self.conv_bn_relu3(self.conv_bn_relu2(self.conv_bn_relu1(x)))
        if self.downsample is not None:
            x = self.downsample(x)
        return torch.relu(out + x)


class RSB(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.b = in_planes * 26 // 64
        self.conv_bn_relu1 = conv_bn_relu(in_planes, 4 * self.b, 1, stride=stride)
        for i in range(1, 5):
            for j in range(1, i + 1):
                setattr(self, f"conv_bn_relu2_{i}_{j}", conv_bn_relu(self.b, self.b, 3, padding=1))
        self.conv_bn_relu3 = conv_bn_relu(4 * self.b, planes, 1, has_relu=False)
        self.downsample = downsample

    def forward(self, x):
        spx = torch.split(self.conv_bn_relu1(x), self.b, 1)
        y = {}
        for i in range(1, 5):
            for j in range(1, i + 1):
                inp = spx[i - 1] if j == 1 else y[i, j - 1]
                if j < i:
                    inp = inp + y[i - 1, j]
                y[i, j] = getattr(self, f"conv_bn_relu2_{i}_{j}")(inp)
        out = self.conv_bn_relu3(torch.cat([y[i, i] for i in range(1, 5)], 1))
        if self.downsample is not None:
            x = self.downsample(x)
        return torch.relu(out + x)


class DownsampleModule(nn.Module):
    def __init__(self, block, layers, has_skip):
        super().__init__()
        self.has_skip = has_skip
        self.in_planes = 64
        for i, n in enumerate(layers):
            setattr(
                self, f"layer{i + 1}", self._make_layer(block, 64 * 2**i, n, 1 if i == 0 else 2)
            )

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            downsample = conv_bn_relu(
                self.in_planes, planes * block.expansion, 1, stride=stride, has_relu=False
            )
        layers = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes * block.expansion
        layers += [block(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x, skip1, skip2):
        outs = []
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
            if self.has_skip:
                x = x + skip1[i] + skip2[i]
            outs.append(x)
        return outs[::-1]  # x4 (coarsest) .. x1


class UpsampleUnit(nn.Module):
    def __init__(self, ind, in_planes, up_size, out_chl, out_shape, gen_skip, gen_cross_conv):
        super().__init__()
        self.ind, self.up_size, self.out_shape = ind, up_size, out_shape
        self.u_skip = conv_bn_relu(in_planes, 256, 1, has_relu=False)
        if ind > 0:
            self.up_conv = conv_bn_relu(256, 256, 1, has_relu=False)
        self.gen_skip = gen_skip
        if gen_skip:
            self.skip1 = conv_bn_relu(in_planes, in_planes, 1)
            self.skip2 = conv_bn_relu(256, in_planes, 1)
        self.gen_cross_conv = ind == 3 and gen_cross_conv
        if self.gen_cross_conv:
            self.cross_conv = conv_bn_relu(256, 64, 1)
        self.res_conv1 = conv_bn_relu(256, 256, 1)
        self.res_conv2 = conv_bn_relu(256, out_chl, 3, padding=1, has_relu=False)

    def forward(self, x, up_x):
        out = self.u_skip(x)
        if self.ind > 0:
            up_x = F.interpolate(up_x, size=self.up_size, mode="bilinear", align_corners=True)
            out = out + self.up_conv(up_x)
        out = torch.relu(out)
        res = self.res_conv2(self.res_conv1(out))
        res = F.interpolate(res, size=self.out_shape, mode="bilinear", align_corners=True)
        skip1 = self.skip1(x) if self.gen_skip else None
        skip2 = self.skip2(out) if self.gen_skip else None
        cross = self.cross_conv(out) if self.gen_cross_conv else None
        return out, res, skip1, skip2, cross


class UpsampleModule(nn.Module):
    def __init__(self, out_chl, out_shape, in_planes, gen_skip, gen_cross_conv):
        super().__init__()
        h, w = out_shape
        for ind in range(4):
            up_size = (h // 2 ** (3 - ind), w // 2 ** (3 - ind))
            unit = UpsampleUnit(
                ind, in_planes[ind], up_size, out_chl, out_shape, gen_skip, gen_cross_conv
            )
            setattr(self, f"up{ind + 1}", unit)

    def forward(self, x4, x3, x2, x1):
        out, res, skip1, skip2 = None, [], [], []
        for ind, x in enumerate((x4, x3, x2, x1)):
            out, r, s1, s2, cross = getattr(self, f"up{ind + 1}")(x, out)
            res.append(r)
            skip1.insert(0, s1)
            skip2.insert(0, s2)
        return res, skip1, skip2, cross


class SingleStageModule(nn.Module):
    def __init__(self, block, layers, out_chl, out_shape, has_skip, gen_skip):
        super().__init__()
        self.downsample = DownsampleModule(block, layers, has_skip)
        planes = [64 * 2**i * block.expansion for i in range(4)][::-1]
        self.upsample = UpsampleModule(out_chl, out_shape, planes, gen_skip, gen_skip)

    def forward(self, x, skip1, skip2):
        return self.upsample(*self.downsample(x, skip1, skip2))


class OfficialNet(nn.Module):
    """``block``: Bottleneck (MSPN, layers [3, 4, 6, 3]) or RSB (RSN)."""

    def __init__(self, block, layers, num_stages, num_keypoints, input_hw):
        super().__init__()
        self.num_stages = num_stages
        out_shape = (input_hw[0] // 4, input_hw[1] // 4)
        self.top = ResNetTop()
        for s in range(num_stages):
            stage = SingleStageModule(
                block, layers, num_keypoints, out_shape, s > 0, s < num_stages - 1
            )
            setattr(self, f"stage{s}", stage)

    def forward(self, x):
        """All 4 * S heatmaps, stage 0's coarsest first."""
        x = self.top(x)
        skip1 = skip2 = None
        outputs = []
        for s in range(self.num_stages):
            res, skip1, skip2, x = getattr(self, f"stage{s}")(x, skip1, skip2)
            outputs += res
        return outputs


def official_mspn(num_stages, num_keypoints=17, input_hw=(256, 192)):
    return OfficialNet(Bottleneck, [3, 4, 6, 3], num_stages, num_keypoints, input_hw)


def official_rsn(num_stages=1, layers=(2, 2, 2, 2), num_keypoints=17, input_hw=(256, 192)):
    return OfficialNet(RSB, list(layers), num_stages, num_keypoints, input_hw)
