"""Multi-Scale Structure-Aware network (Ke, Chang, Qi, Lyu, "Multi-Scale Structure-Aware Network
for Human Pose Estimation", ECCV 2018, arXiv 1803.09894).

No official code or checkpoint exists; this is built from the paper's description with the
blocks of :mod:`rtpose.models.hourglass` (Newell's stacked hourglass).

From the paper (abstract and Sect. 3 headings; verified):

- MSS-net: a stacked hourglass whose hourglasses are supervised at several scales of their
  upsampling (deconvolution) side, each against the ground truth downsampled to that scale.
- MSR-net: a multi-scale regression stage at the end that turns the last hourglass' multi-scale
  heatmaps into the final heatmaps.
- The structure-aware loss and the keypoint-masking training scheme (training only; not here).

Our reading (unverified against the paper's figures and text):

- 8 stacks of width 256, 256x256 input, 64x64 output, Newell's stem and inter-stack merges.
- Each hourglass emits heatmaps at 4 scales (8, 16, 32, 64 for a 256 input): a 1x1 conv on the
  output of each of the three coarse levels of its upsampling side, and at the finest scale
  Newell's head (Residual, 1x1 conv + BN + ReLU, 1x1 conv), which also feeds the next stack.
- MSR-net: the last stack's 4 heatmaps, bilinearly upsampled to 64x64, concatenated with the last
  stack's head features, a 1x1 conv + BN + ReLU back to 256 channels, one more hourglass, and the
  same head as a stack.

Input: (N, 3, H, W) RGB in [0, 1], H and W divisible by 64. Output: (N, K, H/4, W/4) heatmaps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rtpose.models.hourglass import Conv, Hourglass, Merge, make_features, make_stem

NUM_SCALES = 4  # heatmap scales per hourglass: 1/8, 1/4, 1/2 and 1 of the 64x64 output side
_DEPTH = 4  # hourglass levels (64 -> 4 at the bottom)


class MSSNet(nn.Module):
    """Stacked hourglass with multi-scale supervision (MSS-net) and a regression stage (MSR-net).

    Args:
        num_stacks: number of multi-scale hourglasses (the paper: 8).
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
        self.hgs = nn.ModuleList(Hourglass(_DEPTH, f) for _ in range(num_stacks))
        # 1x1 heads on the three coarse levels of each hourglass' upsampling side, coarsest first
        self.scale_outs = nn.ModuleList(
            nn.ModuleList(Conv(f, k, 1, bn=False, relu=False) for _ in range(NUM_SCALES - 1))
            for _ in range(num_stacks)
        )
        self.features = nn.ModuleList(make_features(f) for _ in range(num_stacks))
        self.outs = nn.ModuleList(Conv(f, k, 1, bn=False, relu=False) for _ in range(num_stacks))
        self.merge_features = nn.ModuleList(Merge(f, f) for _ in range(num_stacks - 1))
        self.merge_preds = nn.ModuleList(Merge(k, f) for _ in range(num_stacks - 1))
        self.msr_in = Conv(f + NUM_SCALES * k, f, 1, bn=True, relu=True)
        self.msr_hg = Hourglass(_DEPTH, f)
        self.msr_features = make_features(f)
        self.msr_out = Conv(f, k, 1, bn=False, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> the MSR-net heatmaps (N, K, H/4, W/4)."""
        return self.forward_all(x)[-1]

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every supervised output: for each stack its heatmaps at sides H/32, H/16, H/8, H/4
        (coarsest first), then the MSR-net heatmaps (N, K, H/4, W/4) last."""
        x = self.pre(x)  # (N, F, H/4, W/4)
        outputs = []
        for s in range(self.num_stacks):
            levels = self.hgs[s].forward_levels(x)  # sides H/32, H/16, H/8, H/4
            heads = self.scale_outs[s]
            scales = [head(level) for head, level in zip(heads, levels[:-1], strict=True)]
            feature = self.features[s](levels[-1])  # (N, F, H/4, W/4)
            pred = self.outs[s](feature)  # (N, K, H/4, W/4)
            scales.append(pred)
            outputs.extend(scales)
            if s < self.num_stacks - 1:
                x = x + self.merge_preds[s](pred) + self.merge_features[s](feature)
        outputs.append(self._regress(feature, scales))
        return outputs

    def _regress(self, feature: torch.Tensor, scales: list[torch.Tensor]) -> torch.Tensor:
        """MSR-net: last stack's features (N, F, h, w) and multi-scale heatmaps -> (N, K, h, w)."""
        n = len(scales)
        upsampled = [
            F.interpolate(hm, scale_factor=float(2 ** (n - 1 - i)), mode="bilinear")
            if i < n - 1
            else hm
            for i, hm in enumerate(scales)
        ]  # each (N, K, h, w)
        y = self.msr_in(torch.cat([feature, *upsampled], dim=1))  # (N, F, h, w)
        return self.msr_out(self.msr_features(self.msr_hg(y)))
