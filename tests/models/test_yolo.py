"""YOLO11-pose in plain PyTorch: checkpoint import, architecture rules, ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtpose.errors import CheckpointError  # noqa: E402
from rtpose.models import yolo_checkpoint  # noqa: E402
from rtpose.models.yolo import YoloPose  # noqa: E402
from rtpose.models.yolo_checkpoint import load_yolo_checkpoint, load_yolo_pose  # noqa: E402

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def checkpoint(default_weights):
    return load_yolo_checkpoint(default_weights)


@pytest.fixture(scope="module")
def model(default_weights):
    return load_yolo_pose(default_weights)


def test_checkpoint_keys_match_the_published_key_list(checkpoint, model):
    # keys_yolo11n_pose.txt: key TAB shape TAB dtype, dumped from the public yolo11n-pose.pt
    rows = [line.split("\t") for line in (DATA / "keys_yolo11n_pose.txt").read_text().splitlines()]
    published = {
        k: tuple(int(d) for d in s.strip("()").split(",") if d.strip()) for k, s, _ in rows
    }
    assert {k: tuple(v.shape) for k, v in checkpoint.state_dict.items()} == published
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == published


def test_checkpoint_metadata_and_architecture(checkpoint):
    assert checkpoint.yaml["scale"] == "n"
    assert checkpoint.yaml["kpt_shape"] == [17, 3]
    assert checkpoint.metadata["license"].startswith("AGPL-3.0")


@pytest.mark.parametrize(
    ("scale", "published_params"),
    # Ultralytics' published parameter counts of YOLO11{n,s,m,l,x}-pose (millions)
    [("n", 2.9), ("s", 9.9), ("m", 20.9), ("l", 26.2), ("x", 58.8)],
)
def test_every_scale_builds_from_the_stored_architecture(checkpoint, scale, published_params):
    net = YoloPose(checkpoint.yaml, scale=scale, nc=1)
    params = sum(p.numel() for p in net.parameters()) / 1e6
    assert params == pytest.approx(published_params, abs=0.05)


def test_output_layout(model):
    with torch.no_grad():
        y = model(torch.rand(2, 3, 384, 640))
    anchors = sum((384 // s) * (640 // s) for s in (8, 16, 32))
    assert y.shape == (2, 4 + 1 + 17 * 3, anchors)
    scores = y[:, 4]
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0
    assert float(y[:, 7::3].min()) >= 0.0 and float(y[:, 7::3].max()) <= 1.0  # keypoint visibility


def test_box_decoding_matches_dfl_formula(model):
    """The graph's box decode equals the DFL expectation around the anchor, computed by hand."""
    head = model.head
    x = torch.rand(1, 3, 128, 160)
    feats = {}
    hooks = [head.cv2[i].register_forward_hook(lambda m, a, o, i=i: feats.__setitem__(i, o))
             for i in range(3)]  # fmt: skip
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    col = 0
    for level, stride in enumerate((8, 16, 32)):
        raw = feats[level][0].numpy()  # (64, h, w)
        _, h, w = raw.shape
        gy, gx = 1, w - 1  # one anchor per level, off the first row
        logits = raw[:, gy, gx].reshape(4, 16)
        prob = np.exp(logits - logits.max(1, keepdims=True))
        dist = (prob / prob.sum(1, keepdims=True)) @ np.arange(16)  # l, t, r, b in grid units
        ax, ay = gx + 0.5, gy + 0.5
        expected = np.array(
            [ax + (dist[2] - dist[0]) / 2, ay + (dist[3] - dist[1]) / 2, dist[0] + dist[2],
             dist[1] + dist[3]]
        ) * stride  # fmt: skip
        got = y[0, :4, col + gy * w + gx].numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
        col += h * w


def test_onnx_export_dynamic_batch_and_size_matches_torch(model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from rtpose.deploy.onnx import export_onnx

    path = export_onnx(model, tmp_path / "y.onnx", sample_shape=(1, 3, 640, 640),
                       output_axes={2: "anchors"})  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 640, 640), (3, 3, 384, 640), (2, 3, 320, 224)]:
        x = rng.random(shape, dtype=np.float32)
        (got,) = session.run(None, {"images": x})
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        # relative to the output's scale (pixel coordinates up to ~700): fp32 reassociation only
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    assert not list(tmp_path.glob("*.part"))


# ---------------------------------------------------------------------------- bad checkpoints


def test_missing_checkpoint():
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_yolo_checkpoint("/nonexistent/yolo.pt")


def test_random_bytes_are_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(CheckpointError, match="not a torch checkpoint"):
        load_yolo_checkpoint(bad)


def test_truncated_checkpoint_is_refused(default_weights, tmp_path):
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(default_weights.read_bytes()[:3_000_000])
    with pytest.raises(CheckpointError):
        load_yolo_pose(bad)


def test_plain_state_dict_is_not_a_yolo_checkpoint(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not an ultralytics YOLO model checkpoint"):
        load_yolo_pose(path)


def test_pickled_code_is_never_executed(tmp_path):
    """A checkpoint whose pickle calls os.system is refused before anything runs."""
    import os

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_yolo_checkpoint(path)
    assert not marker.exists()


def test_scale_mismatch_is_refused(default_weights):
    with pytest.raises(CheckpointError, match="YOLO11n-pose but the model asked for is yolo11s"):
        load_yolo_pose(default_weights, expect_scale="s")


def _patched(monkeypatch, checkpoint, *, state_dict=None, yaml=None):
    fake = yolo_checkpoint.YoloCheckpoint(
        yaml=yaml or checkpoint.yaml,
        state_dict=state_dict if state_dict is not None else checkpoint.state_dict,
        metadata=checkpoint.metadata,
    )
    monkeypatch.setattr(yolo_checkpoint, "load_yolo_checkpoint", lambda path: fake)


def test_detect_checkpoint_is_not_a_pose_model(monkeypatch, checkpoint):
    yaml = dict(checkpoint.yaml)
    yaml["head"] = [*yaml["head"][:-1], [[16, 19, 22], 1, "Detect", ["nc"]]]
    _patched(monkeypatch, checkpoint, yaml=yaml)
    with pytest.raises(CheckpointError, match="'Detect' checkpoint, not a pose model"):
        load_yolo_pose("x.pt")


def test_missing_extra_and_misshaped_keys_are_listed(monkeypatch, checkpoint):
    sd = dict(checkpoint.state_dict)
    del sd["model.0.conv.weight"]
    sd["model.99.extra"] = torch.zeros(1)
    sd["model.1.conv.weight"] = torch.zeros(7, 7, 3, 3)
    _patched(monkeypatch, checkpoint, state_dict=sd)
    with pytest.raises(CheckpointError) as info:
        load_yolo_pose("x.pt")
    msg = str(info.value)
    assert "model.0.conv.weight" in msg and "model.99.extra" in msg and "model.1.conv.weight" in msg
