"""The accuracy gate of ``rtpose-build``: keypoints of a reduced-precision network vs FP32.

Both networks see the same real frames through the model's own preprocessing; their outputs are
decoded into keypoints in network-input pixels (top-down: heatmap decoding with the model's codec
on the same person crops; YOLO-pose: detections matched by IoU, their keypoints compared). Reported:

- per-keypoint error (mean and p95, network-input pixels), per keypoint type and over all;
- mean OKS similarity between candidate and reference instances, COCO's
  ``exp(-d^2 / (2 * area * (2 * sigma)^2))`` averaged over the keypoints, with the reference
  instance's area (top-down: the person box inside the crop, ``H * W / padding^2``; YOLO: the
  reference box). Skeletons without OKS sigmas (MPII) use the mean of COCO's 17 sigmas (stated
  in the report). A reference detection the candidate misses counts as OKS 0.

The gate passes when the mean OKS similarity is at least the threshold (default 0.95).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from rtpose.geometry import box_area, box_iou, oks
from rtpose.skeletons import COCO17, get_skeleton

DEFAULT_MIN_OKS = 0.95
MEAN_COCO_SIGMA = float(np.mean(COCO17.sigmas))


@dataclass(frozen=True)
class AccuracyReport:
    """Candidate vs FP32 reference on the same frames (keypoint errors in network-input px)."""

    reference: str
    candidate: str
    frames: int
    instances: int  # reference instances compared
    missed: int  # reference instances the candidate did not find (YOLO only)
    error_mean_px: float
    error_p95_px: float
    oks_mean: float
    min_oks: float
    passed: bool
    sigmas: str  # where the OKS sigmas came from
    per_keypoint_mean_px: list[float] = field(default_factory=list)
    per_keypoint_p95_px: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"{self.candidate} vs {self.reference}: mean OKS {self.oks_mean:.4f} "
            f"({verdict}, threshold {self.min_oks}), keypoint error mean {self.error_mean_px:.3f} "
            f"px, p95 {self.error_p95_px:.3f} px over {self.instances} instances "
            f"({self.frames} frames" + (f", {self.missed} missed" if self.missed else "") + ")"
        )


def compare(
    reference: np.ndarray,
    candidate: np.ndarray,
    areas: np.ndarray,
    *,
    skeleton: str,
    frames: int,
    missed: int = 0,
    min_oks: float = DEFAULT_MIN_OKS,
    names: tuple[str, str] = ("fp32", "candidate"),
) -> AccuracyReport:
    """Report for M matched instances, (M, K, >=2) keypoints each; ``missed`` reference
    instances had no candidate match (OKS 0)."""
    if not 0.0 < min_oks <= 1.0:
        raise ValueError(f"min_oks must be in (0, 1], got {min_oks}")
    sk = get_skeleton(skeleton)
    if sk.sigmas:
        sigmas, source = np.asarray(sk.sigmas), f"{sk.name} OKS sigmas"
    else:
        sigmas = np.full(sk.num_keypoints, MEAN_COCO_SIGMA)
        source = f"{sk.name} has no OKS sigmas: mean COCO sigma {MEAN_COCO_SIGMA:.4f}"
    m = len(reference)
    if m:
        err = np.sqrt(((reference[..., :2] - candidate[..., :2]) ** 2).sum(-1))  # (M, K)
        err = np.where(np.isfinite(err), err, np.inf)
        sims = np.concatenate([oks(reference, candidate, areas, sigmas), np.zeros(missed)])
        per_mean = [float(v) for v in err.mean(0)]
        per_p95 = [float(v) for v in np.percentile(err, 95, axis=0)]
        mean, p95 = float(err.mean()), float(np.percentile(err, 95))
        oks_mean = float(np.nan_to_num(sims, nan=0.0).mean())
    else:
        per_mean, per_p95, mean, p95 = [], [], 0.0, 0.0
        oks_mean = 1.0 if missed == 0 else 0.0
    return AccuracyReport(
        reference=names[0], candidate=names[1], frames=frames, instances=m, missed=missed,
        error_mean_px=mean, error_p95_px=p95, oks_mean=oks_mean, min_oks=min_oks,
        passed=oks_mean >= min_oks, sigmas=source, per_keypoint_mean_px=per_mean,
        per_keypoint_p95_px=per_p95,
    )  # fmt: skip


# --- keypoints from each kind of network ------------------------------------------------------


def top_down_keypoints(
    run: Callable[[np.ndarray], np.ndarray], crops: np.ndarray, codec, *, batch: int = 8
) -> np.ndarray:
    """(N, K, 3) keypoints in crop-input pixels from a heatmap network on (N, 3, H, W) crops."""
    from rtpose.ops import decode_heatmaps

    spec = codec.decode_spec
    sx, sy = spec.scale(codec.input_size, codec.heatmap_size)
    transform = np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0]])
    parts = [
        decode_heatmaps(
            np.ascontiguousarray(run(crops[i : i + batch]), dtype=np.float32),
            transform,
            mode=spec.mode,
            blur_kernel=spec.blur_kernel,
        )
        for i in range(0, len(crops), batch)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, 0, 3), np.float32)


def match_detections(
    ref_boxes: np.ndarray, cand_boxes: np.ndarray, *, iou: float = 0.5
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of (M, 4) and (P, 4) xyxy boxes, highest IoU first."""
    if len(ref_boxes) == 0 or len(cand_boxes) == 0:
        return []
    ious = box_iou(ref_boxes, cand_boxes)
    pairs = []
    order = np.dstack(np.unravel_index(np.argsort(-ious, axis=None), ious.shape))[0]
    used_r, used_c = set(), set()
    for r, c in order:
        if ious[r, c] < iou:
            break
        if r in used_r or c in used_c:
            continue
        pairs.append((int(r), int(c)))
        used_r.add(r)
        used_c.add(c)
    return pairs


def yolo_instances(
    ref_preds: Sequence[np.ndarray], cand_preds: Sequence[np.ndarray], *, conf: float = 0.25
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Matched (M, K, 3) reference / candidate keypoints, (M,) reference box areas, and the
    number of reference detections without a match, from per-image YOLO-pose outputs."""
    from rtpose.codecs.yolo import decode_yolo_pose

    refs, cands, areas, missed = [], [], [], 0
    for rp, cp in zip(ref_preds, cand_preds):
        r = decode_yolo_pose(np.asarray(rp, np.float32), conf_threshold=conf)[0]
        c = decode_yolo_pose(np.asarray(cp, np.float32), conf_threshold=conf)[0]
        pairs = match_detections(r.boxes, c.boxes)
        missed += len(r.boxes) - len(pairs)
        for i, j in pairs:
            refs.append(r.keypoints[i])
            cands.append(c.keypoints[j])
            areas.append(box_area(r.boxes[i]))
    k = 17
    stack = lambda xs: np.stack(xs) if xs else np.zeros((0, k, 3))  # noqa: E731
    return stack(refs), stack(cands), np.asarray(areas, np.float64), missed
