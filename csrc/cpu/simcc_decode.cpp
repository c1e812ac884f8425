// CPU implementation of rtpose::cpu::decode_simcc (contract in rtpose/heatmap_decode.h).
#include <cstdint>

#include "rtpose/heatmap_decode.h"
#include "rtpose/simcc_decode_math.h"

namespace rtpose::cpu {
namespace {

// Below this many vector elements, waking the OpenMP team costs more than it saves.
constexpr std::int64_t kMinElementsForThreads = 1 << 16;

}  // namespace

void decode_simcc(const VectorView& simcc_x, const VectorView& simcc_y, double split_ratio,
                  const double* transforms, float* out) {
  const std::int64_t rows = simcc_x.n * simcc_x.k;
  [[maybe_unused]] const bool use_threads =
      rows * (simcc_x.len + simcc_y.len) >= kMinElementsForThreads;
#pragma omp parallel for schedule(static) if (use_threads)
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t n = r / simcc_x.k;
    const std::int64_t k = r % simcc_x.k;
    const Peak px = simcc_partial_peak(simcc_x, n, k, 0, 1);
    const Peak py = simcc_partial_peak(simcc_y, n, k, 0, 1);
    simcc_keypoint(px, py, split_ratio, transforms == nullptr ? nullptr : transforms + 6 * n,
                   out + 3 * r);
  }
}

}  // namespace rtpose::cpu
