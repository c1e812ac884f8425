"""Engine manifests: JSON round trip, atomic save, runtime compatibility, cache keys."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rtpose.backends.base import TensorSpec
from rtpose.backends.tensorrt.flavour import Flavour
from rtpose.backends.tensorrt.manifest import (
    BuilderStamp,
    EngineManifest,
    check_runtime_compatible,
    engine_cache_key,
)
from rtpose.errors import EngineBuildError, InferenceError

RTX = Flavour("tensorrt_rtx", "1.7.1.116", 1, True)
TRT10 = Flavour("tensorrt", "10.13.0.35", 10, False)
SHA = "ab" * 32


def test_json_round_trip(tmp_path, make_manifest):
    m = make_manifest()
    path = m.save(tmp_path / "sub" / "rsn18-fp16.json")
    assert [p.name for p in path.parent.iterdir()] == ["rsn18-fp16.json"]  # no temp left
    back = EngineManifest.load(path)
    assert back == m
    assert back.normalisation.channel_order == "bgr"
    raw = json.loads(path.read_text())
    assert raw["inputs"][0]["shape"] == [-1, 3, 256, 192]
    assert raw["builder"]["compute_capability"] == [8, 0]
    assert raw["accuracy"] == {"pck@0.05_vs_fp32": 0.998}


def test_round_trip_without_accuracy(make_manifest):
    m = make_manifest(accuracy=None, forced=True)
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
def test_validation(changes, match, make_manifest):
    with pytest.raises(ValueError, match=match):
        make_manifest(**changes)


def test_compatible_when_same_trt_and_gpu(make_manifest):
    check_runtime_compatible(make_manifest(), flavour=RTX, compute_capability=(8, 0))
    check_runtime_compatible(make_manifest(), flavour=RTX, compute_capability=None)


def test_incompatible_gpu_and_trt_message(make_manifest):
    with pytest.raises(InferenceError) as err:  # refusing to load is not a build failure
        check_runtime_compatible(make_manifest(), flavour=TRT10, compute_capability=(9, 0))
    assert not isinstance(err.value, EngineBuildError)
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
def test_each_mismatch_refused(flavour, cc, make_manifest):
    with pytest.raises(InferenceError, match="rebuild with rtpose-build"):
        check_runtime_compatible(make_manifest(), flavour=flavour, compute_capability=cc)


@pytest.mark.parametrize(
    ("builder", "needle"),
    [
        (BuilderStamp("tensorrt", "10.13.0", None, (8, 0)), "flavour"),
        (BuilderStamp("tensorrt_rtx", "1.6.0.1", None, (8, 0)), "ver"),
        (BuilderStamp("tensorrt_rtx", "1.7.1.116", None, (8, 6)), "SM86"),
    ],
)
def test_refusal_names_what_differs(builder, needle, make_manifest):
    with pytest.raises(InferenceError, match="rebuild") as info:
        check_runtime_compatible(
            make_manifest(builder=builder),
            flavour=RTX,
            compute_capability=(8, 0),
            engine_path="a.engine",
        )
    assert needle in str(info.value) and "SM80" in str(info.value)
    assert str(info.value).startswith("engine a.engine built by")


def test_unknown_local_capability_skips_that_check(make_manifest):
    stamp = BuilderStamp("tensorrt", "10.13.0", None, (9, 0))
    check_runtime_compatible(
        make_manifest(builder=stamp),
        flavour=Flavour("tensorrt", "10.13.0", 10, False),
        compute_capability=None,
    )


def test_tensor_spec_dtype_is_a_numpy_name():
    spec = TensorSpec("x", (-1, 3), np.dtype(np.float16))
    assert spec == TensorSpec("x", (-1, 3), "float16") and np.dtype(spec.dtype) == np.float16
    assert TensorSpec("x", (1,), np.int8).dtype == "int8"
    with pytest.raises(TypeError, match="dtype must be a numpy dtype or its name"):
        TensorSpec("x", (1,), object())
    with pytest.raises(ValueError, match="dims must be > 0 or -1"):
        TensorSpec("x", (0, 3), "float32")


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
