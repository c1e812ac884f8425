// Per-element math of flip_merge, shared by csrc/cpu/flip_merge.cpp and csrc/cuda/flip_merge.cu
// so that both (and the numpy reference in rtpose/ops/flip_merge.py) give identical bits.
#pragma once

#include <cstdint>
#include <limits>

#include "rtpose/common.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose {

// Column of the flipped map that lands on column x once it is flipped back. Without shift this
// is the mirror column W-1-x; with shift (MMPose shift_heatmap) the flipped-back map is moved
// right by one pixel, so column x reads the mirror of x-1 (W-x), and column 0, which has no left
// neighbour, keeps its own flipped-back value (W-1). W == 1 gives 0 either way.
RTPOSE_HD std::int64_t flip_source_x(std::int64_t x, std::int64_t w, bool shift) {
  if (!shift) return w - 1 - x;
  return x == 0 ? w - 1 : w - x;
}

// The merged value: (a + b) * 0.5 in float32, each step rounded on its own (no FMA).
RTPOSE_HD float flip_mean(float a, float b) { return mul_rn(add_rn(a, b), 0.5f); }

// Output element (n, k, y, x) of flip_merge. flip_index[k] outside [0, K) (possible only with a
// device-resident index array, which is not validated) gives NaN instead of a stray read.
RTPOSE_HD float flip_merge_element(const HeatmapView& original, const HeatmapView& flipped,
                                   const std::int32_t* flip_index, bool shift, std::int64_t n,
                                   std::int64_t k, std::int64_t y, std::int64_t x) {
  const std::int64_t fk = flip_index[k];
  const float a = load_float(original.data, original.dtype,
                             n * original.stride_n + k * original.stride_k + y * original.stride_y +
                                 x * original.stride_x);
  if (fk < 0 || fk >= flipped.k) return std::numeric_limits<float>::quiet_NaN();
  const std::int64_t sx = flip_source_x(x, flipped.w, shift);
  const float b = load_float(
      flipped.data, flipped.dtype,
      n * flipped.stride_n + fk * flipped.stride_k + y * flipped.stride_y + sx * flipped.stride_x);
  return flip_mean(a, b);
}

}  // namespace rtpose
