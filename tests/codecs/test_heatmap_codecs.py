"""Heatmap codecs: targets, round trips, and decode == rtpose.ops.decode_heatmaps."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from rtpose.codecs import (
    DecodeSpec,
    MegviiHeatmap,
    MSRAHeatmap,
    UDPHeatmap,
    dark_blur_kernel,
    dark_heatmap,
    megvii_targets_for_stages,
)
from rtpose.ops import decode_heatmaps, decode_heatmaps_reference

INPUT, HEATMAP, STRIDE = (64, 48), (16, 12), 4.0  # (h, w): heatmap px * 4 = input px


def _codecs():
    return {
        "msra": MSRAHeatmap(INPUT, HEATMAP),
        "dark": dark_heatmap(INPUT, HEATMAP),
        "megvii": MegviiHeatmap(INPUT, HEATMAP),
        "udp": UDPHeatmap(INPUT, HEATMAP),
    }


def _grid(xs, ys):
    """All (x, y) pairs as (1, len(xs) * len(ys), 2)."""
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=-1)[None]


def _random_keypoints(rng, n, k, lo, hi):
    """(n, k, 2) input-pixel keypoints with heatmap coordinates in [lo, hi] (per axis, (h, w))."""
    u = rng.uniform(0, 1, (n, k, 2))
    lo_xy, hi_xy = np.array(lo[::-1], float), np.array(hi[::-1], float)
    return (lo_xy + u * (hi_xy - lo_xy)) * STRIDE


# --- round trips ---------------------------------------------------------------------------------


def test_msra_biased_round_trip_on_the_grid_is_exact():
    # Every pixel of the map, borders included: the target is symmetric about mu, so the quarter
    # offset is 0 where it applies.
    codec = MSRAHeatmap(INPUT, HEATMAP)
    kp = _grid(np.arange(12) * STRIDE, np.arange(16) * STRIDE)
    target = codec.encode(kp)
    out, scores = codec.decode(target.heatmaps)
    np.testing.assert_array_equal(out, kp.astype(np.float32))
    np.testing.assert_array_equal(scores, 1.0)
    assert target.weights.all()


@pytest.mark.parametrize("level", range(4))
def test_megvii_round_trip_on_the_grid_is_exact(level):
    # Keypoints at pixel centres (i + 0.5) * stride. The decode reads the target at i +- 3 (the
    # neighbours of the peak through the radius-2 blur); the reflect-101 border of
    # cv2.GaussianBlur(k) adds mirror images at -i and 2 (w - 1) - i, which reach those pixels when
    # 2 i - 3 <= k // 2. Beyond that the target is symmetric, the quarter offset is 0 and +0.5
    # restores the centre exactly. (Nearer the border the error stays < 0.75 px, tested below for
    # the decoded final level; a wide target level can even move the blurred peak off the edge.)
    codec = MegviiHeatmap((128, 96), (32, 24))
    m = (codec.kernel_sizes[level] // 2 + 3) // 2 + 1
    kp = _grid((np.arange(m, 24 - m) + 0.5) * STRIDE, (np.arange(m, 32 - m) + 0.5) * STRIDE)
    out, scores = codec.decode(codec.encode(kp).heatmaps[level])
    np.testing.assert_array_equal(out, kp.astype(np.float32))
    np.testing.assert_array_equal(scores, np.float32(255 / 255 + 0.5))


def test_udp_combined_round_trip_is_exact_to_rounding():
    # The offsets store c - p exactly (float32), so argmax + offset * radius gives c back.
    codec = UDPHeatmap(INPUT, HEATMAP, heatmap_type="combined")
    rng = np.random.default_rng(3)
    kp = rng.uniform(0, 1, (2, 6, 2)) * np.array([INPUT[1] - 1, INPUT[0] - 1])
    target = codec.encode(kp)
    assert target.heatmaps.shape == (2, 18, 16, 12)
    out, scores = codec.decode(target.heatmaps)
    np.testing.assert_allclose(out, kp, atol=1e-4)  # float32 offsets times radius ~0.66
    assert (scores > 0).all()


@pytest.mark.parametrize("seed", range(3))
def test_random_sub_pixel_round_trip_bounds(seed):
    rng = np.random.default_rng(seed)
    codecs = _codecs()
    # MSRA, c anywhere in [0, size - 1]: mu = round(c) is a map pixel and the target is symmetric
    # about it, so the quarter offset is 0 and the error is the rounding, <= 0.5 heatmap px.
    # (Beyond size - 1/2, mu falls off the map and the tail's edge pixel wins: up to 1 px.)
    kp = _random_keypoints(rng, 4, 17, (0, 0), (15, 11))
    out, _ = codecs["msra"].decode(codecs["msra"].encode(kp).heatmaps)
    assert np.abs(out - kp).max() <= 0.5 * STRIDE + 1e-5
    # Megvii, c anywhere in [0, size): truncation puts c in [i, i + 1), the decode gives
    # i + 0.5 + q with q in {0, +-0.25} (q != 0 only near the border where the reflect-101 target
    # is lopsided): error < 0.5 + 0.25 heatmap px.
    kp = _random_keypoints(rng, 4, 17, (0, 0), (15.99, 11.99))
    megvii = codecs["megvii"]
    out, _ = megvii.decode(megvii.encode(kp).heatmaps[-1])
    assert np.abs(out - kp).max() < 0.75 * STRIDE
    # ... and inside (>= 3 px from the border for the final kernel 5) q = 0: error <= 0.5 px.
    inner = _random_keypoints(rng, 4, 17, (3, 3), (12.99, 8.99))
    out, _ = megvii.decode(megvii.encode(inner).heatmaps[-1])
    assert np.abs(out - inner).max() <= 0.5 * STRIDE + 1e-5
    # DARK / UDP: the log of a blurred Gaussian is nearly quadratic, one Newton step lands within
    # 0.05 heatmap px (measured ~0.01) when the peak is >= 4 px (2 sigma) from the border, where the
    # zero padding of the blur does not bend the log.
    inner = _random_keypoints(rng, 4, 17, (4, 4), (11, 7))
    for name in ("dark", "udp"):
        codec = codecs[name]
        sx, sy = codec.decode_spec.scale(INPUT, HEATMAP)
        kp_udp = inner / STRIDE * np.array([sx, sy])  # same heatmap positions for UDP's scale
        out, _ = codec.decode(codec.encode(kp_udp).heatmaps)
        assert np.abs(out - kp_udp).max() < 0.05 * max(sx, sy), name


# --- known target values -------------------------------------------------------------------------


def test_msra_target_is_a_13x13_window_with_peak_1_at_the_rounded_centre():
    codec = MSRAHeatmap((128, 128), (32, 32), sigma=2.0)
    kp = np.array([[[13.6 * 4, 17.4 * 4]]])  # centre (13.6, 17.4) -> mu = (14, 17)
    hm = codec.encode(kp).heatmaps[0, 0]
    ys, xs = np.nonzero(hm)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (8, 20, 11, 23)
    assert hm[17, 14] == 1.0 and hm.max() == 1.0
    yy, xx = np.mgrid[11:24, 8:21]
    np.testing.assert_allclose(hm[11:24, 8:21], np.exp(-((xx - 14) ** 2 + (yy - 17) ** 2) / 8.0))


def test_dark_target_is_the_unwindowed_sub_pixel_gaussian():
    codec = dark_heatmap((64, 64), (16, 16))
    hm = codec.encode(np.array([[[5.3 * 4, 7.8 * 4]]])).heatmaps[0, 0]
    yy, xx = np.mgrid[:16, :16]
    expected = np.exp(-((xx - 5.3) ** 2 + (yy - 7.8) ** 2) / 8.0)
    np.testing.assert_allclose(hm, expected, rtol=1e-6, atol=1e-30)
    assert hm.min() > 0  # no window


def test_udp_gaussian_target_is_windowed_at_the_exact_centre():
    codec = UDPHeatmap((64, 64), (16, 16))  # scale 63 / 15 = 4.2
    hm = codec.encode(np.array([[[7.3 * 4.2, 8.6 * 4.2]]])).heatmaps[0, 0]
    ys, xs = np.nonzero(hm)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (1, 13, 3, 15)  # around mu = (7, 9)
    yy, xx = np.mgrid[3:16, 1:14]
    expected = np.exp(-((xx - 7.3) ** 2 + (yy - 8.6) ** 2) / 8.0)
    np.testing.assert_allclose(hm[3:16, 1:14], expected, rtol=1e-5)


def test_megvii_target_is_the_normalised_cv2_blur_of_the_one_hot():
    codec = MegviiHeatmap(INPUT, HEATMAP, kernel_sizes=(15, 5))
    kp = np.array([[[5.9 * 4, 0.2 * 4], [11.99 * 4, 15.5 * 4]]])  # truncated: (5, 0) and (11, 15)
    target = codec.encode(kp)
    assert target.heatmaps.shape == (2, 1, 2, 16, 12)
    for level, k in enumerate((15, 5)):
        for j, (cx, cy) in enumerate([(5, 0), (11, 15)]):
            one_hot = np.zeros((16, 12), np.float32)
            one_hot[cy, cx] = 1
            blurred = cv2.GaussianBlur(one_hot, (k, k), 0)
            hm = target.heatmaps[level, 0, j]
            assert hm[cy, cx] == 255.0 and hm.max() == 255.0
            np.testing.assert_allclose(hm, blurred / blurred[cy, cx] * 255, rtol=1e-6)


def test_out_of_map_and_invisible_keypoints_get_weight_0_and_zero_maps():
    kp = np.array([[[20.0, 20.0], [-60.0, 20.0], [20.0, 500.0], [20.0, 24.0]]])
    visible = np.array([[1, 1, 1, 0]])
    for codec in [*_codecs().values(), UDPHeatmap(INPUT, HEATMAP, heatmap_type="combined")]:
        target = codec.encode(kp, visible)
        np.testing.assert_array_equal(target.weights, [[1, 0, 0, 0]])
        maps = target.heatmaps.reshape(*target.heatmaps.shape[:-3], 4, -1)  # (..., K, C * h * w)
        assert maps[..., 0, :].any() and not maps[..., 1:, :].any(), type(codec).__name__


def test_msra_keeps_mmposes_out_of_map_test():
    codec = MSRAHeatmap(INPUT, HEATMAP)  # radius 6
    # mu = int(c + 0.5) truncates towards zero: c = -6.5 -> mu = -6, window [-12, 0] reaches
    # column 0 (weight 1); c = -7.5 -> mu = -7, right = 0: the window ends at the edge, MMPose
    # keeps weight 1 with an empty map; c = -8.5 -> mu = -8, right < 0 -> weight 0.
    kp = np.array([[[-6.5 * 4, 20.0], [-7.5 * 4, 20.0], [-8.5 * 4, 20.0]]])
    target = codec.encode(kp)
    np.testing.assert_array_equal(target.weights, [[1, 1, 0]])
    assert target.heatmaps[0, 0, :, 0].any() and not target.heatmaps[0, 0, :, 1:].any()
    assert not target.heatmaps[0, 1:].any()


def test_megvii_truncates_towards_zero_like_mmpose():
    codec = MegviiHeatmap(INPUT, HEATMAP, kernel_sizes=(5,))
    target = codec.encode(np.array([[[-0.5, 10.0], [-4.0, 10.0]]]))  # cells -0.125 -> 0, -1
    np.testing.assert_array_equal(target.weights, [[1, 0]])
    assert target.heatmaps[0, 0, 0, 2, 0] == 255.0


def test_encode_does_not_modify_its_arguments():
    kp = np.array([[[10.0, 12.0]]])
    vis = np.array([[1.0]])
    for codec in _codecs().values():
        codec.encode(kp, vis)
    assert kp.tolist() == [[[10.0, 12.0]]] and vis.tolist() == [[1.0]]


# --- decode == rtpose.ops.decode_heatmaps ---------------------------------------------------------


def _test_maps(codec, rng):
    """(3, 17, h, w) float32: random noise, noisy encoded targets, and edge cases."""
    h, w = codec.heatmap_size
    noise = rng.uniform(-0.1, 1.0, (1, 17, h, w)).astype(np.float32)
    kp = _random_keypoints(rng, 1, 17, (0, 0), (15.9, 11.9))
    target = codec.encode(kp).heatmaps
    target = target[-1] if target.ndim == 5 else target
    noisy = (target + rng.normal(0, 0.02 * target.max(), target.shape)).astype(np.float32)
    special = rng.uniform(0, 1, (1, 17, h, w)).astype(np.float32)
    special[0, 0] = 0  # flat: pixel 0
    special[0, 1] = np.nan  # all NaN
    special[0, 2, 3, 4] = np.nan  # one NaN
    special[0, 3, :, :] = special[0, 3, :, ::-1]
    special[0, 4] = 1e-12  # below DARK's log clamp
    special[0, 5, 7, 6] = 50  # a spike
    special[0, 6, 0, 11] = 50  # peaks on the border
    special[0, 7, 15, 0] = 50
    return np.concatenate([noise, target, noisy, special])


def test_quarter_oracle_follows_mmpose_on_every_border_row_and_column():
    from mmpose_rules import border_peaks, mmpose_quarter

    from rtpose.codecs.heatmap import decode_quarter

    hm, _ = border_peaks(6, 7, seed=1)
    x, y, _value = decode_quarter(hm[0])
    want = np.array([mmpose_quarter(m) for m in hm[0]])
    np.testing.assert_array_equal(np.stack([x, y], 1), want)


@pytest.mark.parametrize("name", ["msra", "dark", "megvii", "udp"])
def test_decode_equals_ops_decode_heatmaps(name):
    codec = _codecs()[name]
    maps = _test_maps(codec, np.random.default_rng(7))
    out, scores = codec.decode(maps)
    spec = codec.decode_spec
    sx, sy = spec.scale(INPUT, HEATMAP)
    # The pipeline's call: input_size=None and the (identity) transform times diag(sx, sy).
    transform = np.array([[sx, 0, 0], [0, sy, 0]])
    for decode in (decode_heatmaps, decode_heatmaps_reference):
        ref = decode(maps, transform, mode=spec.mode, blur_kernel=spec.blur_kernel)
        np.testing.assert_array_equal(out, ref[..., :2])  # bitwise, NaN rows included
        np.testing.assert_array_equal(scores, ref[..., 2])
    if not spec.udp_scale:  # the same through input_size
        ref = decode_heatmaps(maps, mode=spec.mode, blur_kernel=spec.blur_kernel, input_size=INPUT)
        np.testing.assert_array_equal(out, ref[..., :2])
    assert np.isnan(out[3, 1]).all() and np.isnan(scores[3, 1])


def test_decode_specs():
    codecs = _codecs()
    assert codecs["msra"].decode_spec == DecodeSpec("quarter", None, flip_shift=True)
    assert codecs["dark"].decode_spec == DecodeSpec("dark", 11, flip_shift=True)
    assert codecs["megvii"].decode_spec == DecodeSpec("megvii", 5, flip_shift=False)
    assert codecs["udp"].decode_spec == DecodeSpec("dark", 11, flip_shift=False, udp_scale=True)
    assert codecs["msra"].decode_spec.scale((256, 192), (64, 48)) == (4.0, 4.0)
    assert codecs["udp"].decode_spec.scale((256, 192), (64, 48)) == (191 / 47, 255 / 63)
    with pytest.raises(NotImplementedError, match="gaussian"):
        UDPHeatmap(INPUT, HEATMAP, heatmap_type="combined").decode_spec  # noqa: B018


def test_dark_blur_kernel_follows_opencvs_sigma_rule():
    assert [dark_blur_kernel(s) for s in (1.0, 2.0, 3.0)] == [5, 11, 17]
    assert dark_heatmap(INPUT, HEATMAP, sigma=3.0).blur_kernel == 17
    with pytest.raises(ValueError, match="sigma"):
        dark_blur_kernel(6.0)


# --- Megvii levels --------------------------------------------------------------------------------


def test_megvii_targets_for_stages():
    assert megvii_targets_for_stages(1) == (11, 9, 7, 5)
    assert megvii_targets_for_stages(2) == (15, 11, 9, 7, 11, 9, 7, 5)
    assert megvii_targets_for_stages(3)[:8] == (15, 11, 9, 7) * 2
    with pytest.raises(ValueError, match="num_stages"):
        megvii_targets_for_stages(0)


def test_megvii_levels_follow_kernel_sizes():
    kernels = megvii_targets_for_stages(2)
    kp = np.array([[[13.0, 21.0], [30.0, 50.0]]])
    multi = MegviiHeatmap(INPUT, HEATMAP, kernel_sizes=kernels).encode(kp)
    assert multi.heatmaps.shape == (8, 1, 2, 16, 12)
    for level, k in enumerate(kernels):
        single = MegviiHeatmap(INPUT, HEATMAP, kernel_sizes=(k,)).encode(kp)
        np.testing.assert_array_equal(multi.heatmaps[level], single.heatmaps[0])
    # wider kernel, flatter target
    assert (multi.heatmaps[0].sum() > multi.heatmaps[3].sum()) and multi.heatmaps[4].sum() > 0


# --- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: MSRAHeatmap(INPUT, HEATMAP, sigma=0), "sigma"),
        (lambda: MSRAHeatmap(INPUT, HEATMAP, sigma=-1.0), "sigma"),
        (lambda: MSRAHeatmap(INPUT, HEATMAP, blur_kernel=10), "blur_kernel"),
        (lambda: MSRAHeatmap(INPUT, HEATMAP, blur_kernel=33), "blur_kernel"),
        (lambda: MSRAHeatmap(INPUT, (128, 12)), "heatmap_size"),
        (lambda: MSRAHeatmap((64,), HEATMAP), "input_size"),
        (lambda: MSRAHeatmap(INPUT, (0, 12)), "heatmap_size"),
        (lambda: MegviiHeatmap(INPUT, HEATMAP, kernel_sizes=(11, 8)), "kernel_sizes"),
        (lambda: MegviiHeatmap(INPUT, HEATMAP, kernel_sizes=()), "kernel_sizes"),
        (lambda: MegviiHeatmap(INPUT, HEATMAP, decode_kernel=4), "decode_kernel"),
        (lambda: UDPHeatmap(INPUT, HEATMAP, heatmap_type="offset"), "heatmap_type"),
        (lambda: UDPHeatmap(INPUT, HEATMAP, radius_factor=0), "radius_factor"),
        (lambda: UDPHeatmap(INPUT, (1, 12)), "heatmap_size"),
    ],
)
def test_bad_constructor_arguments_name_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


@pytest.mark.parametrize("name", ["msra", "megvii", "udp"])
def test_bad_array_shapes_name_the_argument(name):
    codec = _codecs()[name]
    with pytest.raises(ValueError, match="keypoints"):
        codec.encode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="keypoints"):
        codec.encode(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="visible"):
        codec.encode(np.zeros((1, 2, 2)), np.ones((1, 3)))
    with pytest.raises(ValueError, match="heatmaps"):
        codec.decode(np.zeros((1, 2, 16, 13), np.float32))  # not the codec's size
    with pytest.raises(ValueError, match="heatmaps"):
        codec.decode(np.zeros((2, 16, 12), np.float32))
    with pytest.raises(ValueError, match="heatmaps"):
        codec.decode(np.zeros((1, 2, 16, 12), np.int32))


def test_codecs_are_frozen_and_normalise_sizes():
    codec = MSRAHeatmap([64, 48], [16, 12], sigma=2)
    assert codec.input_size == (64, 48) and codec.heatmap_size == (16, 12)
    assert codec == MSRAHeatmap(INPUT, HEATMAP)
    with pytest.raises(AttributeError):
        codec.sigma = 3.0  # type: ignore[misc]


def test_import_codecs_needs_neither_cv2_nor_torch():
    code = "import sys, rtpose.codecs; print([m for m in ('cv2', 'torch') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
