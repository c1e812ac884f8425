"""Engine manifests: JSON round trip, atomic save, runtime compatibility, cache keys."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rtpose.engine.manifest import (
    BuilderStamp,
    EngineManifest,
    TensorSpec,
    check_runtime_compatible,
    engine_cache_key,
)
from rtpose.engine.tensorrt_flavour import Flavour
from rtpose.errors import EngineBuildError
from rtpose.models.zoo import Normalisation

RTX = Flavour("tensorrt_rtx", "1.7.1.116", 1, True)
TRT10 = Flavour("tensorrt", "10.13.0.35", 10, False)
SHA = "ab" * 32


def _manifest(**changes) -> EngineManifest:
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


def test_json_round_trip(tmp_path):
    m = _manifest()
    path = m.save(tmp_path / "sub" / "rsn18-fp16.json")
    assert [p.name for p in path.parent.iterdir()] == ["rsn18-fp16.json"]  # no temp left
    back = EngineManifest.load(path)
    assert back == m
    assert back.normalisation.channel_order == "bgr"
    raw = json.loads(path.read_text())
    assert raw["inputs"][0]["shape"] == [-1, 3, 256, 192]
    assert raw["builder"]["compute_capability"] == [8, 0]
    assert raw["accuracy"] == {"pck@0.05_vs_fp32": 0.998}


def test_round_trip_without_accuracy():
    m = _manifest(accuracy=None, forced=True)
    assert EngineManifest.from_json(m.to_json()) == m


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"model_name": "rsn18"}')
    with pytest.raises(ValueError, match="not an rtpose engine manifest"):
        EngineManifest.load(path)
    with pytest.raises(FileNotFoundError):
        EngineManifest.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"precision": "int4"}, "precision"),
        ({"batch": (4, 1, 8)}, "batch"),
        ({"engine_file": "../e.plan"}, "bare file name"),
        ({"schema": 99}, "schema"),
    ],
)
def test_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        _manifest(**changes)


def test_compatible_when_same_trt_and_gpu():
    check_runtime_compatible(_manifest(), flavour=RTX, compute_capability=(8, 0))
    check_runtime_compatible(_manifest(), flavour=RTX, compute_capability=None)


def test_incompatible_gpu_and_trt_message():
    with pytest.raises(EngineBuildError) as err:
        check_runtime_compatible(_manifest(), flavour=TRT10, compute_capability=(9, 0))
    text = str(err.value)
    assert "built by TensorRT-RTX 1.7.1.116 for SM80" in text
    assert "this machine has TensorRT 10.13.0.35 / SM90" in text
    assert "rtpose-build rsn18 --precision fp16 --batch 1:4:8" in text


@pytest.mark.parametrize(
    "flavour, cc",
    [
        (RTX, (8, 6)),  # other GPU
        (Flavour("tensorrt_rtx", "1.8.0.1", 1, True), (8, 0)),  # other version
        (Flavour("tensorrt", "1.7.1.116", 1, True), (8, 0)),  # other flavour, same number
    ],
)
def test_each_mismatch_refused(flavour, cc):
    with pytest.raises(EngineBuildError, match="rebuild with rtpose-build"):
        check_runtime_compatible(_manifest(), flavour=flavour, compute_capability=cc)


def test_cache_key_is_deterministic_and_sensitive_to_every_field():
    base = dict(model_sha256=SHA, precision="fp16", batch=(1, 4, 8), flavour=RTX)
    key = engine_cache_key(**base, compute_capability=(8, 0))
    assert key == engine_cache_key(**base, compute_capability=(8, 0))
    assert len(key) == 16 and int(key, 16) >= 0
    variants = [
        {**base, "model_sha256": "ef" * 32},
        {**base, "precision": "int8"},
        {**base, "batch": (1, 4, 16)},
        {**base, "flavour": TRT10},
        {**base, "flavour": dataclasses.replace(RTX, version="1.7.1.117")},
    ]
    keys = {engine_cache_key(**v, compute_capability=(8, 0)) for v in variants}
    keys.add(engine_cache_key(**base, compute_capability=(8, 6)))
    assert key not in keys and len(keys) == 6
