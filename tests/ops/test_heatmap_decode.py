"""rtpose.ops.heatmap_decode: the C++ kernel, the numpy reference and the CUDA kernel held to each
other, and the decoders held to synthetic targets with known keypoints.

Tolerances:
- Peak positions (mode="argmax") and scores: exact between implementations (same argmax rule,
  scores are copied values or the same float64 expression).
- Coordinates: 1e-5 absolute plus 1e-6 relative. The three implementations run the same float32
  blur and float64 steps in the same order (in practice they agree bit for bit), but DARK's float64
  log comes from different libraries (glibc, numpy's SIMD log, CUDA's log: each within an ulp or
  so), and a transform into a large image multiplies such a difference by the coordinate scale,
  hence the relative part.
- Accuracy on synthetic Gaussian targets (64x48, sigma 2, 200 sub-pixel positions 8 px inside):
  measured mean error argmax 0.40 px, quarter 0.19 px, dark 0.0002 px; asserted bounds 0.30
  (quarter) and 0.05 (dark).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from gpu_support import HostCudaArray, upload
from mmpose_rules import border_peaks, mmpose_quarter
from native_ext import require_native

from rtpose._native import NativeLoader
from rtpose.cuda import arrays
from rtpose.ops import heatmap_decode
from rtpose.ops.heatmap_decode import (
    decode_heatmaps,
    decode_heatmaps_reference,
    gaussian_kernel,
)

MODES = ("argmax", "quarter", "megvii", "dark")
CODES = {"argmax": 0, "quarter": 1, "megvii": 2, "dark": 3}
ATOL, RTOL = 1e-5, 1e-6  # see the module docstring


def _native_decode(heatmaps, transforms=None, **options):
    """decode_heatmaps through the C++ kernel (skips when rtpose._C is missing)."""
    require_native()
    return decode_heatmaps(heatmaps, transforms, **options)


@pytest.fixture(params=["native", "numpy"])
def decode(request):
    """Each CPU implementation, with decode_heatmaps_reference's signature."""
    if request.param == "native":
        return _native_decode
    return decode_heatmaps_reference


@pytest.fixture
def fallback(monkeypatch) -> None:
    """Makes rtpose._C unimportable for decode_heatmaps and resets the once-only warning."""
    monkeypatch.setattr(
        heatmap_decode,
        "_native",
        NativeLoader("decode_heatmaps", heatmap_decode.logger, force_missing=True),
    )


def _gaussians(centres: np.ndarray, h: int, w: int, sigma: float = 2.0) -> np.ndarray:
    """(M, 2) x, y centres -> (M, H, W) float32 unit-peak Gaussians (MSRA / DARK targets)."""
    ys, xs = np.mgrid[0:h, 0:w]
    d2 = (xs[None] - centres[:, 0, None, None]) ** 2 + (ys[None] - centres[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma * sigma)).astype(np.float32)


def _random_batch(rng, n=3, k=17, h=64, w=48) -> np.ndarray:
    """(N, K, H, W) float32: noisy Gaussian bumps (so every refinement has work to do), a few
    pure-noise maps and a map holding NaNs."""
    centres = np.stack([rng.uniform(-2, w + 1, n * k), rng.uniform(-2, h + 1, n * k)], axis=1)
    sigma = rng.uniform(1.0, 3.0)
    maps = _gaussians(centres, h, w, sigma) * rng.uniform(0.2, 1.0, (n * k, 1, 1))
    maps += rng.normal(0, 0.02, maps.shape).astype(np.float32)
    maps[::7] = rng.random((len(maps[::7]), h, w), dtype=np.float32)
    maps[len(maps) // 2, 10:20, 10:20] = np.nan
    return maps.reshape(n, k, h, w).astype(np.float32)


def _random_transforms(rng, n: int) -> np.ndarray:
    """(N, 2, 3) float64 crop-input -> image maps: scale, small rotation, large offsets."""
    t = np.zeros((n, 2, 3))
    angle = rng.uniform(-0.3, 0.3, n)
    scale = rng.uniform(0.5, 4.0, n)
    t[:, 0, 0] = t[:, 1, 1] = scale * np.cos(angle)
    t[:, 0, 1] = -scale * np.sin(angle)
    t[:, 1, 0] = scale * np.sin(angle)
    t[:, :, 2] = rng.uniform(-100, 2000, (n, 2))
    return t


def _assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Same NaN rows, same scores, coordinates within the tolerances of the module docstring."""
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(actual[..., 2], expected[..., 2])
    np.testing.assert_allclose(actual[..., :2], expected[..., :2], rtol=RTOL, atol=ATOL)


# --- C++ vs numpy -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("mode", MODES)
def test_native_matches_reference(mode, dtype):
    rng = np.random.default_rng([3, MODES.index(mode), dtype == np.float16])
    hm = _random_batch(rng).astype(dtype)
    t = _random_transforms(rng, len(hm))
    options = {"mode": mode, "input_size": (256, 192)}
    # Integer peaks first: exactly the same positions (modes refine from these, or from the
    # blurred map's peak for megvii, which the megvii comparison below covers).
    np.testing.assert_array_equal(
        _native_decode(hm, mode="argmax"), decode_heatmaps_reference(hm, mode="argmax")
    )
    _assert_same(_native_decode(hm, t, **options), decode_heatmaps_reference(hm, t, **options))
    if mode in ("megvii", "dark"):
        for k in (1, 3, 7, 13):
            options["blur_kernel"] = k
            _assert_same(
                _native_decode(hm, t, **options), decode_heatmaps_reference(hm, t, **options)
            )


def test_native_matches_reference_every_blur_kernel():
    """Every kernel size: the C++ weights and blur order are the numpy ones."""
    rng = np.random.default_rng(4)
    hm = _random_batch(rng, n=1, k=8, h=40, w=36)
    for k in range(1, 32, 2):
        for mode in ("megvii", "dark"):
            _assert_same(
                _native_decode(hm, mode=mode, blur_kernel=k),
                decode_heatmaps_reference(hm, mode=mode, blur_kernel=k),
            )


def test_gaussian_kernel_equals_cv2():
    for k in range(1, 32, 2):
        expected = cv2.getGaussianKernel(k, 0).ravel().astype(np.float32)
        actual = gaussian_kernel(k)
        assert actual.dtype == np.float32 and actual.shape == (k,)
        np.testing.assert_array_equal(actual, expected, err_msg=f"size {k}")
        np.testing.assert_array_equal(actual, actual[::-1])  # the symmetric blur relies on it


@pytest.mark.parametrize("size", [0, 2, 33, 4.0])
def test_gaussian_kernel_rejects_bad_sizes(size):
    with pytest.raises((TypeError, ValueError), match="gaussian_kernel: size"):
        gaussian_kernel(size)


# --- accuracy on synthetic targets --------------------------------------------------------------


def _msra_targets(seed: int = 7, count: int = 200, h: int = 64, w: int = 48):
    rng = np.random.default_rng(seed)
    centres = np.stack([rng.uniform(8, w - 9, count), rng.uniform(8, h - 9, count)], axis=1)
    return centres, _gaussians(centres, h, w)[None]  # (1, count, H, W)


def _mean_error(decode, mode: str) -> float:
    centres, hm = _msra_targets()
    keypoints = decode(hm, mode=mode)[0]
    return float(np.linalg.norm(keypoints[:, :2] - centres, axis=1).mean())


def test_accuracy_on_gaussian_targets(decode):
    argmax = _mean_error(decode, "argmax")  # measured 0.40
    quarter = _mean_error(decode, "quarter")  # measured 0.19
    dark = _mean_error(decode, "dark")  # measured 0.0002
    assert quarter <= 0.30
    assert dark <= 0.05
    assert argmax > quarter > dark  # sanity: each refinement helps


def test_scores_are_peak_values(decode):
    hm = _msra_targets(count=20)[1] * 0.7
    for mode in ("argmax", "quarter", "dark"):
        np.testing.assert_array_equal(decode(hm, mode=mode)[0, :, 2], hm[0].max(axis=(1, 2)))


def _megvii_targets(k: int, h: int = 64, w: int = 48):
    """MSPN / RSN training targets: one-hot at an integer pixel, cv2.GaussianBlur((k, k), 0), peak
    scaled to 255. Returns (M, 2) pixels and (1, M, H, W) maps for every pixel 2 px inside."""
    pixels, maps = [], []
    for y in range(2, h - 2, 3):
        for x in range(2, w - 2, 3):
            t = np.zeros((h, w), np.float32)
            t[y, x] = 1.0
            t = cv2.GaussianBlur(t, (k, k), 0)
            pixels.append((x, y))
            maps.append(t / t.max() * 255)
    return np.array(pixels), np.stack(maps)[None]


@pytest.mark.parametrize("k", [5, 9])
def test_megvii_targets_decode_to_pixel_centre(decode, k):
    pixels, hm = _megvii_targets(k)
    keypoints = decode(hm, mode="megvii", blur_kernel=k)[0]
    np.testing.assert_array_equal(keypoints[:, 2], 1.5)  # 255 / 255 + 0.5
    error = np.abs(keypoints[:, :2] - (pixels + 0.5)).max(axis=1)
    # Away from the border the target and its blur are exactly symmetric about the pixel (the
    # blur pairs mirrored taps), so the sign test gives 0 and the result is pixel + 0.5 exactly.
    # Within k // 2 + 1 px of the border cv2's reflected target and our zero padding make the
    # map genuinely asymmetric: a quarter step at most.
    r = k // 2 + 1
    h, w = hm.shape[2:]
    interior = (pixels[:, 0] >= r) & (pixels[:, 0] < w - r)
    interior &= (pixels[:, 1] >= r) & (pixels[:, 1] < h - r)
    assert interior.sum() > 100
    np.testing.assert_array_equal(error[interior], 0.0)
    assert error.max() <= 0.25


# --- edge cases ---------------------------------------------------------------------------------


def _single(h: int, w: int, peak: tuple[int, int], *, right: float = 0.0, down: float = 0.0):
    """(1, 1, H, W): 1 at peak (x, y), 0.5 on the side the quarter offset should go towards."""
    hm = np.zeros((1, 1, h, w), np.float32)
    x, y = peak
    hm[0, 0, y, x] = 1.0
    if right and x + 1 < w:
        hm[0, 0, y, x + 1] = right
    if down and y + 1 < h:
        hm[0, 0, y + 1, x] = down
    return hm


@pytest.mark.parametrize(
    ("peak", "expected"),
    [
        ((0, 0), (0.0, 0.0)),  # corner: no offset
        ((6, 4), (6.0, 4.0)),  # opposite corner
        ((1, 2), (1.0, 2.25)),  # x = 1: MMPose's `1 < x` test, no x offset
        ((2, 1), (2.25, 1.0)),  # y = 1: no y offset
        ((5, 3), (5.25, 3.25)),  # x = W - 2, y = H - 2: both offsets
        ((6, 2), (6.0, 2.25)),  # right border
        ((3, 4), (3.25, 4.0)),  # bottom border
        ((3, 0), (3.0, 0.0)),  # first row: MMPose moves x only if 0 < y
        ((0, 2), (0.0, 2.0)),  # first column: MMPose moves y only if 0 < x
    ],
)
def test_quarter_offset_at_borders(decode, peak, expected):
    hm = _single(5, 7, peak, right=0.5, down=0.5)
    np.testing.assert_array_equal(decode(hm, mode="quarter")[0, 0], [*expected, 1.0])


def test_quarter_follows_mmpose_on_every_border_row_and_column(decode):
    hm, spots = border_peaks(6, 7)
    got = decode(hm, mode="quarter")[0]
    want = np.array([mmpose_quarter(hm[0, m]) for m in range(len(spots))])
    np.testing.assert_array_equal(got[:, :2], want)
    assert np.abs(got[:, :2] - np.array(spots)).max() == 0.25  # offsets do happen there


def test_deliberate_difference_nonpositive_maximum_decodes_to_its_argmax(decode):
    """MMPose gives location -1 for a map whose maximum is <= 0; rtpose the argmax (and the
    maximum as the score: a threshold drops it)."""
    hm = np.full((1, 1, 5, 7), -1.0, np.float32)
    hm[0, 0, 2, 3], hm[0, 0, 2, 4], hm[0, 0, 3, 3] = -0.25, -0.5, -0.5
    np.testing.assert_array_equal(decode(hm, mode="quarter")[0, 0], [3.25, 2.25, -0.25])
    np.testing.assert_array_equal(decode(hm, mode="argmax")[0, 0], [3.0, 2.0, -0.25])


def test_quarter_offset_direction(decode):
    hm = _single(9, 9, (4, 4))
    hm[0, 0, 4, 3] = 0.5  # left and up are larger: -0.25 on both axes
    hm[0, 0, 3, 4] = 0.5
    np.testing.assert_array_equal(decode(hm, mode="quarter")[0, 0], [3.75, 3.75, 1.0])


def test_dark_only_inside_border(decode):
    """DARK refines when 1 < x < W-2 and 1 < y < H-2; elsewhere the integer peak is returned."""
    for cx, cy, refined in [
        (2.3, 2.3, True),
        (6.2, 4.4, True),
        (1.3, 4.4, False),
        (7.2, 4.4, False),
    ]:
        hm = _gaussians(np.array([[cx, cy]]), 9, 9)[None]  # W - 2 = 7
        # blur_kernel=1: no blur, whose zero padding would bias a peak this close to the border;
        # the log of a Gaussian is quadratic, so the Taylor step is exact up to rounding.
        x, y, _ = decode(hm, mode="dark", blur_kernel=1)[0, 0]
        if refined:
            assert abs(x - cx) < 1e-4 and abs(y - cy) < 1e-4
        else:
            assert x == round(cx) and y == round(cy)


def test_megvii_border_offset_and_half_pixel(decode):
    """megvii: quarter offset only when inside on both axes, +0.5 always."""
    hm = np.zeros((1, 2, 9, 9), np.float32)
    hm[0, 0, 4, 4] = hm[0, 0, 4, 5] = 200.0  # equal pair: blurred peak at x=4, right larger
    hm[0, 1, 1, 4] = hm[0, 1, 1, 5] = 200.0  # the same on row 1: no offset at all
    keypoints = decode(hm, mode="megvii", blur_kernel=3)[0]
    np.testing.assert_array_equal(keypoints[0, :2], [4.75, 4.5])
    np.testing.assert_array_equal(keypoints[1, :2], [4.5, 1.5])
    np.testing.assert_allclose(keypoints[:, 2], 200 / 255 + 0.5, rtol=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_flat_and_zero_maps_decode_to_first_pixel(decode, mode):
    hm = np.stack([np.zeros((6, 5), np.float32), np.full((6, 5), 3.0, np.float32)])[None]
    keypoints = decode(hm, mode=mode)[0]
    if mode == "megvii":
        np.testing.assert_array_equal(keypoints[0, :2], [0.5, 0.5])  # blurred zeros: first pixel
        # Zero padding makes the blur of a flat map peak where the 5x5 window is fully inside:
        # first at (2, 2); the row below is larger than the row above (y + 0.25), then + 0.5.
        np.testing.assert_array_equal(keypoints[1, :2], [2.5, 2.75])
        np.testing.assert_allclose(keypoints[:, 2], [0.5, 3 / 255 + 0.5], rtol=1e-7)
    else:
        np.testing.assert_array_equal(keypoints, [[0.0, 0.0, 0.0], [0.0, 0.0, 3.0]])


@pytest.mark.parametrize("mode", MODES)
def test_all_nan_map_gives_nan_row(decode, mode):
    hm = np.random.default_rng(0).random((2, 3, 6, 5), dtype=np.float32)
    hm[1, 2] = np.nan
    keypoints = decode(hm, _random_transforms(np.random.default_rng(1), 2), mode=mode)
    assert np.isnan(keypoints[1, 2]).all()
    assert np.isfinite(np.delete(keypoints.reshape(6, 3), 5, axis=0)).all()


def test_nan_values_are_ignored(decode):
    hm = _single(9, 9, (4, 4), right=0.5)
    hm[0, 0, 0, 0] = np.nan  # NaN before the peak in scan order: never wins
    keypoints = decode(hm, mode="quarter")[0, 0]
    np.testing.assert_array_equal(keypoints, [4.25, 4.0, 1.0])
    hm[0, 0, 4, 3] = np.nan  # a NaN neighbour: sign(NaN) = 0, no x offset
    np.testing.assert_array_equal(decode(hm, mode="quarter")[0, 0], [4.0, 4.0, 1.0])


def test_nan_spreading_through_the_megvii_blur(decode):
    """A NaN in the centre of a 3x3 map makes every blurred value NaN: NaN row, although the
    raw map has values."""
    hm = np.ones((1, 1, 3, 3), np.float32)
    hm[0, 0, 1, 1] = np.nan
    assert np.isnan(decode(hm, mode="megvii", blur_kernel=5)).all()
    np.testing.assert_array_equal(decode(hm, mode="argmax")[0, 0], [0.0, 0.0, 1.0])


@pytest.mark.parametrize("mode", MODES)
def test_nan_maps_native_equals_reference(mode):
    rng = np.random.default_rng(11)
    hm = _random_batch(rng, n=2, k=5, h=20, w=16)
    hm[hm > 0.9] = np.nan
    hm[0, 1, :, 3] = np.nan
    _assert_same(_native_decode(hm, mode=mode), decode_heatmaps_reference(hm, mode=mode))


def test_ties_go_to_the_first_index(decode):
    hm = np.zeros((1, 2, 6, 7), np.float32)
    hm[0, 0, 3, 1] = hm[0, 0, 2, 5] = 1.0  # (x=5, y=2) comes first in row-major order
    hm[0, 1, 4, 6] = hm[0, 1, 4, 2] = 1.0  # same row: smaller x
    keypoints = decode(hm, mode="argmax")[0]
    np.testing.assert_array_equal(keypoints[:, :2], [[5, 2], [2, 4]])


def test_empty_batch_and_single_keypoint(decode):
    assert decode(np.zeros((0, 17, 8, 6), np.float32)).shape == (0, 17, 3)
    assert decode(np.zeros((0, 17, 8, 6), np.float32), np.zeros((0, 2, 3))).shape == (0, 17, 3)
    one = decode(_single(8, 6, (3, 5)), mode="argmax")
    assert one.shape == (1, 1, 3) and one.dtype == np.float32


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hw", [(7, 5), (1, 1), (1, 9), (9, 1), (2, 3)])
def test_odd_sizes(decode, mode, hw):
    rng = np.random.default_rng(hw[0] * 10 + hw[1])
    hm = rng.random((2, 3, *hw), dtype=np.float32)
    keypoints = decode(hm, mode=mode)
    _assert_same(keypoints, decode_heatmaps_reference(hm, mode=mode))
    if hw == (1, 1):
        offset = 0.5 if mode == "megvii" else 0.0
        np.testing.assert_array_equal(keypoints[..., :2], offset)


def test_non_contiguous_inputs(decode):
    rng = np.random.default_rng(5)
    base = _random_batch(rng, n=2, k=6, h=40, w=34)
    views = {
        "transposed": np.ascontiguousarray(base.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2),
        "strided": base[:, ::2, ::2, ::3],
        "negative": base[::-1, :, ::-1, ::-1],
        "channel-last": np.ascontiguousarray(base.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
    }
    for name, view in views.items():
        for mode in MODES:
            np.testing.assert_array_equal(
                decode(view, mode=mode),
                decode(np.ascontiguousarray(view), mode=mode),
                err_msg=f"{name} {mode}",
            )


def test_float16_equals_float32_of_the_same_values(decode):
    hm = _random_batch(np.random.default_rng(6), n=2, k=4).astype(np.float16)
    for mode in MODES:
        np.testing.assert_array_equal(
            decode(hm, mode=mode), decode(hm.astype(np.float32), mode=mode)
        )


def test_three_dimensional_input(decode):
    hm = _random_batch(np.random.default_rng(8), n=1, k=5)
    t = _random_transforms(np.random.default_rng(9), 1)
    for mode in MODES:
        single = decode(hm[0], t[0], mode=mode, input_size=(256, 192))
        assert single.shape == (5, 3)
        np.testing.assert_array_equal(single, decode(hm, t, mode=mode, input_size=(256, 192))[0])


def test_transforms_and_input_size(decode):
    hm = np.stack([_single(8, 6, (2, 3))[0], _single(8, 6, (4, 5))[0]])  # (2, 1, 8, 6)
    t = np.array([[2.0, 0.5, 10.0], [-0.25, 3.0, -7.0]])
    keypoints = decode(hm, t, mode="argmax", input_size=(32, 12))  # sx = 12 / 6, sy = 32 / 8
    for i, (x, y) in enumerate([(2, 3), (4, 5)]):
        u, v = 2.0 * x, 4.0 * y
        expected = [2.0 * u + 0.5 * v + 10.0, -0.25 * u + 3.0 * v - 7.0, 1.0]
        np.testing.assert_allclose(keypoints[i, 0], expected, rtol=1e-7)
    # (2, 3) is shared by the batch; (N, 2, 3) int arrays are accepted too.
    np.testing.assert_array_equal(
        keypoints, decode(hm, np.stack([t, t]), mode="argmax", input_size=(32, 12))
    )
    ints = np.array([[1, 0, 5], [0, 1, -3]])
    np.testing.assert_array_equal(decode(hm, ints, mode="argmax")[:, 0, :2], [[7, 0], [9, 2]])


def test_out_argument():
    hm = _random_batch(np.random.default_rng(12), n=2, k=3)
    out = np.full((2, 3, 3), -1.0, np.float32)
    result = decode_heatmaps(hm, out=out)
    assert result is out
    np.testing.assert_array_equal(out, decode_heatmaps_reference(hm))


# --- fallback -----------------------------------------------------------------------------------


def test_fallback_warns_once_and_uses_the_reference(fallback, caplog):
    hm = _random_batch(np.random.default_rng(13), n=2, k=4)
    with caplog.at_level(logging.WARNING, logger="rtpose.ops.heatmap_decode"):
        first = decode_heatmaps(hm, mode="dark")
        decode_heatmaps(hm, mode="megvii")
    warnings = [r for r in caplog.records if r.name == "rtpose.ops.heatmap_decode"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "decode_heatmaps" in message and "numpy reference" in message
    assert "disabled for a test" in message
    np.testing.assert_array_equal(first, decode_heatmaps_reference(hm, mode="dark"))


# --- validation ---------------------------------------------------------------------------------

HM = np.zeros((2, 3, 8, 6), np.float32)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"heatmaps": np.zeros((8, 6), np.float32)},
            ValueError,
            r"heatmaps .*got float32 \(8, 6\)",
        ),
        ({"heatmaps": np.zeros((1, 2, 3, 8, 6), np.float32)}, ValueError, "heatmaps"),
        ({"heatmaps": np.zeros((2, 3, 0, 6), np.float32)}, ValueError, "H, W >= 1"),
        ({"heatmaps": HM.astype(np.int32)}, TypeError, r"float32 or float16.*got int32"),
        ({"heatmaps": HM.astype(np.float64)}, TypeError, "got float64"),
        ({"transforms": np.zeros((2, 3, 3))}, ValueError, r"transforms .*\(2, 2, 3\).*got"),
        ({"transforms": np.zeros((3, 2, 3))}, ValueError, r"transforms .*\(3, 2, 3\)"),
        ({"transforms": np.zeros((2, 3), bool)}, TypeError, "transforms"),
        ({"mode": "dark", "blur_kernel": 4}, ValueError, "blur_kernel must be an odd integer"),
        ({"mode": "megvii", "blur_kernel": 33}, ValueError, r"\[1, 31\], got 33"),
        ({"mode": "megvii", "blur_kernel": 0}, ValueError, "blur_kernel"),
        ({"mode": "dark", "blur_kernel": 5.0}, TypeError, "blur_kernel"),
        ({"mode": "quarter", "blur_kernel": 5}, ValueError, "'megvii' and 'dark' only"),
        ({"mode": "argmax", "blur_kernel": 3}, ValueError, "would be ignored"),
        ({"mode": "simcc"}, ValueError, r"mode must be one of .*'simcc'"),
        ({"input_size": (0, 192)}, ValueError, "input_size"),
        ({"input_size": (256,)}, ValueError, r"input_size must be \(input_h, input_w\)"),
        ({"input_size": (256.0, 192)}, TypeError, "input_size"),
        ({"input_size": 256}, ValueError, "input_size"),
    ],
)
def test_validation_errors(kwargs, error, match):
    arguments = {"heatmaps": HM, **kwargs}
    hm = arguments.pop("heatmaps")
    for fn in (decode_heatmaps, decode_heatmaps_reference):
        with pytest.raises(error, match=match):
            fn(hm, **arguments)


def test_out_and_stream_errors():
    with pytest.raises(ValueError, match=r"out must be .*\(2, 3, 3\)"):
        decode_heatmaps(HM, out=np.zeros((2, 3, 2), np.float32))
    with pytest.raises(TypeError, match="out must be"):
        decode_heatmaps(HM, out=np.zeros((2, 3, 3), np.float64))
    with pytest.raises(ValueError, match="stream is for GPU input"):
        decode_heatmaps(HM, stream=0)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((HM.astype(np.int32), None, 1.0, 1.0, 1, 0), TypeError),
        ((HM[0], None, 1.0, 1.0, 1, 0), ValueError),
        ((HM[:, :, :0], None, 1.0, 1.0, 1, 0), ValueError),
        ((HM, np.zeros((3, 2, 3)), 1.0, 1.0, 1, 0), ValueError),
        ((HM, np.zeros((2, 2, 3), np.int64), 1.0, 1.0, 1, 0), TypeError),
        ((HM, [[1, 0, 0], [0, 1, 0]], 1.0, 1.0, 1, 0), TypeError),
        ((HM, None, 1.0, 1.0, 7, 0), ValueError),
        ((HM, None, 1.0, 1.0, 2, 4), ValueError),
        ((HM, None, 1.0, 1.0, 3, 33), ValueError),
        ((HM, None, -1.0, 1.0, 0, 0), ValueError),
        ((HM, None, 1.0, float("nan"), 0, 0), ValueError),
    ],
)
def test_native_binding_rejects_bad_arguments(args, error):
    native = require_native()
    with pytest.raises(error, match="decode_heatmaps"):
        native.decode_heatmaps(*args)


def test_cuda_binding_rejects_bad_arguments_before_launching():
    """Checks that need no GPU: they run before the binding touches the device."""
    native = require_native()
    if not native.has_cuda:
        pytest.skip("rtpose._C built without CUDA")
    good = dict(
        heatmaps=1,
        dtype=0,
        shape=(2, 3, 8, 6),
        strides=(144, 48, 6, 1),
        transforms=0,
        scale_x=1.0,
        scale_y=1.0,
        mode=1,
        blur_kernel=0,
        out=1,
        device=0,
        stream=0,
    )
    bad = [
        {"dtype": 2},
        {"shape": (2, 3, 0, 6)},
        {"shape": (-1, 3, 8, 6)},
        {"shape": (1, 1, 1 << 16, 1 << 16)},
        {"mode": 4},
        {"mode": 2, "blur_kernel": 2},
        {"scale_x": 0.0},
        {"heatmaps": 0},
    ]
    for change in bad:
        with pytest.raises(ValueError, match="decode_heatmaps"):
            native.cuda.decode_heatmaps(**{**good, **change})


# --- GPU path, checked on the CPU with the emulated GPU (tests/gpu_support.py) -----------------


@pytest.mark.parametrize("mode", MODES)
def test_gpu_path_matches_cpu(emulated_gpu, mode):
    rng = np.random.default_rng([23, MODES.index(mode)])
    batch = _random_batch(rng, n=4, k=5).astype(np.float16)
    hm = batch[:, ::2, ::-1]  # channel step and a negative stride
    t = _random_transforms(rng, len(hm))
    options = {"mode": mode, "input_size": (256, 192)}
    got = decode_heatmaps(HostCudaArray(hm), t, stream=3, **options)
    assert got.stream == 3
    np.testing.assert_array_equal(got.get(), decode_heatmaps(hm, t, **options))
    name, args = emulated_gpu.launches[-1]
    assert name == "decode_heatmaps" and args[3] == tuple(s // 2 for s in hm.strides)


def test_gpu_path_out_device_transforms_and_single_map(emulated_gpu):
    rng = np.random.default_rng(24)
    hm = _random_batch(rng, n=3, k=5)
    t = _random_transforms(rng, 3)
    out = HostCudaArray(np.empty((3, 5, 3), np.float32))
    got = decode_heatmaps(HostCudaArray(hm), HostCudaArray(t), mode="dark", out=out)
    assert got is out
    np.testing.assert_array_equal(out.host, decode_heatmaps(hm, t, mode="dark"))
    single = decode_heatmaps(HostCudaArray(hm[0]), t[0], mode="quarter").get()
    np.testing.assert_array_equal(single, decode_heatmaps(hm[0], t[0], mode="quarter"))
    with pytest.raises(TypeError, match=r"device transforms must be C-contiguous float64"):
        decode_heatmaps(HostCudaArray(hm), HostCudaArray(t.astype(np.float32)))
    with pytest.raises(ValueError, match=r"not C-contiguous"):
        decode_heatmaps(HostCudaArray(hm), HostCudaArray(np.asfortranarray(t)))


def test_gpu_path_waits_for_the_producer_on_the_call_stream(emulated_gpu):
    """A CUDA array written on another stream (CAI "stream") is read after that work: the
    kernel's stream waits for the producer's (before, decode_heatmaps made the legacy default
    stream wait instead, and its kernel could read the maps before they were written)."""
    hm = _random_batch(np.random.default_rng(25), n=2, k=3)
    decode_heatmaps(HostCudaArray(hm, stream=11), stream=9)
    assert emulated_gpu.waits == [(11, 9, 0)]


# --- GPU (CUDA vs the C++ CPU kernel) -----------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("mode", MODES)
def test_cuda_matches_cpu(mode, dtype):
    rng = np.random.default_rng([21, MODES.index(mode), dtype == np.float16])
    hm = _random_batch(rng, n=4, k=17).astype(dtype)
    hm[1, 3] = np.nan  # all-NaN map
    t = _random_transforms(rng, len(hm))
    kernels = (None, 1, 7, 31) if mode in ("megvii", "dark") else (None,)
    for k in kernels:
        options = {"mode": mode, "blur_kernel": k, "input_size": (256, 192)}
        gpu_result = decode_heatmaps(upload(hm), t, **options).get()
        _assert_same(gpu_result, _native_decode(hm, t, **options))
    peaks = decode_heatmaps(upload(hm), mode="argmax").get()
    np.testing.assert_array_equal(peaks, _native_decode(hm, mode="argmax"))


@pytest.mark.gpu
def test_cuda_out_device_transforms_and_shapes():
    rng = np.random.default_rng(22)
    hm = _random_batch(rng, n=3, k=5)
    t = _random_transforms(rng, 3)
    expected = _native_decode(hm, t, mode="dark", input_size=(256, 192))
    out = arrays.empty((3, 5, 3), np.float32, device=0, stream=0)
    result = decode_heatmaps(
        upload(hm), upload(t), mode="dark", input_size=(256, 192), stream=0, out=out
    )
    assert result is out
    _assert_same(out.get(), expected)
    # (K, H, W) input, (2, 3) host transforms, N = 0, a map bigger than 48 KB of floats.
    single = decode_heatmaps(upload(hm[0]), t[0], mode="quarter").get()
    np.testing.assert_array_equal(single, _native_decode(hm[0], t[0], mode="quarter"))
    empty = decode_heatmaps(upload(np.zeros((0, 5, 8, 6), np.float32)), mode="megvii")
    assert empty.get().shape == (0, 5, 3)
    big = _random_batch(rng, n=1, k=2, h=128, w=120)
    for mode in MODES:
        _assert_same(decode_heatmaps(upload(big), mode=mode).get(), _native_decode(big, mode=mode))


@pytest.mark.gpu
def test_cuda_refuses_maps_beyond_shared_memory():
    hm = np.zeros((1, 1, 1024, 1024), np.float32)  # 8 MB of floats for megvii
    with pytest.raises(ValueError, match=r"H=1024, W=1024"):
        decode_heatmaps(upload(hm), mode="megvii")
    # argmax / quarter read global memory: no limit.
    hm[0, 0, 700, 300] = 1.0
    np.testing.assert_array_equal(
        decode_heatmaps(upload(hm), mode="quarter").get(), [[[300.0, 700.0, 1.0]]]
    )
