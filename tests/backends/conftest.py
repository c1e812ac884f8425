"""Shared fixtures of the backend tests: an engine manifest built by TensorRT-RTX for SM80."""

from __future__ import annotations

import pytest

from rtpose.backends.base import TensorSpec
from rtpose.backends.tensorrt.manifest import BuilderStamp, EngineManifest
from rtpose.models.zoo import Normalisation

SHA = "ab" * 32


@pytest.fixture
def make_manifest():
    """``make(**changes)``: the manifest of an RSN-18 fp16 engine, with fields replaced."""

    def make(**changes) -> EngineManifest:
        fields = dict(
            model_name="rsn18",
            model_sha256=SHA,
            precision="fp16",
            inputs=(TensorSpec("images", (-1, 3, 256, 192), "float32"),),
            batch=(1, 4, 8),
            outputs=(TensorSpec("heatmaps", (-1, 17, 64, 48), "float32"),),
            output_codec={"layout": "NKHW", "codec": "megvii", "kernel": [11, 9, 7, 5]},
            normalisation=Normalisation((103.5, 116.3, 123.7), (57.4, 57.1, 58.4), "bgr"),
            keypoint_set="coco17",
            builder=BuilderStamp("tensorrt_rtx", "1.7.1.116", None, (8, 0)),
            built_at="2026-11-21T07:00:00+00:00",
            build_seconds=12.5,
            accuracy={"pck@0.05_vs_fp32": 0.998},
            forced=False,
            engine_file="rsn18-fp16.plan",
            engine_sha256="cd" * 32,
        )
        fields.update(changes)
        return EngineManifest(**fields)

    return make


@pytest.fixture
def engine_manifest(make_manifest) -> EngineManifest:
    return make_manifest()
