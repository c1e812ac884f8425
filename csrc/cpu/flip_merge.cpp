// CPU implementation of rtpose::cpu::flip_merge (contract in rtpose/heatmap_decode.h).
#include <cstdint>

#include "rtpose/flip_merge_math.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose::cpu {
namespace {

// Below this many output elements, waking the OpenMP team costs more than it saves.
constexpr std::int64_t kMinElementsForThreads = 1 << 16;

}  // namespace

void flip_merge(const HeatmapView& original, const HeatmapView& flipped,
                const std::int32_t* flip_index, bool shift, void* out) {
  const std::int64_t maps = original.n * original.k;
  const std::int64_t h = original.h;
  const std::int64_t w = original.w;
  [[maybe_unused]] const bool use_threads = maps * h * w >= kMinElementsForThreads;
  // One task per (n, k) map; the output is written row by row, contiguously.
#pragma omp parallel for schedule(static) if (use_threads)
  for (std::int64_t m = 0; m < maps; ++m) {
    const std::int64_t n = m / original.k;
    const std::int64_t k = m % original.k;
    std::int64_t i = m * h * w;
    for (std::int64_t y = 0; y < h; ++y) {
      for (std::int64_t x = 0; x < w; ++x, ++i) {
        const float v = flip_merge_element(original, flipped, flip_index, shift, n, k, y, x);
        store_float(out, original.dtype, i, v);
      }
    }
  }
}

}  // namespace rtpose::cpu
