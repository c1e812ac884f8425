"""MMPose 1.x checkpoint files as mmengine writes them: ``meta["dataset_meta"]`` holds numpy
arrays, which ``torch.load(weights_only=True)`` refuses unless numpy's reconstruction is admitted.
Files are written here both as numpy 2 pickles them (``numpy._core.multiarray``) and with numpy
1's global name (``numpy.core.multiarray``, rewritten in the pickle); anything else that would
need code to unpickle is still refused, in rtpose's own words."""

from __future__ import annotations

import logging
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtpose.errors import CheckpointError  # noqa: E402
from rtpose.models import create_model  # noqa: E402
from rtpose.models.checkpoint import check_dataset_meta, read_checkpoint  # noqa: E402
from rtpose.skeletons import get_skeleton  # noqa: E402

COCO = get_skeleton("coco17")


def coco_meta(**changes) -> dict:
    """dataset_meta as MMPose 1.x's parse_pose_metainfo builds it for COCO (arrays included)."""
    meta = {
        "dataset_name": "coco",
        "num_keypoints": 17,
        "keypoint_id2name": dict(enumerate(COCO.keypoints)),
        "flip_pairs": [list(p) for p in COCO.flip_pairs],
        "flip_indices": list(range(17)),
        "keypoint_colors": np.full((17, 3), 255, np.uint8),
        "skeleton_link_colors": np.zeros((19, 3), np.uint8),
        "dataset_keypoint_weights": np.ones(17, np.float32),
        "sigmas": np.asarray(COCO.sigmas, np.float32),
        "num_skeleton_links": np.int64(19),  # a numpy scalar, pickled through `scalar`
    }
    meta.update(changes)
    return meta


def save_mmengine(path, state, meta, *, numpy1: bool = False):
    """torch.save of {"meta": {"dataset_meta": meta}, "state_dict": state}; ``numpy1`` rewrites
    the pickle's numpy globals to numpy 1.x's module name."""
    torch.save({"meta": {"dataset_meta": meta, "epoch": 210}, "state_dict": state}, path)
    if numpy1:
        with zipfile.ZipFile(path) as z:
            entries = [(info, z.read(info)) for info in z.infolist()]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            for info, data in entries:
                if info.filename.endswith("data.pkl"):
                    assert b"numpy._core.multiarray\n" in data
                    data = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
                z.writestr(info, data)
    return path


@pytest.fixture(scope="module")
def rsn18_state():
    torch.manual_seed(0)
    return create_model("rsn18").state_dict()


@pytest.mark.parametrize("numpy1", [False, True])
def test_mmengine_files_with_numpy_meta_load(tmp_path, rsn18_state, numpy1):
    path = save_mmengine(tmp_path / "rsn18.pth", rsn18_state, coco_meta(), numpy1=numpy1)
    if numpy1:
        assert b"numpy.core.multiarray\n" in zipfile.ZipFile(path).read("rsn18/data.pkl")
    state, meta = read_checkpoint(path)
    assert state.keys() == rsn18_state.keys()
    assert meta["num_keypoints"] == 17 and meta["sigmas"].dtype == np.float32
    np.testing.assert_array_equal(meta["keypoint_colors"], 255)
    assert meta["num_skeleton_links"] == 19
    model = create_model("rsn18", weights=path)  # the meta is checked against coco17, and passes
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, rsn18_state[name], rtol=0, atol=0)


def test_code_in_a_checkpoint_is_refused_in_plain_words(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": {"hook": logging.Logger}}, path)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    text = str(err.value)
    assert "logging.Logger" in text and "could run code" in text
    assert "\x1b[" not in text and "weights_only=False" not in text and "trust" not in text
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"garbage\.pth: not a readable PyTorch checkpoint"):
        read_checkpoint(garbage)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_keypoints": 14}, "trained on 14 keypoints"),
        ({"keypoint_id2name": dict(enumerate(reversed(COCO.keypoints)))}, "0: right_ankle != nose"),
        ({"flip_pairs": [[1, 2]]}, "its flip pairs"),
    ],
)
def test_meta_of_another_keypoint_set_is_refused(changes, message):
    with pytest.raises(CheckpointError, match=message):
        check_dataset_meta(coco_meta(**changes), COCO, source="ckpt.pth")


def test_meta_sigmas_differ_is_logged_and_mpii_spellings_match(caplog):
    with caplog.at_level(logging.WARNING, logger="rtpose.models.checkpoint"):
        check_dataset_meta(coco_meta(sigmas=np.full(17, 0.05)), COCO, source="ckpt.pth")
    assert "OKS sigmas differ" in caplog.text
    mpii = get_skeleton("mpii16")
    sides = {"r_": "right_", "l_": "left_"}
    spelled = [sides.get(n[:2], n[:2]) + n[2:] for n in mpii.keypoints]  # MMPose's spelling
    assert spelled[0] == "right_ankle" and spelled[8] == "upper_neck"
    check_dataset_meta({"num_keypoints": 16, "keypoint_id2name": dict(enumerate(spelled)),
                        "flip_pairs": [list(p) for p in mpii.flip_pairs]}, mpii,
                       source="mpii.pth")  # fmt: skip
    check_dataset_meta(None, COCO, source="plain.pth")  # files without meta pass
