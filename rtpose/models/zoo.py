"""The model zoo: names users pass as ``model=...`` and what each needs to run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rtpose.errors import UnknownModelError


@dataclass(frozen=True)
class ModelInfo:
    """Static facts about a zoo entry."""

    name: str
    family: Literal["yolo-pose"]
    scale: str  # YOLO scale letter n/s/m/l/x
    skeleton: str  # keypoint set name in rtpose.skeletons
    input_size: int  # longest side of the letterboxed network input
    default_weights: str | None  # asset name fetched by `rtpose fetch`, or None: pass weights=
    weights_license: str
    published: str  # published accuracy of the matching public checkpoint

    def __post_init__(self) -> None:
        if self.input_size % 32:
            raise ValueError(f"{self.name}: input_size must be a multiple of 32")


_YOLO_AP = {"n": 50.0, "s": 58.9, "m": 64.9, "l": 66.1, "x": 69.5}  # COCO val mAP-pose 50-95

_ZOO: dict[str, ModelInfo] = {
    f"yolo11{s}-pose": ModelInfo(
        name=f"yolo11{s}-pose",
        family="yolo-pose",
        scale=s,
        skeleton="coco17",
        input_size=640,
        default_weights="yolo11n-pose.pt" if s == "n" else None,
        weights_license="AGPL-3.0",
        published=f"COCO val2017 mAP-pose 50-95 {_YOLO_AP[s]} at 640 (Ultralytics)",
    )
    for s in "nsmlx"
}


def list_models() -> list[str]:
    """Names of every model in the zoo."""
    return sorted(_ZOO)


def get_model_info(name: str) -> ModelInfo:
    """Look up a zoo entry; raises :class:`UnknownModelError` listing the known names."""
    try:
        return _ZOO[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; available models: {', '.join(list_models())}"
        ) from None
