// Heatmap decoding and flip merging: declarations shared by the CPU (csrc/cpu/)
// and CUDA (csrc/cuda/) implementations. The numpy references in rtpose/ops/ define the same
// results; rtpose/ops/*.py documents the semantics for users.
//
// Inputs are assumed valid here: the Python layer (rtpose/ops) and csrc/bindings/ validate.
#pragma once

#include <cstdint>

#include "rtpose/common.h"

namespace rtpose {

// A borrowed (N, K, H, W) float32/float16 tensor. Strides are in elements, any sign or order
// (a half of a batch, a channel slice, a flipped view are all read in place).
struct HeatmapView {
  const void* data;
  DType dtype;
  std::int64_t n, k, h, w;
  std::int64_t stride_n, stride_k, stride_y, stride_x;
};

// Values are part of the binding ABI (rtpose/ops/heatmap_decode.py uses the same numbers).
enum class RefineMode : int { kArgmax = 0, kQuarter = 1, kMegvii = 2, kDark = 3 };

struct DecodeParams {
  RefineMode mode;
  int blur_kernel;  // odd, >= 1: Gaussian blur size of kMegvii and kDark (ignored otherwise)
  double scale_x;   // heatmap -> crop-input scale applied before the transform (input_w / W)
  double scale_y;
};

// Maximum blur kernel size; larger kernels are refused by the bindings.
constexpr int kMaxBlurKernel = 31;

namespace cpu {

// out: (N, K, 3) float32 C-contiguous: x, y, score. transforms: (N, 2, 3) row-major float64
// crop-input -> image maps, or nullptr for identity. Parallel over (n, k) heatmaps.
void decode_heatmaps(const HeatmapView& heatmaps, const double* transforms,
                     const DecodeParams& params, float* out);

// out: (N, K, H, W) C-contiguous, dtype of `original` (which `flipped` shares):
// out[n,k,y,x] = 0.5 * (original[n,k,y,x] + flipped[n, flip_index[k], y, sx(x)]) with
// sx(x) = W-1-x, or with shift: W-1 for x == 0 and W-x otherwise. flip_index: K int32 in [0, K).
void flip_merge(const HeatmapView& original, const HeatmapView& flipped,
                const std::int32_t* flip_index, bool shift, void* out);

}  // namespace cpu

namespace cuda {

// Same contracts on device memory: every pointer is device memory on the current device, the
// work is queued on `stream` (a cudaStream_t) and nothing waits for it. `transforms` and
// `flip_index` point to device memory too. Launch errors throw std::runtime_error.
void decode_heatmaps(const HeatmapView& heatmaps, const double* transforms,
                     const DecodeParams& params, float* out, void* stream);
void flip_merge(const HeatmapView& original, const HeatmapView& flipped,
                const std::int32_t* flip_index, bool shift, void* out, void* stream);

}  // namespace cuda
}  // namespace rtpose
