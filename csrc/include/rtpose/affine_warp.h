// Batched affine warp: crop + resize + channel reorder + normalise + HWC -> CHW in one pass.
//
// One declaration shared by every backend (csrc/cpu/affine_warp.cpp, later csrc/cuda/). Inputs are
// assumed valid here; csrc/bindings.cpp validates what Python passes and reports caller mistakes.
#pragma once

#include <cstdint>

namespace rtpose {

// A borrowed (H, W, 3) uint8 image with byte strides, so any numpy view (a crop, frame[::2],
// a negative-stride flip) is read in place without a copy.
struct ImageView {
  const std::uint8_t* data;  // address of pixel (0, 0), channel 0
  std::int64_t height;       // 1 <= height, width <= kMaxImageSide
  std::int64_t width;
  std::int64_t stride_y;  // bytes between rows
  std::int64_t stride_x;  // bytes between pixels
  std::int64_t stride_c;  // bytes between channels
};

// Kernels index pixels with int32 and clamp coordinates to [-2, side].
constexpr std::int64_t kMaxImageSide = (std::int64_t{1} << 30);

struct AffineWarpParams {
  std::int64_t out_h;
  std::int64_t out_w;
  double mean[3];       // output channel order, pixel units (0..255)
  double std[3];        // output channel order, non-zero
  bool rgb;             // output RGB (the frame is BGR) instead of BGR
  double border_value;  // raw pixel value of every neighbour outside the frame
};

// Inverts `n` forward maps (row-major 2x3, dst = M @ [x, y, 1]) into `inverse` (same layout),
// like cv2.invertAffineTransform but in double. Returns the index of the first map that is
// singular or not finite, or -1 when all were inverted.
std::int64_t invert_affine_maps(const double* forward, std::int64_t n, double* inverse);

namespace cpu {

// out: (n, 3, out_h, out_w) float32, C-contiguous. out[i, c, y, x] is the bilinear sample of
// `frame` at inverse[i] @ [x, y, 1], normalised as (sample - mean[c]) / std[c]. Each of the four
// bilinear neighbours that lies outside the frame contributes border_value (cv2 BORDER_CONSTANT).
// Parallel over (crop, output row) with OpenMP when available.
void affine_warp(const ImageView& frame, const double* inverse, std::int64_t n,
                 const AffineWarpParams& params, float* out);

}  // namespace cpu
}  // namespace rtpose
