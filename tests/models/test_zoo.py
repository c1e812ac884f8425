"""The zoo's typed entries: consistent facts, validated input sizes, clear errors."""

from __future__ import annotations

import dataclasses

import pytest

from rtpose.errors import UnknownModelError
from rtpose.models import CodecSpec, Normalisation, get_model_info, list_models
from rtpose.skeletons import get_skeleton

SEED_FAMILIES = {"hourglass", "mssnet", "hourglass52", "mspn", "rsn"}


def test_every_seed_family_is_registered():
    families = {get_model_info(n).family for n in list_models(top_down=True)}
    assert families == SEED_FAMILIES
    assert set(list_models()) == set(list_models(top_down=True)) | set(list_models(top_down=False))
    assert "yolo11n-pose" in list_models(top_down=False)


@pytest.mark.parametrize("name", list_models(top_down=True))
def test_top_down_entries_are_consistent(name):
    info = get_model_info(name)
    h, w = info.input_size
    hm_h, hm_w = info.heatmap_size
    assert h == 4 * hm_h and w == 4 * hm_w and info.stride == 4
    assert info.num_keypoints == get_skeleton(info.skeleton).num_keypoints
    assert isinstance(info.codec, CodecSpec) and isinstance(info.normalisation, Normalisation)
    if info.codec.kind == "megvii":  # MSPN / RSN: Megvii targets, shift-less flip
        assert info.codec.kernel_sizes[-1] == info.codec.decode_kernel == 5
        assert not info.codec.flip_shift
    if info.checkpoint:  # a public checkpoint comes with its published accuracy
        assert info.published and info.weights_license
    codec = info.codec.build(info.input_size, info.heatmap_size)
    assert codec.decode_spec.mode in ("quarter", "megvii", "dark")


def test_published_figures_of_the_mmpose_checkpoints():
    assert "0.704" in get_model_info("rsn18").published
    assert "0.765" in get_model_info("mspn50-4stg").published
    assert "0.726" in get_model_info("hourglass52").published
    assert get_model_info("hourglass52").checkpoint.endswith("4ec713ba_20200709.pth")
    assert get_model_info("hourglass52-384").heatmap_size == (96, 96)
    assert get_model_info("hourglass52-mpii").skeleton == "mpii16"


def test_unknown_model_lists_the_zoo():
    with pytest.raises(UnknownModelError, match=r"available models: .*rsn18"):
        get_model_info("rsn19")


def test_other_input_sizes_keep_the_stride():
    info = get_model_info("rsn18").with_input_size((384, 288))
    assert info.heatmap_size == (96, 72) and info.published == ""
    assert get_model_info("rsn18").with_input_size((256, 192)) is get_model_info("rsn18")


@pytest.mark.parametrize(
    ("name", "size", "match"),
    [
        ("rsn18", (250, 192), "multiples of 32"),
        ("hourglass52", (256, 192), "multiples of 128"),
        ("hourglass-8", (200, 200), "multiples of 64"),
        ("rsn18", (256,), r"\(height, width\)"),
        ("rsn18", (256.5, 192), r"\(height, width\)"),
        ("rsn18", (-32, 192), r"\(height, width\)"),
    ],
)
def test_input_sizes_the_network_does_not_take(name, size, match):
    with pytest.raises(ValueError, match=match):
        get_model_info(name).with_input_size(size)


def test_entry_validation():
    info = get_model_info("rsn18")
    with pytest.raises(ValueError, match="multiple of 32"):
        dataclasses.replace(info, input_size=(250, 192))
    with pytest.raises(ValueError, match="unknown keypoint set"):
        dataclasses.replace(info, skeleton="coco18")
    with pytest.raises(ValueError, match="needs heatmap_size and codec"):
        dataclasses.replace(info, codec=None)
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalisation((0, 0, 0), (1, 0, 1))
    with pytest.raises(ValueError, match="channel_order"):
        Normalisation((0, 0, 0), (1, 1, 1), "rgba")


def test_flip_shift_has_one_definition_the_zoo_entry():
    """The Newell hourglass flips without the one-pixel shift: the codec's decode spec (what
    the top-down path reads) says what the zoo entry says, for every entry."""
    for name in list_models(top_down=True):
        info = get_model_info(name)
        spec = info.codec.build(info.input_size, info.heatmap_size).decode_spec
        zoo = info.codec.flip_shift
        assert spec.flip_shift == (info.codec.kind in ("msra", "dark") if zoo is None else zoo)
    newell = get_model_info("hourglass-8")
    newell_spec = newell.codec.build(newell.input_size, newell.heatmap_size).decode_spec
    assert newell_spec.flip_shift is False
    with pytest.raises(ValueError, match="flip_shift=True does not apply"):
        CodecSpec("megvii", kernel_sizes=(5,), decode_kernel=5, flip_shift=True)


def test_yolo_entries_carry_their_unit_rgb_normalisation():
    """YOLO11-pose takes RGB in [0, 1] (x / 255), not ImageNet mean/std."""
    from rtpose.models.zoo import UNIT_RGB

    for name in list_models(top_down=False):
        assert get_model_info(name).normalisation == UNIT_RGB
