// CUDA implementation of rtpose::cuda::decode_simcc (contract in rtpose/heatmap_decode.h).
//
// One warp per (n, k) keypoint: each lane folds every 32nd element of the x and y vectors into a
// Peak, then the warp combines the lanes' peaks with `better`. The argmax rule is a strict total
// order, so the result is the CPU's sequential scan exactly, whatever the reduction order.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "rtpose/heatmap_decode.h"
#include "rtpose/simcc_decode_math.h"

namespace rtpose::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr std::int64_t kMaxBlocks = 1 << 16;

__device__ Peak warp_best(Peak p) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    Peak other;
    other.value = __shfl_down_sync(0xffffffffu, p.value, offset);
    other.index = __shfl_down_sync(0xffffffffu, static_cast<long long>(p.index), offset);
    if (better(other, p)) p = other;
  }
  return p;  // lane 0 holds the warp's best
}

__global__ void decode_simcc_kernel(VectorView simcc_x, VectorView simcc_y, double split_ratio,
                                    const double* transforms, float* out, std::int64_t rows) {
  const int lane = threadIdx.x % kWarp;
  const std::int64_t warp =
      static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * kWarpsPerBlock;
  // The loop bound is uniform across a warp, so every lane takes part in each shuffle.
  for (std::int64_t r = warp; r < rows; r += warps) {
    const std::int64_t n = r / simcc_x.k;
    const std::int64_t k = r % simcc_x.k;
    const Peak px = warp_best(simcc_partial_peak(simcc_x, n, k, lane, kWarp));
    const Peak py = warp_best(simcc_partial_peak(simcc_y, n, k, lane, kWarp));
    if (lane == 0) {
      simcc_keypoint(px, py, split_ratio, transforms == nullptr ? nullptr : transforms + 6 * n,
                     out + 3 * r);
    }
  }
}

}  // namespace

void decode_simcc(const VectorView& simcc_x, const VectorView& simcc_y, double split_ratio,
                  const double* transforms, float* out, void* stream) {
  const std::int64_t rows = simcc_x.n * simcc_x.k;
  if (rows == 0) return;
  const std::int64_t blocks = std::min((rows + kWarpsPerBlock - 1) / kWarpsPerBlock, kMaxBlocks);
  decode_simcc_kernel<<<static_cast<unsigned>(blocks), kWarp * kWarpsPerBlock, 0,
                        static_cast<cudaStream_t>(stream)>>>(simcc_x, simcc_y, split_ratio,
                                                             transforms, out, rows);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("decode_simcc: CUDA kernel launch failed: ") +
                             cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
  }
}

}  // namespace rtpose::cuda
