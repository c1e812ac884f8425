// CUDA implementation of rtpose::cuda::affine_warp (contract: rtpose/affine_warp.h).
//
// One thread per output pixel, 32 x 8 blocks over (x, y), grid.z over crops. Each thread inverts
// its crop's forward map (a handful of double operations, cheaper than a second launch), finds
// its source point, and blends the four neighbours with the per-pixel code the CPU kernel shares
// (rtpose/affine_warp_math.h), so both produce the same bits. Writes are coalesced along x in
// each of the three output planes; reads are gathers served by L1/L2.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "rtpose/affine_warp.h"
#include "rtpose/affine_warp_math.h"

namespace rtpose::cuda {
namespace {

struct FrameTable {
  ImageView frames[kMaxFramesPerLaunch];
  WarpConstants constants[kMaxFramesPerLaunch];
};

constexpr int kBlockX = 32;
constexpr int kBlockY = 8;
constexpr std::int64_t kMaxGridZ = 65535;

template <bool kForwardF64>
__global__ void affine_warp_kernel(const __grid_constant__ FrameTable table,
                                   const std::int32_t* __restrict__ frame_index,
                                   const void* __restrict__ forward, std::int64_t crop_offset,
                                   std::int64_t out_h, std::int64_t out_w, DType out_dtype,
                                   void* __restrict__ out) {
  const std::int64_t x = static_cast<std::int64_t>(blockIdx.x) * kBlockX + threadIdx.x;
  const std::int64_t y = static_cast<std::int64_t>(blockIdx.y) * kBlockY + threadIdx.y;
  const std::int64_t i = crop_offset + blockIdx.z;
  if (x >= out_w || y >= out_h) return;

  double m[6];
  for (int k = 0; k < 6; ++k) {
    m[k] = kForwardF64 ? static_cast<const double*>(forward)[6 * i + k]
                       : static_cast<double>(static_cast<const float*>(forward)[6 * i + k]);
  }
  const int f = frame_index != nullptr ? frame_index[i] : 0;
  const WarpConstants& k = table.constants[f];
  float value[3];
  double inv[6];
  if (invert_affine(m, inv)) {
    double sx, sy;
    source_point(inv, x, y, sx, sy);
    std::int32_t x0, y0;
    float fx, fy;
    split_coordinate(sx, static_cast<double>(k.width), x0, fx);
    split_coordinate(sy, static_cast<double>(k.height), y0, fy);
    warp_pixel(table.frames[f], k, x0, y0, fx, fy, value);
  } else {
    for (int c = 0; c < 3; ++c) value[c] = k.border_out[c];
  }
  const std::int64_t plane = out_h * out_w;
  const std::int64_t base = i * 3 * plane + y * out_w + x;
  for (int c = 0; c < 3; ++c) store_float(out, out_dtype, base + c * plane, value[c]);
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(err) + ": " +
                             cudaGetErrorString(err));
  }
}

}  // namespace

void affine_warp(const ImageView* frames, int num_frames, const std::int32_t* frame_index,
                 const void* forward, bool forward_f64, std::int64_t n,
                 const AffineWarpParams& params, void* out, void* stream) {
  if (num_frames < 1 || num_frames > kMaxFramesPerLaunch) {
    throw std::invalid_argument("affine_warp: between 1 and " +
                                std::to_string(kMaxFramesPerLaunch) + " frames per launch, got " +
                                std::to_string(num_frames));
  }
  if (n == 0) return;
  FrameTable table{};
  for (int f = 0; f < num_frames; ++f) {
    table.frames[f] = frames[f];
    table.constants[f] = warp_constants(frames[f], params);
  }
  const dim3 block(kBlockX, kBlockY);
  const auto blocks_x = static_cast<unsigned>((params.out_w + kBlockX - 1) / kBlockX);
  const auto blocks_y = static_cast<unsigned>((params.out_h + kBlockY - 1) / kBlockY);
  const auto s = static_cast<cudaStream_t>(stream);
  for (std::int64_t first = 0; first < n; first += kMaxGridZ) {
    const auto count = static_cast<unsigned>(n - first < kMaxGridZ ? n - first : kMaxGridZ);
    const dim3 grid(blocks_x, blocks_y, count);
    if (forward_f64) {
      affine_warp_kernel<true><<<grid, block, 0, s>>>(
          table, frame_index, forward, first, params.out_h, params.out_w, params.out_dtype, out);
    } else {
      affine_warp_kernel<false><<<grid, block, 0, s>>>(
          table, frame_index, forward, first, params.out_h, params.out_w, params.out_dtype, out);
    }
    check_launch("affine_warp kernel launch");
  }
}

}  // namespace rtpose::cuda
