// CUDA implementation of rtpose::cuda::flip_merge (contract in rtpose/heatmap_decode.h).
//
// One thread per output element in a grid-stride loop over the flat C-contiguous output index,
// so consecutive threads write consecutive addresses (and read consecutive original columns).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "rtpose/flip_merge_math.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose::cuda {
namespace {

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU; larger outputs loop (grid stride).
constexpr std::int64_t kMaxBlocks = 1 << 16;

__global__ void flip_merge_kernel(HeatmapView original, HeatmapView flipped,
                                  const std::int32_t* flip_index, bool shift, void* out,
                                  std::int64_t total) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const std::int64_t x = i % original.w;
    std::int64_t rest = i / original.w;
    const std::int64_t y = rest % original.h;
    rest /= original.h;
    const std::int64_t k = rest % original.k;
    const std::int64_t n = rest / original.k;
    store_float(out, original.dtype, i,
                flip_merge_element(original, flipped, flip_index, shift, n, k, y, x));
  }
}

}  // namespace

void flip_merge(const HeatmapView& original, const HeatmapView& flipped,
                const std::int32_t* flip_index, bool shift, void* out, void* stream) {
  const std::int64_t total = original.n * original.k * original.h * original.w;
  if (total == 0) return;
  const std::int64_t blocks = std::min((total + kThreads - 1) / kThreads, kMaxBlocks);
  flip_merge_kernel<<<static_cast<unsigned>(blocks), kThreads, 0,
                      static_cast<cudaStream_t>(stream)>>>(original, flipped, flip_index, shift,
                                                           out, total);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("flip_merge: CUDA kernel launch failed: ") +
                             cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
  }
}

}  // namespace rtpose::cuda
