// Per-heatmap arithmetic of decode_heatmaps, shared by the CPU (csrc/cpu/heatmap_decode.cpp) and
// CUDA (csrc/cuda/heatmap_decode.cu) implementations, so both run literally the same operations
// in the same order as the numpy reference (rtpose/ops/heatmap_decode.py, which documents the
// semantics). Maps are read through an accessor `at(y, x) -> float`, so the same code serves a
// strided float16 tensor in global memory, a float buffer in shared memory, or a row blur
// computed on the fly.
#pragma once

#include <cmath>
#include <cstdint>

#include "rtpose/common.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose {

// Gaussian weights of the blur of kMegvii / kDark, float32 as the numpy reference uses them.
struct BlurWeights {
  int size;  // odd, 1..kMaxBlurKernel
  float w[kMaxBlurKernel];
};

// cv2.getGaussianKernel(size, 0) cast to float32 (host only). OpenCV uses fixed (dyadic) tables
// for sizes 1..9 and the sampled Gaussian with sigma = 0.3 * ((size - 1) / 2 - 1) + 0.8
// otherwise; the float64 steps below are OpenCV's (scaled by the reciprocal of the sum).
inline BlurWeights gaussian_weights(int size) {
  static const double kTables[5][9] = {
      {1.0},
      {0.25, 0.5, 0.25},
      {1 / 16.0, 4 / 16.0, 6 / 16.0, 4 / 16.0, 1 / 16.0},
      {1 / 32.0, 3.5 / 32.0, 7 / 32.0, 9 / 32.0, 7 / 32.0, 3.5 / 32.0, 1 / 32.0},
      {1 / 64.0, 3.25 / 64.0, 7.5 / 64.0, 12.75 / 64.0, 15 / 64.0, 12.75 / 64.0, 7.5 / 64.0,
       3.25 / 64.0, 1 / 64.0}};
  BlurWeights bw{};
  bw.size = size;
  if (size <= 9) {
    for (int i = 0; i < size; ++i) bw.w[i] = static_cast<float>(kTables[size / 2][i]);
    return bw;
  }
  const double sigma = 0.3 * ((size - 1) * 0.5 - 1.0) + 0.8;
  const double scale = -0.5 / (sigma * sigma);
  double t[kMaxBlurKernel];
  double sum = 0.0;
  for (int i = 0; i < size; ++i) {
    const double x = i - (size - 1) * 0.5;
    t[i] = std::exp(scale * x * x);
    sum += t[i];
  }
  const double inv = 1.0 / sum;
  for (int i = 0; i < size; ++i) bw.w[i] = static_cast<float>(t[i] * inv);
  return bw;
}

// Horizontal pass of the zero-padded separable blur at (y, x), in float32, in a mirror-symmetric
// order: acc = w[r] * at(y, x), then for j = 1..r: acc += w[r + j] * (at(y, x - j) + at(y, x + j))
// with 0 for taps outside the map. Rounding then cannot break a symmetry of the map: a target
// symmetric about its peak blurs to exactly equal neighbours (so Megvii's sign test sees 0),
// which the plain order j = 0..k-1 does not guarantee. The weights are symmetric (w[r - j] ==
// w[r + j] exactly, see gaussian_weights).
template <class At>
RTPOSE_HD float blur_row_at(const At& at, std::int64_t width, std::int64_t y, std::int64_t x,
                            const BlurWeights& bw) {
  const int r = bw.size / 2;
  float acc = mul_rn(bw.w[r], at(y, x));
  for (int j = 1; j <= r; ++j) {
    const float left = x - j >= 0 ? at(y, x - j) : 0.0f;
    const float right = x + j < width ? at(y, x + j) : 0.0f;
    acc = add_rn(acc, mul_rn(bw.w[r + j], add_rn(left, right)));
  }
  return acc;
}

// Vertical pass at (y, x) over `rows` (the horizontal pass's result), same order and padding.
template <class At>
RTPOSE_HD float blur_col_at(const At& rows, std::int64_t height, std::int64_t y, std::int64_t x,
                            const BlurWeights& bw) {
  const int r = bw.size / 2;
  float acc = mul_rn(bw.w[r], rows(y, x));
  for (int j = 1; j <= r; ++j) {
    const float up = y - j >= 0 ? rows(y - j, x) : 0.0f;
    const float down = y + j < height ? rows(y + j, x) : 0.0f;
    acc = add_rn(acc, mul_rn(bw.w[r + j], add_rn(up, down)));
  }
  return acc;
}

// The full blur at one point, recomputing the horizontal pass of the rows it needs: bitwise equal
// to blurring the whole map (same sums, same order). Used for DARK's 13 points.
template <class At>
RTPOSE_HD float blur_at(const At& at, std::int64_t height, std::int64_t width, std::int64_t y,
                        std::int64_t x, const BlurWeights& bw) {
  const auto rows = [&](std::int64_t yy, std::int64_t xx) {
    return blur_row_at(at, width, yy, xx, bw);
  };
  return blur_col_at(rows, height, y, x, bw);
}

// Sequential scan with the argmax rule of common.h (row-major order).
template <class At>
RTPOSE_HD Peak scan_peak(const At& at, std::int64_t height, std::int64_t width) {
  Peak p = no_peak();
  for (std::int64_t y = 0; y < height; ++y) {
    for (std::int64_t x = 0; x < width; ++x) consider(p, at(y, x), y * width + x);
  }
  return p;
}

// "quarter" (MSRA / MMPose refine_keypoints): a quarter pixel towards the larger neighbour, per
// axis, on the raw map, under MMPose's tests: x moves if 1 < x < W - 1 and 0 < y < H, y moves if
// 1 < y < H - 1 and 0 < x < W (so a peak on the first row or column keeps its other axis too).
template <class At>
RTPOSE_HD void quarter_offset(const At& at, std::int64_t height, std::int64_t width,
                              std::int64_t px, std::int64_t py, double& x, double& y) {
  if (1 < px && px < width - 1 && 0 < py) {
    const float s = sign_of(at(py, px + 1) - at(py, px - 1));
    x = dadd_rn(x, dmul_rn(0.25, static_cast<double>(s)));
  }
  if (1 < py && py < height - 1 && 0 < px) {
    const float s = sign_of(at(py + 1, px) - at(py - 1, px));
    y = dadd_rn(y, dmul_rn(0.25, static_cast<double>(s)));
  }
}

// "megvii" (MSPN / RSN): on the blurred map, a quarter pixel towards the larger neighbour when the
// peak is inside on both axes; then always +0.5 (the official code's x * 4 + 2).
template <class At>
RTPOSE_HD void megvii_offset(const At& blurred, std::int64_t height, std::int64_t width,
                             std::int64_t px, std::int64_t py, double& x, double& y) {
  if (1 < px && px < width - 1 && 1 < py && py < height - 1) {
    const float sx = sign_of(blurred(py, px + 1) - blurred(py, px - 1));
    const float sy = sign_of(blurred(py + 1, px) - blurred(py - 1, px));
    x = dadd_rn(x, dmul_rn(0.25, static_cast<double>(sx)));
    y = dadd_rn(y, dmul_rn(0.25, static_cast<double>(sy)));
  }
  x = dadd_rn(x, 0.5);
  y = dadd_rn(y, 0.5);
}

// Megvii score: (max raw value) / 255 + 0.5, in float64.
RTPOSE_HD float megvii_score(float raw_max) {
  return static_cast<float>(dadd_rn(static_cast<double>(raw_max) / 255.0, 0.5));
}

// DARK needs the log-blurred map at 13 points around the peak (dy, dx):
// 0 centre, 1 left, 2 right, 3 left 2, 4 right 2, 5 up, 6 down, 7 up 2, 8 down 2,
// 9 up-left, 10 up-right, 11 down-left, 12 down-right.
constexpr int kDarkPoints = 13;

RTPOSE_HD void dark_point(int i, int& dy, int& dx) {
  // dy + 2 and dx + 2 of point i in 3-bit fields: a lookup in registers, where an indexed local
  // array would live in (slow) local memory on the GPU.
  constexpr std::uint64_t kDy = 0x364c0ca492u;  // 2 2 2 2 2 1 3 0 4 1 1 3 3 (point 0 first)
  constexpr std::uint64_t kDx = 0x32ca4940cau;  // 2 1 3 0 4 2 2 2 2 1 3 1 3
  dy = static_cast<int>((kDy >> (3 * i)) & 7u) - 2;
  dx = static_cast<int>((kDx >> (3 * i)) & 7u) - 2;
}

// DARK applies only when the 5x5 neighbourhood is inside: 1 < x < W - 2 and 1 < y < H - 2.
RTPOSE_HD bool dark_applies(std::int64_t height, std::int64_t width, std::int64_t px,
                            std::int64_t py) {
  return 1 < px && px < width - 2 && 1 < py && py < height - 2;
}

// log(max(v, 1e-10)) with the clamp in float32 (NaN stays NaN: NaN < 1e-10 is false), log in
// float64.
RTPOSE_HD double dark_log(float blurred) {
  const float v = blurred < 1e-10f ? 1e-10f : blurred;
  return log(static_cast<double>(v));
}

RTPOSE_HD bool is_finite(double v) { return v - v == 0.0; }  // false for inf and NaN

// Second-order Taylor step of DARK (Zhang et al., CVPR 2020) from the 13 log values L:
// (x, y) -= H^-1 [dx, dy], H^-1 = [[dyy, -dxy], [-dxy, dxx]] / det, written out as
// ox = (dyy*dx - dxy*dy) / det, oy = (dxx*dy - dxy*dx) / det. No step when det == 0 or a term or
// the offset is not finite.
RTPOSE_HD void dark_step(const double* L, double& x, double& y) {
  const double dx = dmul_rn(0.5, dadd_rn(L[2], -L[1]));
  const double dy = dmul_rn(0.5, dadd_rn(L[6], -L[5]));
  const double two_c = dmul_rn(2.0, L[0]);
  const double dxx = dmul_rn(0.25, dadd_rn(dadd_rn(L[4], -two_c), L[3]));
  const double dyy = dmul_rn(0.25, dadd_rn(dadd_rn(L[8], -two_c), L[7]));
  const double dxy = dmul_rn(0.25, dadd_rn(dadd_rn(dadd_rn(L[12], -L[10]), -L[11]), L[9]));
  const double det = dadd_rn(dmul_rn(dxx, dyy), -dmul_rn(dxy, dxy));
  if (det == 0.0 || !is_finite(dx) || !is_finite(dy) || !is_finite(dxx) || !is_finite(dyy) ||
      !is_finite(dxy) || !is_finite(det)) {
    return;
  }
  const double ox = dadd_rn(dmul_rn(dyy, dx), -dmul_rn(dxy, dy)) / det;
  const double oy = dadd_rn(dmul_rn(dxx, dy), -dmul_rn(dxy, dx)) / det;
  if (!is_finite(ox) || !is_finite(oy)) return;
  x = dadd_rn(x, -ox);
  y = dadd_rn(y, -oy);
}

// Writes one keypoint: [X, Y] = T @ [sx * x, sy * y, 1] in float64 (T: 6 row-major values, or
// nullptr for identity), then the score.
RTPOSE_HD void store_keypoint(const double* t, double scale_x, double scale_y, double x, double y,
                              float score, float* out) {
  const double u = dmul_rn(scale_x, x);
  const double v = dmul_rn(scale_y, y);
  if (t == nullptr) {
    out[0] = static_cast<float>(u);
    out[1] = static_cast<float>(v);
  } else {
    out[0] = static_cast<float>(dadd_rn(dadd_rn(dmul_rn(t[0], u), dmul_rn(t[1], v)), t[2]));
    out[1] = static_cast<float>(dadd_rn(dadd_rn(dmul_rn(t[3], u), dmul_rn(t[4], v)), t[5]));
  }
  out[2] = score;
}

// A map without any non-NaN value (raw, or blurred for megvii) gives (NaN, NaN, NaN).
RTPOSE_HD void store_missing(float* out) {
  const float nan = half_bits_to_float(0x7e00u);  // quiet NaN, the same bits on host and device
  out[0] = nan;
  out[1] = nan;
  out[2] = nan;
}

// Floats of dynamic shared memory the CUDA kernel needs per map (also checked by the binding):
// megvii keeps the map and its horizontal blur, dark the map; argmax / quarter read global memory.
RTPOSE_HD std::int64_t decode_shared_floats(RefineMode mode, std::int64_t height,
                                            std::int64_t width) {
  if (mode == RefineMode::kMegvii) return 2 * height * width;
  if (mode == RefineMode::kDark) return height * width;
  return 0;
}

}  // namespace rtpose
