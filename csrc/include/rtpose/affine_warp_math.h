// Per-pixel arithmetic of the affine warp, shared by the CPU kernel (csrc/cpu/affine_warp.cpp,
// whose SIMD paths do the same float operations in the same order) and the CUDA kernel, so both
// produce the same bits.
#pragma once

#include <cstdint>

#include "rtpose/affine_warp.h"
#include "rtpose/common.h"

namespace rtpose {

// cv2.invertAffineTransform's formula in double. False (inverse untouched) for a singular or
// non-finite map.
RTPOSE_HD bool invert_affine(const double* m, double* inv) {
  const double det = dadd_rn(dmul_rn(m[0], m[4]), -dmul_rn(m[1], m[3]));
  if (det == 0.0 || !(det - det == 0.0)) return false;  // zero, inf or NaN
  const double d = 1.0 / det;
  double r[6];
  r[0] = dmul_rn(m[4], d);
  r[1] = dmul_rn(-m[1], d);
  r[3] = dmul_rn(-m[3], d);
  r[4] = dmul_rn(m[0], d);
  r[2] = dadd_rn(dmul_rn(-r[0], m[2]), -dmul_rn(r[1], m[5]));
  r[5] = dadd_rn(dmul_rn(-r[3], m[2]), -dmul_rn(r[4], m[5]));
  for (int k = 0; k < 6; ++k) {
    if (!(r[k] - r[k] == 0.0)) return false;
  }
  for (int k = 0; k < 6; ++k) inv[k] = r[k];
  return true;
}

// Splits a source coordinate into floor and fraction. Coordinates are clamped to [-2, limit]
// first: every point outside [-1, limit) has both neighbours outside, which the clamped value
// still says, and the floor then fits an int32. NaN goes to -2 (all border).
RTPOSE_HD void split_coordinate(double s, double limit, std::int32_t& i, float& frac) {
  s = s > -2.0 ? s : -2.0;  // NaN -> -2
  s = s < limit ? s : limit;
  const auto t = static_cast<std::int32_t>(s);  // truncates toward zero
  i = t - (static_cast<double>(t) > s);         // floor
  frac = static_cast<float>(s - static_cast<double>(i));
}

// Normalisation constants in frame (BGR) channel order: lane l of a pixel is frame channel l.
struct WarpConstants {
  std::int32_t width, height;
  float mean[3];        // per lane
  float inv_std[3];     // per lane
  float border;         // raw border value, blended like any other neighbour
  float border_out[3];  // per OUTPUT channel: a pixel whose four neighbours are all outside
  int lane_of_output[3];
};

RTPOSE_HD WarpConstants warp_constants(const ImageView& frame, const AffineWarpParams& p) {
  WarpConstants k{};
  k.width = static_cast<std::int32_t>(frame.width);
  k.height = static_cast<std::int32_t>(frame.height);
  k.border = static_cast<float>(p.border_value);
  for (int c = 0; c < 3; ++c) {
    const int lane = p.rgb ? 2 - c : c;  // the frame is BGR
    k.lane_of_output[c] = lane;
    k.mean[lane] = static_cast<float>(p.mean[c]);
    k.inv_std[lane] = static_cast<float>(1.0 / p.std[c]);
    k.border_out[c] = static_cast<float>((p.border_value - p.mean[c]) / p.std[c]);
  }
  return k;
}

// Source coordinates of output pixel (x, y) under inverse map m: the x coordinate is
// (m[1] * y + m[2]) + m[0] * x, the same grouping as the CPU kernel's row-start + step.
RTPOSE_HD void source_point(const double* m, std::int64_t x, std::int64_t y, double& sx,
                            double& sy) {
  const double row_x = dadd_rn(dmul_rn(m[1], static_cast<double>(y)), m[2]);
  const double row_y = dadd_rn(dmul_rn(m[4], static_cast<double>(y)), m[5]);
  sx = dadd_rn(row_x, dmul_rn(m[0], static_cast<double>(x)));
  sy = dadd_rn(row_y, dmul_rn(m[3], static_cast<double>(x)));
}

// a + f * (b - a), the blend every path uses.
RTPOSE_HD float lerp(float a, float b, float f) { return add_rn(a, mul_rn(f, b - a)); }

// The three normalised output channels (output order) of one pixel with taps (x0, y0, fx, fy).
RTPOSE_HD void warp_pixel(const ImageView& f, const WarpConstants& k, std::int32_t x0,
                          std::int32_t y0, float fx, float fy, float out[3]) {
  if (x0 < -1 || x0 >= k.width || y0 < -1 || y0 >= k.height) {
    for (int c = 0; c < 3; ++c) out[c] = k.border_out[c];
    return;
  }
  float px[4][3];  // (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)
  for (int j = 0; j < 4; ++j) {
    const std::int64_t x = x0 + (j & 1);
    const std::int64_t y = y0 + (j >> 1);
    if (x >= 0 && y >= 0 && x < k.width && y < k.height) {
      const std::uint8_t* p = f.data + y * f.stride_y + x * f.stride_x;
      for (int l = 0; l < 3; ++l) px[j][l] = static_cast<float>(p[l * f.stride_c]);
    } else {
      for (int l = 0; l < 3; ++l) px[j][l] = k.border;
    }
  }
  for (int c = 0; c < 3; ++c) {
    const int l = k.lane_of_output[c];
    const float top = lerp(px[0][l], px[1][l], fx);
    const float bottom = lerp(px[2][l], px[3][l], fx);
    out[c] = mul_rn(lerp(top, bottom, fy) - k.mean[l], k.inv_std[l]);
  }
}

}  // namespace rtpose
