"""create_model: zoo networks and checkpoint loading, all or nothing, with clear errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rtpose.errors import CheckpointError  # noqa: E402
from rtpose.models import create_model, get_model_info, identify_checkpoint  # noqa: E402
from rtpose.models.factory import build_network  # noqa: E402


@pytest.fixture(scope="module")
def rsn18():
    torch.manual_seed(0)
    return create_model("rsn18")


@pytest.fixture(scope="module")
def rsn18_file(rsn18, tmp_path_factory):
    """An MMPose 1.x style file: {'meta': ..., 'state_dict': {backbone.*, head.*}}."""
    path = tmp_path_factory.mktemp("ckpt") / "rsn18.pth"
    with torch.no_grad():  # non-trivial BN statistics, so a mix-up would show in the outputs
        for m in rsn18.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save({"meta": {"epoch": 210}, "state_dict": rsn18.state_dict()}, path)
    return path


def test_create_model_attaches_info_and_normalisation(rsn18):
    assert rsn18.info is get_model_info("rsn18")
    assert rsn18.normalisation.channel_order == "rgb"
    assert rsn18.num_keypoints == 17 and not rsn18.training
    with torch.no_grad():
        assert rsn18(torch.zeros(2, 3, 256, 192)).shape == (2, 17, 64, 48)


def test_checkpoint_round_trip_restores_outputs(rsn18, rsn18_file):
    loaded = create_model("rsn18", rsn18_file)
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), rsn18(x), rtol=0, atol=0)


def test_mmpose_0x_prefix_and_module_prefix_load(rsn18, tmp_path):
    state = {
        ("module.keypoint_head." + k[len("head.") :]) if k.startswith("head.") else "module." + k: v
        for k, v in rsn18.state_dict().items()
    }
    path = tmp_path / "old.pth"
    torch.save({"state_dict": state}, path)
    loaded = create_model("rsn18", path)
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), rsn18(x), rtol=0, atol=0)


def test_custom_input_size(tmp_path):
    model = create_model("rsn18", input_size=(384, 288))
    assert model.info.heatmap_size == (96, 72)
    with pytest.raises(ValueError, match="multiples of 32"):
        create_model("rsn18", input_size=(383, 288))
    with pytest.raises(TypeError, match="unexpected keyword"):
        create_model("rsn18", stages=2)


# ------------------------------------------------------------------------------- bad checkpoints


def _save(tmp_path, state, name="bad.pth"):
    path = tmp_path / name
    torch.save({"state_dict": state}, path)
    return path


def test_missing_extra_and_misshaped_keys_are_listed(rsn18, tmp_path):
    state = dict(rsn18.state_dict())
    del state["backbone.top.top.0.conv.weight"]
    state["backbone.extra.weight"] = torch.zeros(3)
    state["head.predict_layers.3.conv_layers.0.conv.weight"] = torch.zeros(256, 256, 3, 3)
    with pytest.raises(CheckpointError) as err:
        create_model("rsn18", _save(tmp_path, state))
    text = str(err.value)
    assert "1 missing: backbone.top.top.0.conv.weight" in text
    assert "1 unexpected: backbone.extra.weight" in text
    assert (
        "head.predict_layers.3.conv_layers.0.conv.weight (256, 256, 3, 3) vs (256, 256, 1, 1)"
        in (text)
    )


def test_checkpoint_of_another_architecture(tmp_path):
    mspn = build_network(get_model_info("mspn50"))
    path = _save(tmp_path, mspn.state_dict(), "mspn.pth")
    with pytest.raises(CheckpointError, match=r"looks like a mspn .* 'rsn18' is a rsn network"):
        create_model("rsn18", path)
    assert identify_checkpoint(mspn.state_dict()).startswith("mspn")


def test_checkpoint_with_other_stage_count_lists_the_extra_stage(tmp_path):
    two = build_network(get_model_info("2xrsn50"))
    with pytest.raises(
        CheckpointError,
        match=r"unexpected: .*backbone\.multi_stage_rsn\.1\.downsample\.\* \(\d+ keys\)",
    ):
        create_model("rsn50", _save(tmp_path, two.state_dict()))


def test_checkpoint_with_another_keypoint_count(tmp_path):
    from rtpose.models.rsn import RSN

    mpii = RSN(num_keypoints=16)
    with pytest.raises(CheckpointError, match=r"predicts 16 keypoints.*17 keypoints of the coco17"):
        create_model("rsn18", _save(tmp_path, mpii.state_dict()))


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        create_model("rsn18", text)
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        create_model("rsn18", tmp_path / "missing.pth")
    with pytest.raises(IsADirectoryError):
        create_model("rsn18", tmp_path)
    empty = tmp_path / "list.pth"
    torch.save([1, 2, 3], empty)
    with pytest.raises(CheckpointError, match="no tensor dictionary"):
        create_model("rsn18", empty)


class _Payload:  # a pickled object: weights_only loading must refuse to run its code
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _Payload()}, path)
    with pytest.raises(
        CheckpointError, match=r"holds a pickled (builtins\.)?print, .*could run code"
    ):
        create_model("rsn18", path)
    assert "pickled code ran" not in capsys.readouterr().out


def test_authors_rsn_file_loads_with_its_bgr_normalisation(tmp_path):
    """An authors'-layout (caiyuanhao1998/RSN) file: names mapped, conv biases folded, and the
    model carries the BGR normalisation that the pipeline then applies."""
    from official_megvii import official_rsn  # tests/models: on sys.path under pytest

    torch.manual_seed(3)
    official = official_rsn(num_stages=1).eval()
    with torch.no_grad():
        for name, p in official.named_parameters():
            if name.endswith("conv.bias"):
                p.uniform_(-0.5, 0.5)  # the biases the map folds into BatchNorm
    path = tmp_path / "iter-96000.pth"
    torch.save({"model": official.state_dict(), "iteration": 96000}, path)
    model = create_model("rsn18", path)
    assert model.normalisation.channel_order == "bgr"
    assert model.normalisation.mean == pytest.approx((0.406 * 255, 0.456 * 255, 0.485 * 255))
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        ref = official(x)
        ref = ref[-1] if isinstance(ref, (list, tuple)) else ref
        out = model(x)
    assert (out - ref).abs().max() / ref.abs().max() <= 1e-5
    with pytest.raises(CheckpointError, match=r"looks like a rsn \(RSN, authors' layout\)"):
        create_model("mspn50", path)
