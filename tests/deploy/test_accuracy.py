"""The accuracy gate's arithmetic: OKS similarity, keypoint errors, detection matching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtpose.deploy import accuracy
from rtpose.deploy.build import BuildOptions, parse_batch
from rtpose.geometry import oks
from rtpose.skeletons import COCO17


def test_oks_similarity_matches_the_coco_formula():
    ref = np.zeros((1, 17, 3))
    cand = ref.copy()
    cand[0, 0, 0] = 3.0  # nose off by 3 px, the rest exact
    area = np.array([400.0])
    sigmas = np.asarray(COCO17.sigmas)
    want = (16 + math.exp(-9.0 / (2 * 400.0 * (2 * sigmas[0]) ** 2))) / 17
    assert oks(ref, cand, area, sigmas)[0] == pytest.approx(want)
    assert oks(ref, ref, area, sigmas)[0] == 1.0


def test_compare_reports_errors_and_applies_the_threshold():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 100, (10, 17, 3))
    cand = ref.copy()
    cand[..., 0] += 1.0  # every keypoint 1 px off
    areas = np.full(10, 128 * 96.0)
    good = accuracy.compare(ref, cand, areas, skeleton="coco17", frames=5)
    assert good.error_mean_px == pytest.approx(1.0) and good.error_p95_px == pytest.approx(1.0)
    assert good.per_keypoint_mean_px == pytest.approx([1.0] * 17)
    assert 0.95 < good.oks_mean < 1.0 and good.passed
    cand[..., 1] += 15.0  # far off: fails
    bad = accuracy.compare(ref, cand, areas, skeleton="coco17", frames=5)
    assert not bad.passed and bad.oks_mean < 0.95
    assert "FAILED" in bad.summary() and "threshold 0.95" in bad.summary()
    strict = accuracy.compare(ref, ref, areas, skeleton="coco17", frames=5, min_oks=1.0)
    assert strict.passed and strict.oks_mean == 1.0


def test_missed_detections_count_as_zero_oks():
    ref = np.zeros((3, 17, 3))
    report = accuracy.compare(ref, ref, np.ones(3), skeleton="coco17", frames=1, missed=1)
    assert report.oks_mean == pytest.approx(0.75) and report.missed == 1 and not report.passed


def test_skeleton_without_sigmas_uses_the_mean_coco_sigma():
    ref = np.zeros((2, 16, 3))
    report = accuracy.compare(ref, ref, np.ones(2), skeleton="mpii16", frames=1)
    assert "mean COCO sigma" in report.sigmas and report.oks_mean == 1.0
    with pytest.raises(ValueError, match="min_oks"):
        accuracy.compare(ref, ref, np.ones(2), skeleton="mpii16", frames=1, min_oks=0)


def test_match_detections_is_greedy_one_to_one():
    ref = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [100, 100, 110, 110]], float)
    cand = np.array([[21, 21, 31, 31], [0, 0, 10, 11], [0, 0, 9, 10]], float)
    assert sorted(accuracy.match_detections(ref, cand)) == [(0, 1), (1, 0)]
    assert accuracy.match_detections(ref, np.zeros((0, 4))) == []


def test_top_down_keypoints_decode_into_input_pixels():
    from rtpose.models import get_model_info

    info = get_model_info("rsn18")
    codec = info.codec.build(info.input_size, info.heatmap_size)
    planted = np.array([[[(i % 10 + 5.5) * 4, (i + 10.5) * 4] for i in range(17)]] * 3)
    maps = codec.encode(planted).heatmaps[-1]  # (3, 17, 64, 48), the decode kernel's level
    got = accuracy.top_down_keypoints(lambda x: maps[: len(x)], np.zeros((3, 3, 256, 192)), codec)
    np.testing.assert_allclose(got[..., :2], planted, atol=1e-4)


def test_batch_profiles_and_options():
    assert parse_batch("1:8:32") == (1, 8, 32) and parse_batch("4") == (4, 4, 4)
    for bad in ("1:8", "a:b:c", ""):
        with pytest.raises(ValueError, match="MIN:OPT:MAX"):
            parse_batch(bad)
    with pytest.raises(ValueError, match="1 <= MIN <= OPT <= MAX"):
        BuildOptions(batch=(8, 1, 32))
    with pytest.raises(ValueError, match="precision"):
        BuildOptions(precision="int4")
    with pytest.raises(ValueError, match="min_oks"):
        BuildOptions(min_oks=1.5)
