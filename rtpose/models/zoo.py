"""The model zoo: the names users pass as ``model=...`` and the typed facts of each entry.

Needs no torch: the network classes are imported only by :func:`rtpose.models.create_model`.

Two kinds of entries:

- one-stage (``family="yolo-pose"``): YOLO11-pose finds people and their keypoints in the
  letterboxed frame;
- top-down (every other family): a person detector gives boxes, each box is cropped to the
  network input (aspect-fitted, padded by 1.25) and the network's heatmaps are decoded with the
  entry's codec.

``published`` quotes the accuracy reported for the matching public checkpoint (with its source)
so users know what a correctly loaded checkpoint should reach; rtpose has not re-measured it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rtpose.errors import UnknownModelError
from rtpose.skeletons import get_skeleton

Family = Literal["yolo-pose", "hourglass", "mssnet", "hourglass52", "mspn", "rsn"]
CodecKind = Literal["msra", "megvii", "udp", "dark"]

# MMPose's ImageNet statistics on 0-255 RGB; Megvii's official code normalises BGR (see
# rtpose.models.megvii for its own values, carried with the checkpoint layout).
IMAGENET_RGB_MEAN = (123.675, 116.28, 103.53)
IMAGENET_RGB_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class Normalisation:
    """How a network wants its crop: ``(pixel - mean) / std`` per channel, in ``channel_order``.

    ``mean`` and ``std`` are on the 0-255 scale and listed in ``channel_order``.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: Literal["rgb", "bgr"] = "rgb"

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values each, got {self.mean}, {self.std}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be > 0, got {self.std}")
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {self.channel_order!r}")


MMPOSE_NORM = Normalisation(IMAGENET_RGB_MEAN, IMAGENET_RGB_STD, "rgb")
UNIT_RGB = Normalisation((0.0, 0.0, 0.0), (255.0, 255.0, 255.0), "rgb")  # [0, 1] RGB


@dataclass(frozen=True)
class CodecSpec:
    """The heatmap codec of a top-down entry (see :mod:`rtpose.codecs`).

    Attributes:
        kind: "msra" (Gaussian, argmax + quarter offset), "dark" (unbiased Gaussian, DARK
            Taylor refinement), "megvii" (multi-kernel targets, blur + quarter + 0.5) or "udp".
        sigma: Gaussian sigma in heatmap pixels (msra / dark / udp).
        kernel_sizes: Megvii target kernels, one per supervised level.
        decode_kernel: blur kernel of the Megvii / DARK decoder.
        flip_shift: the flip test shifts flipped-back heatmaps by one pixel (MSRA convention);
            None keeps the codec's own convention (on for msra / dark, off for megvii / udp).
            The only definition: the codec's ``decode_spec`` reports this value.
    """

    kind: CodecKind
    sigma: float | None = None
    kernel_sizes: tuple[int, ...] = ()
    decode_kernel: int | None = None
    flip_shift: bool | None = None

    def __post_init__(self) -> None:
        if self.flip_shift and self.kind in ("megvii", "udp"):
            raise ValueError(f"flip_shift=True does not apply to the {self.kind} codec")

    def build(self, input_size: tuple[int, int], heatmap_size: tuple[int, int]):
        """The numpy codec object (encode / decode / decode_spec) for these sizes."""
        from rtpose import codecs

        blur = {} if self.decode_kernel is None else {"blur_kernel": self.decode_kernel}
        if self.kind in ("msra", "dark"):
            shift = {} if self.flip_shift is None else {"flip_shift": self.flip_shift}
            return codecs.MSRAHeatmap(
                input_size, heatmap_size, sigma=self.sigma, unbiased=self.kind == "dark",
                **blur, **shift,
            )  # fmt: skip
        if self.kind == "udp":
            return codecs.UDPHeatmap(input_size, heatmap_size, sigma=self.sigma, **blur)
        decode = {} if self.decode_kernel is None else {"decode_kernel": self.decode_kernel}
        return codecs.MegviiHeatmap(
            input_size, heatmap_size, kernel_sizes=self.kernel_sizes, **decode
        )


@dataclass(frozen=True)
class ModelInfo:
    """Static facts about a zoo entry.

    Attributes:
        name: zoo name.
        family: network family; picks the class built by ``create_model``.
        skeleton: keypoint set name (:mod:`rtpose.skeletons`); the network outputs its K.
        input_size: (height, width) of the network input (the letterbox size for YOLO).
        heatmap_size: (height, width) of the output heatmaps (top-down entries).
        codec: heatmap codec (top-down entries).
        normalisation: the crop normalisation of MMPose-layout / default weights.
        arch: keyword arguments of the network class.
        size_multiple: a custom input size must be a multiple of this (the network's stride).
        default_weights: asset fetched by ``rtpose fetch``, or None (pass ``weights=``).
        checkpoint: the public checkpoint the ``published`` figure belongs to.
        weights_license, published: license and published accuracy of that checkpoint.
        flip_test: whether the published figure used the flip test (the pipeline's default).
    """

    name: str
    family: Family
    skeleton: str
    input_size: tuple[int, int]
    default_weights: str | None = None
    weights_license: str = ""
    published: str = ""
    checkpoint: str = ""
    heatmap_size: tuple[int, int] | None = None
    codec: CodecSpec | None = None
    normalisation: Normalisation = MMPOSE_NORM
    arch: tuple[tuple[str, object], ...] = field(default=())
    size_multiple: int = 32
    scale: str = ""  # YOLO scale letter n/s/m/l/x
    flip_test: bool = False

    def __post_init__(self) -> None:
        h, w = self.input_size
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"{self.name}: input_size must be a multiple of {self.size_multiple}")
        get_skeleton(self.skeleton)
        if self.top_down and (self.heatmap_size is None or self.codec is None):
            raise ValueError(f"{self.name}: a top-down entry needs heatmap_size and codec")

    @property
    def top_down(self) -> bool:
        """True for networks that pose one person crop at a time (need a detector)."""
        return self.family != "yolo-pose"

    @property
    def num_keypoints(self) -> int:
        return get_skeleton(self.skeleton).num_keypoints

    @property
    def stride(self) -> int:
        """Input pixels per heatmap pixel."""
        if self.heatmap_size is None:
            return 1
        return self.input_size[0] // self.heatmap_size[0]

    def with_input_size(self, input_size: tuple[int, int]) -> ModelInfo:
        """This entry at another input size (heatmaps keep the stride); checks the size."""
        size = check_input_size(self, input_size)
        if size == self.input_size:
            return self
        from dataclasses import replace

        hm = (size[0] // self.stride, size[1] // self.stride) if self.heatmap_size else None
        return replace(self, input_size=size, heatmap_size=hm, published="")


def check_input_size(info: ModelInfo, input_size: object) -> tuple[int, int]:
    """Validate a (height, width) input size for ``info``'s network; return it as ints."""
    try:
        h, w = (int(v) for v in input_size)  # type: ignore[union-attr]
        ok = (h, w) == tuple(input_size) and h > 0 and w > 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"input_size must be (height, width) positive ints, got {input_size!r}")
    m = info.size_multiple
    if h % m or w % m:
        raise ValueError(
            f"{info.name} does not take input size {h}x{w}: height and width must be multiples "
            f"of {m} (its downsampling stride); e.g. {info.input_size[0]}x{info.input_size[1]}"
        )
    return h, w


# --- entries ------------------------------------------------------------------------------------

_YOLO_AP = {"n": 50.0, "s": 58.9, "m": 64.9, "l": 66.1, "x": 69.5}  # COCO val mAP-pose 50-95
_MMPOSE = "https://download.openmmlab.com/mmpose/"
_COCO_MMPOSE = "COCO val2017 AP {} (MMPose, person detector AP 56.4, flip test)"
_MSRA2 = CodecSpec("msra", sigma=2.0, flip_shift=True)
_MSRA3 = CodecSpec("msra", sigma=3.0, flip_shift=True)
_NEWELL = CodecSpec("msra", sigma=1.0, flip_shift=False)  # Newell: quarter offset, unshifted flip


def _megvii(stages: int) -> CodecSpec:
    kernels = (11, 9, 7, 5) if stages == 1 else (15, 11, 9, 7, 5)
    return CodecSpec("megvii", kernel_sizes=kernels, decode_kernel=5)


def _yolo(scale: str) -> ModelInfo:
    return ModelInfo(
        name=f"yolo11{scale}-pose",
        family="yolo-pose",
        scale=scale,
        skeleton="coco17",
        input_size=(640, 640),
        default_weights="yolo11n-pose.pt" if scale == "n" else None,
        weights_license="AGPL-3.0",
        published=f"COCO val2017 mAP-pose 50-95 {_YOLO_AP[scale]} at 640 (Ultralytics)",
        checkpoint=f"ultralytics yolo11{scale}-pose.pt",
        normalisation=UNIT_RGB,
    )


def _hourglass(stacks: int, published: str, checkpoint: str) -> ModelInfo:
    return ModelInfo(
        name=f"hourglass-{stacks}",
        family="hourglass",
        skeleton="mpii16",
        input_size=(256, 256),
        heatmap_size=(64, 64),
        codec=_NEWELL,
        normalisation=UNIT_RGB,
        arch=(("num_stacks", stacks),),
        size_multiple=64,
        weights_license="BSD-3-Clause (princeton-vl/pytorch_stacked_hourglass)"
        if checkpoint
        else "",
        published=published,
        checkpoint=checkpoint,
        flip_test=True,
    )


def _hg52(name: str, stacks: int, skeleton: str, size: int, published: str, ckpt: str) -> ModelInfo:
    return ModelInfo(
        name=name,
        family="hourglass52",
        skeleton=skeleton,
        input_size=(size, size),
        heatmap_size=(size // 4, size // 4),
        codec=_MSRA2 if size == 256 else _MSRA3,
        arch=(("num_stacks", stacks),),
        size_multiple=128,
        weights_license="Apache-2.0 (MMPose)" if ckpt else "",
        published=published,
        checkpoint=ckpt,
        flip_test=True,
    )


def _mspn(stages: int, ap: str, ckpt: str) -> ModelInfo:
    return ModelInfo(
        name="mspn50" if stages == 1 else f"mspn50-{stages}stg",
        family="mspn",
        skeleton="coco17",
        input_size=(256, 192),
        heatmap_size=(64, 48),
        codec=_megvii(stages),
        arch=(("num_stages", stages),),
        weights_license="Apache-2.0 (MMPose)",
        published=_COCO_MMPOSE.format(ap),
        checkpoint=_MMPOSE + "top_down/mspn/" + ckpt,
        flip_test=True,
    )


def _rsn(name: str, stages: int, blocks: tuple[int, ...], prm: bool, published: str, ckpt: str):
    return ModelInfo(
        name=name,
        family="rsn",
        skeleton="coco17",
        input_size=(256, 192),
        heatmap_size=(64, 48),
        codec=_megvii(stages),
        arch=(("num_stages", stages), ("num_blocks", blocks), ("use_prm", prm)),
        weights_license="Apache-2.0 (MMPose)" if ckpt else "",
        published=published,
        checkpoint=ckpt,
        flip_test=True,
    )


_RSN_V1 = _MMPOSE + "v1/body_2d_keypoint/topdown_heatmap/coco/"
_R18, _R50 = (2, 2, 2, 2), (3, 4, 6, 3)

_ENTRIES: list[ModelInfo] = [
    *(_yolo(s) for s in "nsmlx"),
    _hourglass(1, "", ""),
    _hourglass(
        2,
        "MPII val PCKh@0.5 0.883 (pytorch_stacked_hourglass README)",
        "pytorch_stacked_hourglass original_2hg/checkpoint.pt",
    ),
    _hourglass(
        8,
        "MPII val PCKh@0.5 0.902 (pytorch_stacked_hourglass README); paper: MPII test 90.9",
        "pytorch_stacked_hourglass original_8hg/checkpoint.pt",
    ),
    ModelInfo(
        name="mssnet",
        family="mssnet",
        skeleton="mpii16",
        input_size=(256, 256),
        heatmap_size=(64, 64),
        codec=_NEWELL,
        normalisation=UNIT_RGB,
        arch=(("num_stacks", 8),),
        size_multiple=64,
        published="paper (Ke et al. 2018): MPII test PCKh@0.5 92.1; no public checkpoint",
        flip_test=True,
    ),
    _hg52(
        "hourglass52",
        1,
        "coco17",
        256,
        _COCO_MMPOSE.format(0.726),
        _MMPOSE + "top_down/hourglass/hourglass52_coco_256x256-4ec713ba_20200709.pth",
    ),
    _hg52(
        "hourglass52-384",
        1,
        "coco17",
        384,
        _COCO_MMPOSE.format(0.746),
        _MMPOSE + "top_down/hourglass/hourglass52_coco_384x384-be91ba2b_20200812.pth",
    ),
    _hg52(
        "hourglass52-mpii",
        1,
        "mpii16",
        256,
        "MPII val PCKh@0.5 0.889 (MMPose)",
        _MMPOSE + "top_down/hourglass/hourglass52_mpii_256x256-ae358435_20200812.pth",
    ),
    _hg52("hourglass104", 2, "coco17", 256, "", ""),
    _mspn(1, "0.723", "mspn50_coco_256x192-8fbfb5d0_20201123.pth"),
    _mspn(2, "0.754", "2xmspn50_coco_256x192-c8765a5c_20201123.pth"),
    _mspn(3, "0.758", "3xmspn50_coco_256x192-e348f18e_20201123.pth"),
    _mspn(4, "0.765", "4xmspn50_coco_256x192-7b837afb_20201123.pth"),
    _rsn(
        "rsn18",
        1,
        _R18,
        False,
        _COCO_MMPOSE.format(0.704),
        _RSN_V1 + "td-hm_rsn18_8xb32-210e_coco-256x192-9049ed09_20221013.pth",
    ),
    _rsn("rsn18-prm", 1, _R18, True, "", ""),
    _rsn(
        "rsn50",
        1,
        _R50,
        False,
        _COCO_MMPOSE.format(0.724),
        _RSN_V1 + "td-hm_rsn50_8xb32-210e_coco-256x192-c35901d5_20221013.pth",
    ),
    _rsn(
        "2xrsn50",
        2,
        _R50,
        False,
        _COCO_MMPOSE.format(0.748),
        _RSN_V1 + "td-hm_2xrsn50_8xb32-210e_coco-256x192-9ede341e_20221013.pth",
    ),
    _rsn(
        "3xrsn50",
        3,
        _R50,
        False,
        _COCO_MMPOSE.format(0.750),
        _RSN_V1 + "td-hm_3xrsn50_8xb32-210e_coco-256x192-c3e3c4fe_20221013.pth",
    ),
    _rsn(
        "4xrsn50-prm",
        4,
        _R50,
        True,
        "paper (Cai et al. 2020): COCO val AP 79.0 (Megvii detector); no public checkpoint",
        "",
    ),
]

_ZOO: dict[str, ModelInfo] = {e.name: e for e in _ENTRIES}


def list_models(*, top_down: bool | None = None) -> list[str]:
    """Names of the zoo's models (only top-down or only one-stage ones when asked)."""
    return sorted(n for n, e in _ZOO.items() if top_down is None or e.top_down == top_down)


def get_model_info(name: str) -> ModelInfo:
    """Look up a zoo entry; raises :class:`UnknownModelError` listing the known names."""
    try:
        return _ZOO[name]
    except (KeyError, TypeError):
        raise UnknownModelError(
            f"unknown model {name!r}; available models: {', '.join(list_models())}"
        ) from None
