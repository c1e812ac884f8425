"""Keypoint sets: names, left/right flip pairs, limb edges and OKS sigmas.

Two sets ship with rtpose:

- ``COCO17``: the 17 keypoints of COCO (Lin et al., "Microsoft COCO: Common Objects in Context",
  ECCV 2014), with the per-keypoint OKS sigmas of the official COCO keypoint evaluation.
- ``MPII16``: the 16 joints of MPII Human Pose (Andriluka et al., "2D Human Pose Estimation: New
  Benchmark and State of the Art Analysis", CVPR 2014). MPII is evaluated with PCKh (distances
  normalised by head size), which has no per-keypoint sigma, so its ``sigmas`` is empty.

All indices are 0-based.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Skeleton:
    """A keypoint set.

    Args:
        name: short identifier, e.g. ``"coco17"``.
        keypoints: keypoint names, in the order models output them.
        flip_pairs: ``(i, j)`` index pairs that swap under a horizontal flip (left <-> right).
        edges: ``(i, j)`` index pairs joined by a limb when drawing.
        sigmas: per-keypoint OKS sigmas (same length as ``keypoints``), or empty when the dataset
            is not evaluated with OKS (e.g. MPII, which uses PCKh).
    """

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    edges: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Skeleton name must be a non-empty string, got {self.name!r}")
        # Store tuples so that a Skeleton is hashable and cannot change behind the caller's back;
        # the caller's own sequences are not touched.
        object.__setattr__(self, "keypoints", tuple(self.keypoints))
        object.__setattr__(self, "flip_pairs", tuple(tuple(p) for p in self.flip_pairs))
        object.__setattr__(self, "edges", tuple(tuple(e) for e in self.edges))
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))

        k = len(self.keypoints)
        if k == 0:
            raise ValueError(f"Skeleton {self.name!r}: keypoints must not be empty")
        if not all(isinstance(n, str) and n for n in self.keypoints):
            raise ValueError(f"Skeleton {self.name!r}: keypoint names must be non-empty strings")
        duplicates = sorted({n for n in self.keypoints if self.keypoints.count(n) > 1})
        if duplicates:
            raise ValueError(f"Skeleton {self.name!r}: duplicate keypoint names {duplicates}")

        self._check_pairs("flip_pairs", self.flip_pairs, k)
        self._check_pairs("edges", self.edges, k)
        flipped = [i for pair in self.flip_pairs for i in pair]
        if len(flipped) != len(set(flipped)):
            raise ValueError(
                f"Skeleton {self.name!r}: a keypoint appears in more than one flip pair "
                f"({self.flip_pairs}); each keypoint has at most one mirror partner"
            )

        if self.sigmas:
            if len(self.sigmas) != k:
                raise ValueError(
                    f"Skeleton {self.name!r}: sigmas has {len(self.sigmas)} values but there are "
                    f"{k} keypoints; give one sigma per keypoint, or an empty tuple for none"
                )
            bad = [s for s in self.sigmas if not (math.isfinite(s) and s > 0)]
            if bad:
                raise ValueError(
                    f"Skeleton {self.name!r}: sigmas must be finite and > 0, got {bad}"
                )

    def _check_pairs(self, field: str, pairs: tuple[tuple[int, ...], ...], k: int) -> None:
        for pair in pairs:
            if len(pair) != 2 or not all(isinstance(i, int) for i in pair):
                raise ValueError(
                    f"Skeleton {self.name!r}: {field} entries must be (int, int) pairs, "
                    f"got {pair!r}"
                )
            i, j = pair
            if not (0 <= i < k and 0 <= j < k):
                raise ValueError(
                    f"Skeleton {self.name!r}: {field} pair {pair} is out of range for "
                    f"{k} keypoints (valid indices 0..{k - 1})"
                )
            if i == j:
                raise ValueError(
                    f"Skeleton {self.name!r}: {field} pair {pair} joins a keypoint to itself"
                )

    @property
    def num_keypoints(self) -> int:
        """Number of keypoints K."""
        return len(self.keypoints)

    @property
    def flip_index(self) -> tuple[int, ...]:
        """Permutation that mirrors keypoints: ``flipped = keypoints[list(flip_index)]``.

        ``flip_index[i]`` is the mirror partner of keypoint ``i`` (``i`` itself for centre-line
        keypoints such as the nose).
        """
        index = list(range(self.num_keypoints))
        for i, j in self.flip_pairs:
            index[i], index[j] = j, i
        return tuple(index)


COCO17 = Skeleton(
    name="coco17",
    keypoints=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # The 19 limbs of the COCO annotation file's "skeleton" field, converted to 0-based indices.
    edges=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
    # Official COCO keypoint evaluation sigmas (pycocotools COCOeval.kpt_oks_sigmas).
    sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
)

MPII16 = Skeleton(
    name="mpii16",
    keypoints=(
        "r_ankle",
        "r_knee",
        "r_hip",
        "l_hip",
        "l_knee",
        "l_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "r_wrist",
        "r_elbow",
        "r_shoulder",
        "l_shoulder",
        "l_elbow",
        "l_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    # Legs to pelvis, spine to head top, arms hung from the upper neck (as MMPose draws MPII).
    edges=(
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (8, 12),
        (12, 11),
        (11, 10),
        (8, 13),
        (13, 14),
        (14, 15),
    ),
    # MPII is scored with PCKh, not OKS: there are no per-keypoint sigmas.
    sigmas=(),
)

_SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO17, MPII16)}


def get_skeleton(name: str) -> Skeleton:
    """Return the keypoint set called ``name`` (case-insensitive), e.g. ``"coco17"``.

    Raises:
        ValueError: ``name`` is not a known keypoint set; the message lists the known names.
    """
    skeleton = _SKELETONS.get(name.lower()) if isinstance(name, str) else None
    if skeleton is None:
        raise ValueError(
            f"unknown keypoint set {name!r}; known keypoint sets: {', '.join(sorted(_SKELETONS))}"
        )
    return skeleton
