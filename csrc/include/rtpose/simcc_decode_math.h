// Per-keypoint math of decode_simcc, shared by csrc/cpu/simcc_decode.cpp and
// csrc/cuda/simcc_decode.cu (and mirrored step by step by rtpose/ops/simcc_decode.py).
#pragma once

#include <cstdint>
#include <limits>

#include "rtpose/common.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose {

// Folds elements begin, begin + step, ... of the vector (n, k) into a Peak by the argmax rule.
// The CPU scans with (0, 1); a CUDA warp lane with (lane, 32) before the warp reduction.
RTPOSE_HD Peak simcc_partial_peak(const VectorView& v, std::int64_t n, std::int64_t k,
                                  std::int64_t begin, std::int64_t step) {
  Peak p = no_peak();
  const std::int64_t base = n * v.stride_n + k * v.stride_k;
  for (std::int64_t i = begin; i < v.len; i += step) {
    consider(p, load_float(v.data, v.dtype, base + i * v.stride_x), i);
  }
  return p;
}

// Writes x, y, score of one keypoint to out[0..2] from the peaks of its two vectors.
// transform: the keypoint's 2x3 row-major crop-input -> image map, or nullptr for identity.
// No peak in either vector (all NaN) gives NaN everywhere. Unlike MMPose, a score <= 0 does
// not set the location to -1: the score already says so (rtpose/ops/simcc_decode.py).
RTPOSE_HD void simcc_keypoint(const Peak& px, const Peak& py, double split_ratio,
                              const double* transform, float* out) {
  if (px.index < 0 || py.index < 0) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    out[0] = nan;
    out[1] = nan;
    out[2] = nan;
    return;
  }
  // Correctly rounded double division on host and device alike.
  const double x = static_cast<double>(px.index) / split_ratio;
  const double y = static_cast<double>(py.index) / split_ratio;
  if (transform == nullptr) {
    out[0] = static_cast<float>(x);
    out[1] = static_cast<float>(y);
  } else {
    // (t0 * x + t1 * y) + t2, the evaluation order of numpy's T[0, 0] * x + T[0, 1] * y + T[0, 2].
    const double* t = transform;
    out[0] = static_cast<float>(dadd_rn(dadd_rn(dmul_rn(t[0], x), dmul_rn(t[1], y)), t[2]));
    out[1] = static_cast<float>(dadd_rn(dadd_rn(dmul_rn(t[3], x), dmul_rn(t[4], y)), t[5]));
  }
  out[2] = py.value < px.value ? py.value : px.value;
}

}  // namespace rtpose
