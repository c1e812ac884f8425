"""Which checkpoint file a zoo entry runs with: the caller's, or its fetched default weights."""

from __future__ import annotations

from pathlib import Path

from rtpose.assets import require_asset
from rtpose.models.zoo import ModelInfo


def resolve_weights(info: ModelInfo, weights: str | Path | None) -> Path:
    """The checkpoint to use: the caller's file, or the model's fetched default weights."""
    if weights is None:
        if info.default_weights is None:
            raise ValueError(
                f"{info.name} has no default weights; pass weights=PATH to an ultralytics "
                f"{info.name}.pt checkpoint"
            )
        return require_asset(info.default_weights)
    path = Path(weights).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"weights must be a checkpoint file, got a directory: {path}")
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    return path
