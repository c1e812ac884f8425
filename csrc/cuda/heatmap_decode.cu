// CUDA implementation of rtpose::cuda::decode_heatmaps (contract in rtpose/heatmap_decode.h,
// semantics in rtpose/ops/heatmap_decode.py).
//
// One block per (n, k) map. The peak is a block reduction with the argmax rule's `better`, a
// strict total order, so it equals the CPU's sequential scan whatever the reduction order. The
// refinement runs the shared per-map code of rtpose/heatmap_decode_math.h, so CPU and GPU compute
// the same numbers. argmax / quarter read the map straight from global memory (no size limit);
// megvii blurs the whole map in shared memory (map + horizontal pass: 2 * H * W floats); dark
// keeps the map in shared memory (H * W floats) and 13 threads blur one point each.
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "rtpose/heatmap_decode.h"
#include "rtpose/heatmap_decode_math.h"

namespace rtpose {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Dynamic shared memory every kernel may use without opting in.
constexpr std::int64_t kDefaultSharedBytes = 48 * 1024;

struct KernelParams {
  HeatmapView hm;
  const double* transforms;  // (N, 2, 3) device, or nullptr
  RefineMode mode;
  double scale_x, scale_y;
  BlurWeights bw;
  float* out;  // (N, K, 3)
};

struct GlobalAt {
  const void* data;
  DType dtype;
  std::int64_t base, stride_y, stride_x;
  __device__ float operator()(std::int64_t y, std::int64_t x) const {
    return load_float(data, dtype, base + y * stride_y + x * stride_x);
  }
};

struct SharedAt {
  const float* p;
  std::int64_t width;
  __device__ float operator()(std::int64_t y, std::int64_t x) const { return p[y * width + x]; }
};

__device__ Peak shfl_down(const Peak& p, int offset) {
  Peak o;
  o.value = __shfl_down_sync(0xffffffffu, p.value, offset);
  o.index = __shfl_down_sync(0xffffffffu, static_cast<long long>(p.index), offset);
  return o;
}

// Block-wide argmax: every thread passes its own candidate and gets the block's peak.
// Contains __syncthreads: call it from all threads.
__device__ Peak block_peak(Peak p) {
  __shared__ Peak warp_best[kWarps];
  __shared__ Peak result;
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Peak o = shfl_down(p, offset);
    if (better(o, p)) p = o;
  }
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  if (lane == 0) warp_best[warp] = p;
  __syncthreads();
  if (warp == 0) {
    p = lane < kWarps ? warp_best[lane] : no_peak();
    for (int offset = 16; offset > 0; offset >>= 1) {
      const Peak o = shfl_down(p, offset);
      if (better(o, p)) p = o;
    }
    if (lane == 0) result = p;
  }
  __syncthreads();
  return result;
}

__global__ void __launch_bounds__(kThreads) decode_kernel(const KernelParams p) {
  extern __shared__ float smem[];
  __shared__ double logs[kDarkPoints];
  const std::int64_t m = blockIdx.x;
  const std::int64_t n = m / p.hm.k;
  const std::int64_t k = m - n * p.hm.k;
  const std::int64_t h = p.hm.h, w = p.hm.w;
  const unsigned size = static_cast<unsigned>(h * w);  // < 2^31, checked by the binding
  const unsigned width = static_cast<unsigned>(w);
  const GlobalAt raw{p.hm.data, p.hm.dtype, n * p.hm.stride_n + k * p.hm.stride_k, p.hm.stride_y,
                     p.hm.stride_x};
  const bool in_shared = p.mode == RefineMode::kMegvii || p.mode == RefineMode::kDark;
  float* out = p.out + 3 * m;
  const double* transform = p.transforms == nullptr ? nullptr : p.transforms + 6 * n;

  // Raw peak (megvii needs the raw maximum for its score).
  Peak mine = no_peak();
  for (unsigned i = threadIdx.x; i < size; i += kThreads) {
    const unsigned y = i / width, x = i - y * width;
    const float v = raw(y, x);
    if (in_shared) smem[i] = v;
    consider(mine, v, i);
  }
  const Peak raw_peak = block_peak(mine);  // its __syncthreads also publishes smem
  if (raw_peak.index < 0) {
    if (threadIdx.x == 0) store_missing(out);
    return;  // uniform: every thread saw the same raw_peak
  }

  if (p.mode == RefineMode::kMegvii) {
    float* map = smem;
    float* rows = smem + size;
    const SharedAt map_at{map, w};
    for (unsigned i = threadIdx.x; i < size; i += kThreads) {
      const unsigned y = i / width, x = i - y * width;
      rows[i] = blur_row_at(map_at, w, y, x, p.bw);
    }
    __syncthreads();
    // The vertical pass overwrites the map (no longer needed: its maximum is known).
    const SharedAt rows_at{rows, w};
    mine = no_peak();
    for (unsigned i = threadIdx.x; i < size; i += kThreads) {
      const unsigned y = i / width, x = i - y * width;
      const float b = blur_col_at(rows_at, h, y, x, p.bw);
      map[i] = b;
      consider(mine, b, i);
    }
    const Peak peak = block_peak(mine);
    if (threadIdx.x != 0) return;
    if (peak.index < 0) {
      store_missing(out);
      return;
    }
    const std::int64_t py = peak.index / w, px = peak.index % w;
    double x = static_cast<double>(px), y = static_cast<double>(py);
    megvii_offset(map_at, h, w, px, py, x, y);
    store_keypoint(transform, p.scale_x, p.scale_y, x, y, megvii_score(raw_peak.value), out);
    return;
  }

  const std::int64_t py = raw_peak.index / w, px = raw_peak.index % w;
  double x = static_cast<double>(px), y = static_cast<double>(py);
  if (p.mode == RefineMode::kDark) {
    if (!dark_applies(h, w, px, py)) {
      if (threadIdx.x == 0)
        store_keypoint(transform, p.scale_x, p.scale_y, x, y, raw_peak.value, out);
      return;
    }
    if (threadIdx.x < kDarkPoints) {
      int dy, dx;
      dark_point(threadIdx.x, dy, dx);
      const SharedAt map_at{smem, w};
      logs[threadIdx.x] = dark_log(blur_at(map_at, h, w, py + dy, px + dx, p.bw));
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    dark_step(logs, x, y);
  } else {
    if (threadIdx.x != 0) return;
    if (p.mode == RefineMode::kQuarter) quarter_offset(raw, h, w, px, py, x, y);
  }
  store_keypoint(transform, p.scale_x, p.scale_y, x, y, raw_peak.value, out);
}

}  // namespace

void decode_heatmaps(const HeatmapView& heatmaps, const double* transforms,
                     const DecodeParams& params, float* out, void* stream) {
  const std::int64_t maps = heatmaps.n * heatmaps.k;
  if (maps == 0) return;
  if (heatmaps.h * heatmaps.w >= (std::int64_t{1} << 31) || maps >= (std::int64_t{1} << 31)) {
    throw std::runtime_error("decode_heatmaps (CUDA): too many maps or map elements");
  }
  KernelParams p{};
  p.hm = heatmaps;
  p.transforms = transforms;
  p.mode = params.mode;
  p.scale_x = params.scale_x;
  p.scale_y = params.scale_y;
  const bool blurs = params.mode == RefineMode::kMegvii || params.mode == RefineMode::kDark;
  p.bw = gaussian_weights(blurs ? params.blur_kernel : 1);
  p.out = out;
  const std::int64_t bytes =
      decode_shared_floats(params.mode, heatmaps.h, heatmaps.w) * std::int64_t{sizeof(float)};
  if (bytes > kDefaultSharedBytes) {
    int device = 0;
    int limit = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
            cudaSuccess ||
        bytes > limit) {
      cudaGetLastError();  // clear a failed query's error
      throw std::runtime_error("decode_heatmaps (CUDA): " + std::to_string(bytes) +
                               " bytes of shared memory needed, the device allows " +
                               std::to_string(limit));
    }
    const cudaError_t err = cudaFuncSetAttribute(
        decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    if (err != cudaSuccess) {
      throw std::runtime_error(std::string("decode_heatmaps (CUDA): cudaFuncSetAttribute: ") +
                               cudaGetErrorString(err));
    }
  }
  decode_kernel<<<static_cast<unsigned>(maps), kThreads, static_cast<size_t>(bytes),
                  static_cast<cudaStream_t>(stream)>>>(p);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("decode_heatmaps (CUDA): kernel launch failed: ") +
                             cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
  }
}

}  // namespace cuda
}  // namespace rtpose
