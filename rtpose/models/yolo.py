"""YOLO11-pose in plain PyTorch (Jocher et al., Ultralytics YOLO11, 2024).

The network is built from the architecture description stored in the checkpoint (its YAML: a list
of ``[from, repeats, module, args]`` rows plus per-scale depth/width/max-channel rules), so every
scale n/s/m/l/x is the same code. Module and parameter names match ultralytics' state_dict keys
(``model.<i>.cv1.conv.weight``) so checkpoints load with ``strict=True`` and no key map.

The head decodes in the graph (DFL distances -> boxes, anchors and strides -> pixels, sigmoid
scores) so an exported ONNX / TensorRT engine returns ready-to-filter predictions::

    (B, 3, H, W) float32 in [0, 1], RGB  ->  (B, 4 + nc + K*3, A)
    rows: cx, cy, w, h (input pixels) | class scores | x, y, visibility per keypoint

with ``A = sum(H/s * W/s for s in (8, 16, 32))`` anchors. Confidence filtering and NMS live in
:mod:`rtpose.codecs.yolo`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

SCALES = ("n", "s", "m", "l", "x")


def _autopad(k: int, d: int = 1) -> int:
    return d * (k - 1) // 2


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm -> SiLU."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, _autopad(k), groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DWConv(Conv):
    """Depth-wise convolution block: groups = gcd(c1, c2)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, act: bool = True):
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2), act=act)


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True, k: tuple[int, int] = (3, 3), e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3k(nn.Module):
    """CSP block with two convolutions and ``n`` k x k bottlenecks."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, e=0.5, k: int = 3):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, k=(k, k), e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class C3k2(nn.Module):
    """C2f-style split block whose inner blocks are C3k (``c3k=True``) or plain bottlenecks."""

    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e=0.5, shortcut=True):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(
            C3k(self.c, self.c, 2, shortcut) if c3k else Bottleneck(self.c, self.c, shortcut)
            for _ in range(n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): three chained max-pools, concatenated."""

    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class Attention(nn.Module):
    """Multi-head self-attention over all positions, with a depth-wise positional conv."""

    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim**-0.5
        self.qkv = Conv(dim, dim + 2 * self.key_dim * num_heads, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, 1, g=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(x).view(b, self.num_heads, 2 * self.key_dim + self.head_dim, h * w)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.head_dim], dim=2)
        attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)  # (B, heads, HW, HW)
        x = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(x)


class PSABlock(nn.Module):
    def __init__(self, c: int, attn_ratio: float = 0.5, num_heads: int = 4):
        super().__init__()
        self.attn = Attention(c, attn_ratio=attn_ratio, num_heads=num_heads)
        self.ffn = nn.Sequential(Conv(c, c * 2, 1), Conv(c * 2, c, 1, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)


class C2PSA(nn.Module):
    """Split block with position-sensitive attention on one half."""

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5):
        super().__init__()
        if c1 != c2:
            raise ValueError(f"C2PSA needs c1 == c2, got {c1} and {c2}")
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(PSABlock(self.c, 0.5, self.c // 64) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))


class Concat(nn.Module):
    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, 1)


class DFL(nn.Module):
    """Distribution focal loss integral: expected distance from a softmax over ``c1`` bins."""

    def __init__(self, c1: int = 16):
        super().__init__()
        self.c1 = c1
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape  # (B, 4*c1, A)
        x = x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)  # (B, c1, 4, A)
        return self.conv(x).view(b, 4, a)


def make_anchors(
    feats: Sequence[torch.Tensor], strides: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres (A, 2) in grid units (+0.5) and their strides (A, 1), level by level.

    Sizes are read from the feature maps without converting them to Python ints, so an exported
    graph keeps the input height and width dynamic.
    """
    points, stride_col = [], []
    for x, s in zip(feats, strides):
        h, w = x.shape[2], x.shape[3]
        sx = torch.arange(w, dtype=x.dtype, device=x.device) + 0.5
        sy = torch.arange(h, dtype=x.dtype, device=x.device) + 0.5
        gy, gx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((gx, gy), -1).view(-1, 2))
        stride_col.append(torch.ones_like(gx).view(-1, 1) * s)
    return torch.cat(points), torch.cat(stride_col)


class Pose(nn.Module):
    """Decoupled detection head (box DFL branch cv2, class branch cv3) + keypoint branch cv4."""

    def __init__(self, nc: int, kpt_shape: Sequence[int], ch: Sequence[int], reg_max: int = 16):
        super().__init__()
        self.nc, self.nl, self.reg_max = nc, len(ch), reg_max
        self.kpt_shape = (int(kpt_shape[0]), int(kpt_shape[1]))
        self.nk = self.kpt_shape[0] * self.kpt_shape[1]
        self.strides = (8.0, 16.0, 32.0)[: self.nl]  # P3, P4, P5
        c2 = max(16, ch[0] // 4, reg_max * 4)
        c3 = max(ch[0], min(nc, 100))
        c4 = max(ch[0] // 4, self.nk)
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1))
            for x in ch
        )
        self.cv3 = nn.ModuleList(
            nn.Sequential(
                nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                nn.Conv2d(c3, nc, 1),
            )
            for x in ch
        )
        self.cv4 = nn.ModuleList(
            nn.Sequential(Conv(x, c4, 3), Conv(c4, c4, 3), nn.Conv2d(c4, self.nk, 1)) for x in ch
        )
        self.dfl = DFL(reg_max)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        b = xs[0].shape[0]
        box = torch.cat([self.cv2[i](x).flatten(2) for i, x in enumerate(xs)], 2)  # (B, 64, A)
        cls = torch.cat([self.cv3[i](x).flatten(2) for i, x in enumerate(xs)], 2)  # (B, nc, A)
        kpt = torch.cat([self.cv4[i](x).flatten(2) for i, x in enumerate(xs)], 2)  # (B, K*3, A)
        anchors, strides = make_anchors(xs, self.strides)
        anchors, strides = anchors.t(), strides.t()  # (2, A), (1, A)

        lt, rb = self.dfl(box).chunk(2, 1)  # distances left/top and right/bottom, grid units
        xy1, xy2 = anchors - lt, anchors + rb
        boxes = torch.cat(((xy1 + xy2) / 2, xy2 - xy1), 1) * strides  # (B, 4, A) cx, cy, w, h

        k, d = self.kpt_shape
        kpt = kpt.view(b, k, d, -1)
        kx = (kpt[:, :, 0] * 2.0 + (anchors[0] - 0.5)) * strides
        ky = (kpt[:, :, 1] * 2.0 + (anchors[1] - 0.5)) * strides
        parts = [kx, ky] + ([kpt[:, :, 2].sigmoid()] if d == 3 else [])
        kpts = torch.stack(parts, 2).view(b, self.nk, -1)  # (B, K*d, A)
        return torch.cat((boxes, cls.sigmoid(), kpts), 1)


def _make_divisible(x: float, divisor: int = 8) -> int:
    return int(math.ceil(x / divisor) * divisor)


class YoloPose(nn.Module):
    """A YOLO11-pose network built from its architecture description (see :func:`build_layers`)."""

    def __init__(self, arch: dict[str, Any], *, scale: str | None = None, nc: int | None = None):
        super().__init__()
        self.scale = scale or arch.get("scale") or "n"
        self.nc = int(nc if nc is not None else arch.get("nc", 1))
        self.kpt_shape = tuple(arch.get("kpt_shape", (17, 3)))
        layers, self.sources, self.keep = build_layers(arch, scale=self.scale, nc=self.nc)
        self.model = nn.Sequential(*layers)

    @property
    def head(self) -> Pose:
        return self.model[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1], H and W multiples of 32 -> (B, 4 + nc + K*3, A)."""
        outputs: list[torch.Tensor | None] = []
        for m, f in zip(self.model, self.sources):
            if f != -1:
                x = outputs[f] if isinstance(f, int) else [x if j == -1 else outputs[j] for j in f]
            x = m(x)
            outputs.append(x if len(outputs) in self.keep else None)
        return x


_MODULES = {"Conv": Conv, "C3k2": C3k2, "SPPF": SPPF, "C2PSA": C2PSA}


def build_layers(
    arch: dict[str, Any], *, scale: str, nc: int
) -> tuple[list[nn.Module], list[Any], set[int]]:
    """Turn the ``backbone`` + ``head`` rows of a YOLO11 architecture dict into modules.

    Width/depth follow the stored ``scales[scale] = [depth, width, max_channels]`` rules: repeats
    ``max(round(n * depth), 1)``, channels ``ceil(min(c, max_channels) * width / 8) * 8``; C3k2 uses
    C3k inner blocks for the m/l/x scales. Returns the layers, their input indices, and the indices
    whose outputs later layers read.
    """
    scales = arch.get("scales") or {}
    if scale not in scales:
        raise ValueError(f"unknown YOLO scale {scale!r}; this architecture has {sorted(scales)}")
    depth, width, max_channels = scales[scale]
    in_channels = int(arch.get("ch", 3))
    ch: list[int] = []  # output channels of each layer
    layers: list[nn.Module] = []
    sources: list[Any] = []
    for i, (f, n, name, args) in enumerate(arch["backbone"] + arch["head"]):
        n = max(round(n * depth), 1) if n > 1 else n
        c_in = (ch[f] if ch else in_channels) if isinstance(f, int) else None
        if name in _MODULES:
            c2 = _make_divisible(min(args[0], max_channels) * width)
            if name == "Conv":
                m = Conv(c_in, c2, *args[1:])
            elif name == "SPPF":
                m = SPPF(c_in, c2, *args[1:])
            elif name == "C2PSA":
                m = C2PSA(c_in, c2, n, *args[1:])
            else:  # C3k2 [c2, c3k, e]
                c3k = bool(args[1]) if len(args) > 1 else False
                e = float(args[2]) if len(args) > 2 else 0.5
                m = C3k2(c_in, c2, n, c3k or scale in "mlx", e)
        elif name == "nn.Upsample":
            m, c2 = nn.Upsample(scale_factor=args[1], mode=args[2]), c_in
        elif name == "Concat":
            m, c2 = Concat(), sum(ch[j] for j in f)
        elif name == "Pose":
            kpt_shape = arch.get("kpt_shape", (17, 3))
            m, c2 = Pose(nc, kpt_shape, [ch[j] for j in f]), 0
        else:
            raise ValueError(f"layer {i}: module {name!r} is not part of YOLO11-pose")
        layers.append(m)
        sources.append(f)
        ch.append(c2)
    keep = {j for f in sources for j in ([f] if isinstance(f, int) else f) if j != -1}
    return layers, sources, keep
