// CPU implementation of rtpose::cpu::affine_warp (see rtpose/affine_warp.h for the contract).
#include "rtpose/affine_warp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "rtpose/affine_warp_math.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rtpose {

std::int64_t invert_affine_maps(const double* forward, std::int64_t n, double* inverse) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (!invert_affine(forward + 6 * i, inverse + 6 * i)) return i;
  }
  return -1;
}

namespace cpu {
namespace {

// Below this many output pixels, waking the OpenMP team costs more than it saves.
constexpr std::int64_t kMinPixelsForThreads = 1 << 16;

// Everything the inner loop needs that does not change across crops and rows. Channel values are
// kept in frame (BGR) order in 4 float lanes (lane 3 unused) so a pixel fits one SIMD register;
// output channel c is lane lane_of_output[c].
struct Kernel {
  ImageView f;
  std::int32_t width, height;  // the frame's, as the int32 taps use them
  int lane_of_output[3];
  float mean[4];        // per lane
  float inv_std[4];     // per lane: multiply instead of dividing per pixel
  float border;         // raw border value, blended like any other neighbour
  float border_out[3];  // per output channel: a pixel whose four neighbours are all outside
};

Kernel make_kernel(const ImageView& frame, const AffineWarpParams& p) {
  Kernel k{};
  k.f = frame;
  k.width = static_cast<std::int32_t>(frame.width);
  k.height = static_cast<std::int32_t>(frame.height);
  k.border = static_cast<float>(p.border_value);
  for (int c = 0; c < 3; ++c) {
    const int lane = p.rgb ? 2 - c : c;  // the frame is BGR
    k.lane_of_output[c] = lane;
    k.mean[lane] = static_cast<float>(p.mean[c]);
    k.inv_std[lane] = static_cast<float>(1.0 / p.std[c]);
    k.border_out[c] = static_cast<float>((p.border_value - p.mean[c]) / p.std[c]);
  }
  return k;
}

// Bilinear taps of one output row: pixel x samples the 2x2 neighbourhood whose top-left is
// (x0[x], y0[x]), with fractions (fx[x], fy[x]) towards the right and bottom neighbours.
struct RowTaps {
  std::vector<std::int32_t> x0, y0;
  std::vector<float> fx, fy;
  explicit RowTaps(std::int64_t out_w) : x0(out_w), y0(out_w), fx(out_w), fy(out_w) {}
};

// Splits a source coordinate into floor and fraction. Coordinates are clamped to [-2, limit]
// first: every point outside [-1, limit) has both neighbours outside, which the clamped value
// still says, and the floor then fits an int32. This operand order sends NaN to -2 (border).
inline void split(double s, double limit, std::int32_t& i, float& frac) {
  s = std::max(-2.0, std::min(s, limit));
  const auto t = static_cast<std::int32_t>(s);            // truncates toward zero
  i = t - (static_cast<double>(t) > s);                   // floor without a libm call
  frac = static_cast<float>(s - static_cast<double>(i));  // in [0, 1)
}

#if defined(__SSE2__)
// split() of two coordinates at once: lane j of s and limit -> i[j], frac[j].
inline void split2(__m128d s, __m128d limit, std::int32_t* i, float* frac) {
  // min_pd returns its 2nd operand for NaN, so NaN -> limit: all border, as in split().
  s = _mm_max_pd(_mm_set1_pd(-2.0), _mm_min_pd(s, limit));
  __m128d fl = _mm_cvtepi32_pd(_mm_cvttpd_epi32(s));                       // truncated
  fl = _mm_sub_pd(fl, _mm_and_pd(_mm_cmpgt_pd(fl, s), _mm_set1_pd(1.0)));  // floored
  _mm_storel_epi64(reinterpret_cast<__m128i*>(i), _mm_cvttpd_epi32(fl));
  const __m128 f = _mm_cvtpd_ps(_mm_sub_pd(s, fl));
  std::memcpy(frac, &f, 2 * sizeof(float));
}
#endif

// Taps of row y for a general map m (inverse, 2x3). The source point moves by (m[0], m[3]) per
// output pixel, so each coordinate costs one multiply-add from the row start.
void general_taps(const Kernel& k, const double* m, std::int64_t y, RowTaps& t) {
  const double row_x = m[1] * static_cast<double>(y) + m[2];
  const double row_y = m[4] * static_cast<double>(y) + m[5];
  const auto out_w = static_cast<std::int64_t>(t.x0.size());
  std::int64_t x = 0;
#if defined(__SSE2__)
  // Lane 0 is the x coordinate, lane 1 the y coordinate of the same output pixel.
  const __m128d start = _mm_set_pd(row_y, row_x);
  const __m128d step = _mm_set_pd(m[3], m[0]);
  const __m128d limit = _mm_set_pd(k.height, k.width);
  for (; x < out_w; ++x) {
    std::int32_t i[2];
    float frac[2];
    split2(_mm_add_pd(start, _mm_mul_pd(step, _mm_set1_pd(static_cast<double>(x)))), limit, i,
           frac);
    t.x0[x] = i[0];
    t.y0[x] = i[1];
    t.fx[x] = frac[0];
    t.fy[x] = frac[1];
  }
#endif
  for (; x < out_w; ++x) {
    split(row_x + m[0] * static_cast<double>(x), k.width, t.x0[x], t.fx[x]);
    split(row_y + m[3] * static_cast<double>(x), k.height, t.y0[x], t.fy[x]);
  }
}

// Axis-aligned maps (m[1] == m[3] == 0: no rotation or shear; letterbox and most crops) are
// separable: the column taps are the same on every row, so only the row taps are recomputed.
void axis_aligned_column_taps(const Kernel& k, const double* m, RowTaps& t) {
  const auto out_w = static_cast<std::int64_t>(t.x0.size());
  for (std::int64_t x = 0; x < out_w; ++x) {
    split(m[2] + m[0] * static_cast<double>(x), k.width, t.x0[x], t.fx[x]);
  }
}

void axis_aligned_row_taps(const Kernel& k, const double* m, std::int64_t y, RowTaps& t) {
  std::int32_t y0;
  float fy;
  split(m[5] + m[4] * static_cast<double>(y), k.height, y0, fy);
  std::fill(t.y0.begin(), t.y0.end(), y0);
  std::fill(t.fy.begin(), t.fy.end(), fy);
}

// Samples a pixel whose four neighbours are all inside the frame, any strides. v: 4 lanes.
inline void sample_inside(const Kernel& k, std::int32_t x0, std::int32_t y0, float fx, float fy,
                          float v[4]) {
  const std::uint8_t* p00 = k.f.data + y0 * k.f.stride_y + x0 * k.f.stride_x;
  const std::uint8_t* p10 = p00 + k.f.stride_y;
  const std::int64_t dx = k.f.stride_x;
  for (int l = 0; l < 3; ++l) {
    const std::int64_t c = l * k.f.stride_c;
    const float top = p00[c] + fx * (p00[c + dx] - p00[c]);
    const float bottom = p10[c] + fx * (p10[c + dx] - p10[c]);
    v[l] = top + fy * (bottom - top);
  }
  v[3] = 0.0f;
}

// Near the edge: each neighbour outside the frame contributes the border value.
inline void sample_edge(const Kernel& k, std::int32_t x0, std::int32_t y0, float fx, float fy,
                        float v[4]) {
  float px[4][3];  // (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)
  for (int j = 0; j < 4; ++j) {
    const std::int64_t x = x0 + (j & 1);
    const std::int64_t y = y0 + (j >> 1);
    if (x >= 0 && y >= 0 && x < k.f.width && y < k.f.height) {
      const std::uint8_t* p = k.f.data + y * k.f.stride_y + x * k.f.stride_x;
      for (int l = 0; l < 3; ++l) px[j][l] = p[l * k.f.stride_c];
    } else {
      for (int l = 0; l < 3; ++l) px[j][l] = k.border;
    }
  }
  for (int l = 0; l < 3; ++l) {
    const float top = px[0][l] + fx * (px[1][l] - px[0][l]);
    const float bottom = px[2][l] + fx * (px[3][l] - px[2][l]);
    v[l] = top + fy * (bottom - top);
  }
  v[3] = 0.0f;
}

// Normalises lanes 0..2 of v into lane_planes[l][x] (the output plane of each frame channel).
inline void store_pixel(const Kernel& k, const float v[4], float* const lane_planes[3],
                        std::int64_t x) {
  for (int l = 0; l < 3; ++l) lane_planes[l][x] = (v[l] - k.mean[l]) * k.inv_std[l];
}

#if defined(__SSE2__)
// The packed layout (stride_x 3, stride_c 1: an OpenCV frame or a row crop of one) keeps both
// horizontal neighbours in 6 consecutive bytes. One 8-byte load per frame row fetches them, which
// reads 2 bytes of the pixel after them: the caller makes sure x0 + 2 < width.
inline __m128 sample_packed(const Kernel& k, std::int32_t x0, std::int32_t y0, float fx, float fy) {
  const std::uint8_t* p00 = k.f.data + y0 * k.f.stride_y + std::int64_t{x0} * 3;
  const __m128i zero = _mm_setzero_si128();
  const auto load = [&](const std::uint8_t* p) {  // 8 bytes -> 8 uint16 lanes
    return _mm_unpacklo_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), zero);
  };
  const auto to_float = [&](__m128i v) { return _mm_cvtepi32_ps(_mm_unpacklo_epi16(v, zero)); };
  const __m128i row0 = load(p00);  // [b0 g0 r0 b1 g1 r1 . .]
  const __m128i row1 = load(p00 + k.f.stride_y);
  const __m128 a = to_float(row0);                     // (x0, y0) in lanes 0..2
  const __m128 b = to_float(_mm_srli_si128(row0, 6));  // (x0 + 1, y0)
  const __m128 c = to_float(row1);
  const __m128 d = to_float(_mm_srli_si128(row1, 6));
  const __m128 wx = _mm_set1_ps(fx);
  const __m128 top = _mm_add_ps(a, _mm_mul_ps(wx, _mm_sub_ps(b, a)));
  const __m128 bottom = _mm_add_ps(c, _mm_mul_ps(wx, _mm_sub_ps(d, c)));
  return _mm_add_ps(top, _mm_mul_ps(_mm_set1_ps(fy), _mm_sub_ps(bottom, top)));
}

inline void store_pixel(const Kernel& k, __m128 v, float* const lane_planes[3], std::int64_t x) {
  v = _mm_mul_ps(_mm_sub_ps(v, _mm_loadu_ps(k.mean)), _mm_loadu_ps(k.inv_std));
  _mm_store_ss(lane_planes[0] + x, v);
  _mm_store_ss(lane_planes[1] + x, _mm_shuffle_ps(v, v, _MM_SHUFFLE(1, 1, 1, 1)));
  _mm_store_ss(lane_planes[2] + x, _mm_movehl_ps(v, v));
}
#endif

// Writes one output row from its taps: planes[c][x] for every x. kPacked selects the SIMD path.
template <bool kPacked>
void sample_row(const Kernel& k, const RowTaps& t, float* const planes[3]) {
  const auto out_w = static_cast<std::int64_t>(t.x0.size());
  float* lane_planes[3];  // output plane of each frame channel
  for (int c = 0; c < 3; ++c) lane_planes[k.lane_of_output[c]] = planes[c];
  // Neighbourhoods with x0 < inside_w, y0 < inside_h lie fully inside (the packed 8-byte load
  // also needs the pixel after the right neighbour). 0 for frames too small to have any.
  const auto inside_w = static_cast<std::uint32_t>(std::max(0, k.width - (kPacked ? 2 : 1)));
  const auto inside_h = static_cast<std::uint32_t>(k.height - 1);
  for (std::int64_t x = 0; x < out_w; ++x) {
    const std::int32_t x0 = t.x0[x];
    const std::int32_t y0 = t.y0[x];
    float v[4];
    // Unsigned compares fold the x0 >= 0 and y0 >= 0 tests in.
    if (static_cast<std::uint32_t>(x0) < inside_w && static_cast<std::uint32_t>(y0) < inside_h) {
#if defined(__SSE2__)
      if constexpr (kPacked) {
        store_pixel(k, sample_packed(k, x0, y0, t.fx[x], t.fy[x]), lane_planes, x);
        continue;
      }
#endif
      sample_inside(k, x0, y0, t.fx[x], t.fy[x], v);
    } else if (x0 < -1 || x0 >= k.width || y0 < -1 || y0 >= k.height) {
      for (int c = 0; c < 3; ++c) planes[c][x] = k.border_out[c];
      continue;
    } else {
      sample_edge(k, x0, y0, t.fx[x], t.fy[x], v);
    }
    store_pixel(k, v, lane_planes, x);
  }
}

}  // namespace

void affine_warp(const ImageView* frames, const std::int32_t* frame_index, const double* inverse,
                 std::int64_t n, const AffineWarpParams& params, void* out) {
  // One set of constants per frame a crop reads.
  std::int64_t num_frames = 1;
  for (std::int64_t i = 0; frame_index != nullptr && i < n; ++i) {
    num_frames = std::max<std::int64_t>(num_frames, std::int64_t{frame_index[i]} + 1);
  }
  std::vector<Kernel> kernels;
  std::vector<char> packed;
  for (std::int64_t f = 0; f < num_frames; ++f) {
    kernels.push_back(make_kernel(frames[f], params));
    packed.push_back(frames[f].stride_x == 3 && frames[f].stride_c == 1);
  }
  const bool half = params.out_dtype == DType::kFloat16;
  const std::int64_t out_h = params.out_h;
  const std::int64_t out_w = params.out_w;
  const std::int64_t plane = out_h * out_w;
  const std::int64_t rows = n * out_h;
  [[maybe_unused]] const bool use_threads = rows * out_w >= kMinPixelsForThreads;
#pragma omp parallel if (use_threads)
  {
    RowTaps taps(out_w);
    std::int64_t columns_of = -1;  // crop whose axis-aligned column taps `taps` holds
    // float16 output: a row is computed in float here, then rounded into the output.
    std::vector<float> row_buffer(half ? static_cast<size_t>(3 * out_w) : 0);
    // One task per (crop, output row): balances one big letterbox and many small crops alike.
#pragma omp for schedule(static)
    for (std::int64_t task = 0; task < rows; ++task) {
      const std::int64_t i = task / out_h;
      const std::int64_t y = task % out_h;
      const std::int64_t f = frame_index != nullptr ? frame_index[i] : 0;
      const Kernel& k = kernels[static_cast<size_t>(f)];
      const double* m = inverse + 6 * i;
      if (m[1] == 0.0 && m[3] == 0.0) {
        if (columns_of != i) axis_aligned_column_taps(k, m, taps);
        columns_of = i;
        axis_aligned_row_taps(k, m, y, taps);
      } else {
        general_taps(k, m, y, taps);
        columns_of = -1;
      }
      const std::int64_t offset = i * 3 * plane + y * out_w;
      float* row = half ? row_buffer.data() : static_cast<float*>(out) + offset;
      const std::int64_t step = half ? out_w : plane;
      float* const planes[3] = {row, row + step, row + 2 * step};
      if (packed[static_cast<size_t>(f)]) {
        sample_row<true>(k, taps, planes);
      } else {
        sample_row<false>(k, taps, planes);
      }
      if (half) {
        auto* dst = static_cast<std::uint16_t*>(out) + offset;
        for (int c = 0; c < 3; ++c) {
          for (std::int64_t x = 0; x < out_w; ++x) {
            dst[c * plane + x] = float_to_half_bits(planes[c][x]);
          }
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace rtpose
