"""Keypoint sets: the published COCO / MPII definitions and Skeleton's validation."""

from __future__ import annotations

import dataclasses

import pytest

from rtpose.skeletons import COCO17, MPII16, Skeleton, get_skeleton


def test_coco17_matches_the_coco_definition():
    assert COCO17.num_keypoints == 17
    assert COCO17.keypoints[:5] == ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    assert COCO17.keypoints[-1] == "right_ankle"
    # pycocotools COCOeval: kpt_oks_sigmas = np.array([.26, .25, ...]) / 10.0
    sigmas_x10 = (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07)
    sigmas_x10 += (0.87, 0.87, 0.89, 0.89)
    assert pytest.approx([s / 10 for s in sigmas_x10]) == COCO17.sigmas
    # The COCO annotation file's 1-based "skeleton" field.
    coco_1based = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7]]
    coco_1based += [[6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5]]
    coco_1based += [[4, 6], [5, 7]]
    assert len(COCO17.edges) == 19
    assert {frozenset(e) for e in COCO17.edges} == {
        frozenset((a - 1, b - 1)) for a, b in coco_1based
    }


def test_mpii16_order_and_pckh_sigmas():
    assert MPII16.num_keypoints == 16
    assert MPII16.keypoints[:6] == ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle")
    assert MPII16.keypoints[6:10] == ("pelvis", "thorax", "upper_neck", "head_top")
    assert MPII16.keypoints[10:] == (
        "r_wrist",
        "r_elbow",
        "r_shoulder",
        "l_shoulder",
        "l_elbow",
        "l_wrist",
    )
    assert MPII16.sigmas == ()  # evaluated with PCKh, no OKS sigmas
    # Every joint is reachable from the pelvis.
    reached, frontier = {6}, [6]
    while frontier:
        k = frontier.pop()
        for i, j in MPII16.edges:
            for a, b in ((i, j), (j, i)):
                if a == k and b not in reached:
                    reached.add(b)
                    frontier.append(b)
    assert reached == set(range(16))


@pytest.mark.parametrize("skeleton", [COCO17, MPII16], ids=lambda s: s.name)
def test_flip_index_mirrors_names(skeleton):
    flip = skeleton.flip_index
    assert sorted(flip) == list(range(skeleton.num_keypoints))  # a permutation
    assert all(flip[flip[i]] == i for i in range(len(flip)))  # an involution
    swaps = {"left_": "right_", "right_": "left_", "l_": "r_", "r_": "l_"}
    for i, name in enumerate(skeleton.keypoints):
        prefix = next((p for p in swaps if name.startswith(p)), None)
        expected = swaps[prefix] + name[len(prefix) :] if prefix else name
        assert skeleton.keypoints[flip[i]] == expected


def test_skeleton_is_frozen_and_hashable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        COCO17.name = "x"  # type: ignore[misc]
    assert hash(COCO17) == hash(COCO17)


def test_lists_are_stored_as_tuples_without_touching_the_callers():
    edges = [[0, 1]]
    s = Skeleton("tiny", ["a", "b"], [], edges, [0.1, 0.2])
    assert s.edges == ((0, 1),) and s.keypoints == ("a", "b") and s.sigmas == (0.1, 0.2)
    assert edges == [[0, 1]]


def test_get_skeleton():
    assert get_skeleton("coco17") is COCO17
    assert get_skeleton("MPII16") is MPII16
    with pytest.raises(ValueError, match=r"unknown keypoint set 'coco18'.*coco17, mpii16"):
        get_skeleton("coco18")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keypoints": ()}, "must not be empty"),
        ({"keypoints": ("a", "a", "c")}, "duplicate keypoint names"),
        ({"edges": ((0, 3),)}, r"edges pair \(0, 3\) is out of range for 3 keypoints"),
        ({"edges": ((-1, 0),)}, "out of range"),
        ({"edges": ((1, 1),)}, "joins a keypoint to itself"),
        ({"edges": ((0, 1, 2),)}, r"\(int, int\) pairs"),
        ({"flip_pairs": ((0, 5),)}, r"flip_pairs pair \(0, 5\) is out of range"),
        ({"flip_pairs": ((1, 2), (2, 0))}, "more than one flip pair"),
        ({"sigmas": (0.1, 0.2)}, "sigmas has 2 values but there are 3 keypoints"),
        ({"sigmas": (0.1, 0.0, 0.1)}, "finite and > 0"),
        ({"name": ""}, "non-empty string"),
    ],
)
def test_invalid_skeletons(kwargs, message):
    fields = {
        "name": "tiny",
        "keypoints": ("a", "b", "c"),
        "flip_pairs": ((1, 2),),
        "edges": ((0, 1), (0, 2)),
        "sigmas": (),
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Skeleton(**fields)
