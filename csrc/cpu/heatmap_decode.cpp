// CPU implementation of rtpose::cpu::decode_heatmaps (contract in rtpose/heatmap_decode.h,
// semantics in rtpose/ops/heatmap_decode.py). The per-map arithmetic is shared with the CUDA
// kernel through rtpose/heatmap_decode_math.h.
#include "rtpose/heatmap_decode.h"

#include <cstdint>
#include <vector>

#include "rtpose/heatmap_decode_math.h"

namespace rtpose {
namespace cpu {
namespace {

// Below this many heatmap elements in the batch, waking the OpenMP team costs more than it saves
// (a single 64x48 person decodes in a few microseconds).
constexpr std::int64_t kMinElementsForThreads = 1 << 16;

// One (n, k) map of the input tensor, read in place with its element strides.
struct MapAt {
  const void* data;
  DType dtype;
  std::int64_t base, stride_y, stride_x;
  float operator()(std::int64_t y, std::int64_t x) const {
    return load_float(data, dtype, base + y * stride_y + x * stride_x);
  }
};

// A row-major H x W float buffer (the blur scratch).
struct BufferAt {
  const float* p;
  std::int64_t width;
  float operator()(std::int64_t y, std::int64_t x) const { return p[y * width + x]; }
};

// Decodes map (n, k) into out[0..2]. scratch: this thread's buffer for the megvii blur.
void decode_one(const HeatmapView& hm, std::int64_t n, std::int64_t k, const double* transform,
                const DecodeParams& params, const BlurWeights& bw, std::vector<float>& scratch,
                float* out) {
  const std::int64_t h = hm.h, w = hm.w;
  const MapAt raw{hm.data, hm.dtype, n * hm.stride_n + k * hm.stride_k, hm.stride_y, hm.stride_x};
  const Peak raw_peak = scan_peak(raw, h, w);
  if (raw_peak.index < 0) {
    store_missing(out);
    return;
  }
  if (params.mode == RefineMode::kMegvii) {
    scratch.resize(static_cast<size_t>(2 * h * w));
    float* rows = scratch.data();  // horizontal pass
    float* blurred = rows + h * w;
    for (std::int64_t y = 0; y < h; ++y) {
      for (std::int64_t x = 0; x < w; ++x) rows[y * w + x] = blur_row_at(raw, w, y, x, bw);
    }
    const BufferAt rows_at{rows, w};
    for (std::int64_t y = 0; y < h; ++y) {
      for (std::int64_t x = 0; x < w; ++x) blurred[y * w + x] = blur_col_at(rows_at, h, y, x, bw);
    }
    const BufferAt blurred_at{blurred, w};
    const Peak peak = scan_peak(blurred_at, h, w);
    if (peak.index < 0) {
      store_missing(out);
      return;
    }
    const std::int64_t py = peak.index / w, px = peak.index % w;
    double x = static_cast<double>(px), y = static_cast<double>(py);
    megvii_offset(blurred_at, h, w, px, py, x, y);
    store_keypoint(transform, params.scale_x, params.scale_y, x, y, megvii_score(raw_peak.value),
                   out);
    return;
  }
  const std::int64_t py = raw_peak.index / w, px = raw_peak.index % w;
  double x = static_cast<double>(px), y = static_cast<double>(py);
  if (params.mode == RefineMode::kQuarter) {
    quarter_offset(raw, h, w, px, py, x, y);
  } else if (params.mode == RefineMode::kDark && dark_applies(h, w, px, py)) {
    double logs[kDarkPoints];
    for (int i = 0; i < kDarkPoints; ++i) {
      int dy, dx;
      dark_point(i, dy, dx);
      logs[i] = dark_log(blur_at(raw, h, w, py + dy, px + dx, bw));
    }
    dark_step(logs, x, y);
  }
  store_keypoint(transform, params.scale_x, params.scale_y, x, y, raw_peak.value, out);
}

}  // namespace

void decode_heatmaps(const HeatmapView& heatmaps, const double* transforms,
                     const DecodeParams& params, float* out) {
  const bool blurs = params.mode == RefineMode::kMegvii || params.mode == RefineMode::kDark;
  const BlurWeights bw = gaussian_weights(blurs ? params.blur_kernel : 1);
  const std::int64_t maps = heatmaps.n * heatmaps.k;
  [[maybe_unused]] const bool use_threads =
      maps > 1 && maps * heatmaps.h * heatmaps.w >= kMinElementsForThreads;
#pragma omp parallel if (use_threads)
  {
    std::vector<float> scratch;  // per thread: no sharing, no allocation per map after the first
#pragma omp for schedule(static)
    for (std::int64_t m = 0; m < maps; ++m) {
      const std::int64_t n = m / heatmaps.k;
      const std::int64_t k = m % heatmaps.k;
      const double* transform = transforms == nullptr ? nullptr : transforms + 6 * n;
      decode_one(heatmaps, n, k, transform, params, bw, scratch, out + 3 * m);
    }
  }
}

}  // namespace cpu
}  // namespace rtpose
