// Batched affine warp: crop + resize + channel reorder + normalise + HWC -> CHW in one pass.
//
// One declaration shared by every backend (csrc/cpu/affine_warp.cpp, csrc/cuda/affine_warp.cu).
// Inputs are assumed valid here; the bindings and rtpose/ops/affine.py validate what Python
// passes and report caller mistakes.
#pragma once

#include <cstdint>

#include "rtpose/common.h"

namespace rtpose {

// A borrowed (H, W, 3) uint8 image with byte strides, so any view (a crop, frame[::2], a
// negative-stride flip) is read in place without a copy. `data` is host or device memory.
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

// Frames one GPU launch can read (they travel as a kernel parameter).
constexpr int kMaxFramesPerLaunch = 64;

struct AffineWarpParams {
  std::int64_t out_h;
  std::int64_t out_w;
  double mean[3];       // output channel order, pixel units (0..255)
  double std[3];        // output channel order, non-zero
  bool rgb;             // output RGB (the frame is BGR) instead of BGR
  double border_value;  // raw pixel value of every neighbour outside the frame
  DType out_dtype;      // float32 or float16 (round to nearest even)
};

// Inverts `n` forward maps (row-major 2x3, dst = M @ [x, y, 1]) into `inverse` (same layout),
// like cv2.invertAffineTransform but in double. Returns the index of the first map that is
// singular or not finite, or -1 when all were inverted.
std::int64_t invert_affine_maps(const double* forward, std::int64_t n, double* inverse);

namespace cpu {

// out: (n, 3, out_h, out_w) of params.out_dtype, C-contiguous. Crop i samples
// frames[frame_index[i]] (frame_index null: frames[0]); out[i, c, y, x] is the bilinear sample
// at inverse[i] @ [x, y, 1], normalised as (sample - mean[c]) / std[c]. Each of the four
// bilinear neighbours that lies outside the frame contributes border_value (cv2
// BORDER_CONSTANT). Parallel over (crop, output row) with OpenMP when available.
void affine_warp(const ImageView* frames, const std::int32_t* frame_index, const double* inverse,
                 std::int64_t n, const AffineWarpParams& params, void* out);

}  // namespace cpu

namespace cuda {

// Same result on the GPU. frames: host array of num_frames (<= kMaxFramesPerLaunch) views of
// device images; frame_index: device int32 (n,) or null; forward: device (n, 2, 3) FORWARD maps,
// float64 (forward_f64) or float32, inverted per crop on the device (a singular or non-finite
// map gives a crop filled with the border value: the GPU cannot raise without synchronising);
// out: device memory. Queued on `stream` (a cudaStream_t); throws std::runtime_error on a launch
// error.
void affine_warp(const ImageView* frames, int num_frames, const std::int32_t* frame_index,
                 const void* forward, bool forward_f64, std::int64_t n,
                 const AffineWarpParams& params, void* out, void* stream);

}  // namespace cuda
}  // namespace rtpose
