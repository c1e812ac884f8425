"""rtpose-build end to end with TensorRT-RTX (builds without a GPU): fp32 / fp16 / int8 engines of
yolo11n-pose and rsn18, their manifests, the accuracy gate on ONNX Runtime, the engine cache, and
the errors on bad input. Nothing here runs an engine (no GPU here): see
tests/backends/test_tensorrt_backend.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorrt_rtx_bindings")
torch = pytest.importorskip("torch")

from rtpose.deploy.build import build_engine  # noqa: E402
from rtpose.errors import EngineBuildError  # noqa: E402

FAST = {"batch": (1, 2, 4), "gpu_arch": "sm80", "calib_frames": 6, "eval_frames": 4}


@pytest.fixture(scope="module")
def rsn18_weights(tmp_path_factory):
    from rtpose.models import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "rsn18.pth"
    torch.save(create_model("rsn18").state_dict(), path)
    return path


def _manifest(result) -> dict:
    data = json.loads(result.manifest.read_text())
    assert data["engine_file"] == result.engine.name
    assert result.engine.stat().st_size == result.size_bytes > 10_000
    return data


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_yolo11n_pose_engines(precision, tmp_path, default_weights, sample_video):
    lines = []
    result = build_engine("yolo11n-pose", precision=precision, out=tmp_path,
                          progress=lines.append, force=precision == "int8", **FAST)  # fmt: skip
    data = _manifest(result)
    assert data["precision"] == precision and data["model_name"] == "yolo11n-pose"
    assert data["builder"]["flavour"] == "tensorrt_rtx"
    assert tuple(data["builder"]["compute_capability"]) == (8, 0)
    assert data["batch"] == [1, 2, 4]
    assert data["inputs"][0]["shape"] == [-1, 3, 640, 640]
    assert data["keypoint_set"] == "coco17"
    steps = [line[:5] for line in lines]  # one or more lines per step, in order
    assert steps == sorted(steps) and set(steps) == {f"[{i}/5]" for i in range(1, 6)}
    if precision == "fp32":
        assert data["accuracy"] is None
    else:
        acc = data["accuracy"]
        assert acc["instances"] >= 4 and 0.0 <= acc["oks_mean"] <= 1.0
        if precision == "fp16":  # fp16 of a trained detector keeps its keypoints
            assert acc["passed"] and acc["oks_mean"] > 0.99 and not data["forced"]
        assert data["forced"] == (not acc["passed"])
    again = build_engine("yolo11n-pose", precision=precision, out=tmp_path,
                         force=precision == "int8", **FAST)  # fmt: skip
    assert again.reused and again.engine == result.engine


@pytest.mark.slow
def test_rsn18_engines_and_the_gate(rsn18_weights, tmp_path, default_weights, sample_video):
    fp16 = build_engine("rsn18", weights=rsn18_weights, precision="fp16", out=tmp_path,
                        force=True, **FAST)  # fmt: skip
    data = _manifest(fp16)
    assert data["inputs"][0]["shape"] == [-1, 3, 256, 192]
    assert data["output_codec"]["codec"]["kind"] == "megvii"
    assert data["normalisation"]["channel_order"] == "rgb"
    assert data["accuracy"]["instances"] >= 4
    int8 = build_engine("rsn18", weights=rsn18_weights, precision="int8", out=tmp_path,
                        force=True, **FAST)  # fmt: skip
    assert _manifest(int8)["precision"] == "int8"
    # an impossible threshold fails the gate and leaves nothing behind
    out = tmp_path / "strict"
    with pytest.raises(EngineBuildError, match=r"failed the accuracy gate.*--force"):
        build_engine("rsn18", weights=rsn18_weights, precision="int8", out=out, min_oks=1.0,
                     **FAST)  # fmt: skip
    assert list(out.iterdir()) == []


def test_onnx_that_does_not_parse(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(EngineBuildError, match="not a valid ONNX model"):
        build_engine(bad, model_name="rsn18", precision="fp32", out=tmp_path / "e", **FAST)
    assert not (tmp_path / "e").exists() or list((tmp_path / "e").iterdir()) == []


def test_onnx_needs_its_zoo_model(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="say which zoo model this ONNX is"):
        build_engine(path, precision="fp32", out=tmp_path, **FAST)


def test_batch_profile_the_model_cannot_take(tmp_path):
    from rtpose.deploy.onnx import export_onnx

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 17, 3, stride=4, padding=1))
    path = tmp_path / "fixed.onnx"
    export_onnx(net, path, sample_shape=(1, 3, 256, 192), dynamic_size=False)
    import onnx

    model = onnx.load(str(path))  # pin the batch to 1
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, str(path))
    with pytest.raises(
        ValueError, match="fixed batch of 1; it cannot take the batch profile 1:2:4"
    ):
        build_engine(path, model_name="rsn18", precision="fp32", out=tmp_path / "e", **FAST)


def test_calibration_source_without_frames(tmp_path, rsn18_weights):
    empty = tmp_path / "frames"
    empty.mkdir()
    with pytest.raises(ValueError, match="has no frames"):
        build_engine("rsn18", weights=rsn18_weights, precision="int8", calib=empty,
                     out=tmp_path / "e", **FAST)  # fmt: skip


def test_top_down_model_needs_weights(tmp_path):
    with pytest.raises(ValueError, match="rsn18 is a top-down model without bundled weights"):
        build_engine("rsn18", precision="fp32", out=tmp_path, **FAST)


def test_cli_help_and_one_line_errors(tmp_path, capsys):
    from rtpose.cli.build import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--precision", "--calib", "--calib-frames", "--batch", "--gpu-arch", "--out",
                   "--force", "--min-oks"):  # fmt: skip
        assert option in out
    assert main(["rsn18", "--out", str(tmp_path), "--gpu-arch", "sm80"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rtpose-build: error: rsn18 is a top-down model")
    assert main(["yolo11n-pose", "--batch", "8:1:2", "--out", str(tmp_path)]) == 1
    assert "MIN <= OPT <= MAX" in capsys.readouterr().err
    assert np.array(list(tmp_path.iterdir())).size == 0


def test_onnx_given_as_a_yolo_model_gets_the_yolo_normalisation(tmp_path):
    """`rtpose-build model.onnx --as yolo11n-pose` records YOLO's unit-RGB input (x / 255), the
    zoo entry's normalisation, not ImageNet mean/std."""
    from tiny_onnx import export_tiny_net

    from rtpose.deploy.subject import export_subject
    from rtpose.models.zoo import UNIT_RGB

    onnx = export_tiny_net(tmp_path / "yolo.onnx")
    subject = export_subject(onnx, None, "yolo11n-pose", tmp_path)
    assert subject.normalisation == UNIT_RGB and subject.fixed  # TensorRT: one input size
    # the CPU target keeps what the file says: the tiny net takes one size, 32x32
    assert export_subject(onnx, None, "yolo11n-pose", tmp_path, target="cpu").fixed
