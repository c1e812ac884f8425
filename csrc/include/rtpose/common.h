// Definitions shared by every kernel, on the host (csrc/cpu/) and on the device (csrc/cuda/).
//
// Functions marked RTPOSE_HD compile for both, so the CPU and CUDA implementations of an op run
// literally the same per-element arithmetic. nvcc would otherwise contract a * b + c into one
// fused multiply-add (a different rounding than the CPU's separate multiply and add), so device
// code does its floating-point steps through mul_rn / add_rn, and CMake builds the host code with
// -ffp-contract=off.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define RTPOSE_HD __host__ __device__ __forceinline__
#else
#define RTPOSE_HD inline
#endif

namespace rtpose {

// Element types of float tensors crossing the bindings. Values are part of the binding ABI.
enum class DType : int { kFloat32 = 0, kFloat16 = 1 };

RTPOSE_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

RTPOSE_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

RTPOSE_HD double dmul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

RTPOSE_HD double dadd_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

// IEEE half (binary16) bits -> float. Exact for every input (subnormals, inf, NaN included).
RTPOSE_HD float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1fu) {  // inf / NaN
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {  // normal
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {  // +-0
    bits = sign;
  } else {  // subnormal: renormalise
    std::uint32_t e = 113u;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
#if defined(__CUDA_ARCH__)
  f = __uint_as_float(bits);
#else
  std::memcpy(&f, &bits, sizeof f);
#endif
  return f;
}

// float -> IEEE half bits, round to nearest even (numpy's astype(float16), CUDA __float2half_rn).
// Overflow gives inf, NaN stays NaN (quiet).
RTPOSE_HD std::uint16_t float_to_half_bits(float f) {
  std::uint32_t x;
#if defined(__CUDA_ARCH__)
  x = __float_as_uint(f);
#else
  std::memcpy(&x, &f, sizeof x);
#endif
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN
    return static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (abs < 0x33000000u) return sign;  // below half of the smallest subnormal (2^-25): zero
    const std::uint32_t e = abs >> 23;
    const std::uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - e;  // value = m * 2^(e - 150); half subnormal unit 2^-24
    std::uint32_t h = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  // Normal: rebias the exponent (127 -> 15), keep 10 mantissa bits, round to nearest even.
  std::uint32_t h = ((abs >> 13) - (112u << 10));
  const std::uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: fine
  return static_cast<std::uint16_t>(sign | h);
}

// Reads element i of a float32 or float16 buffer as float.
RTPOSE_HD float load_float(const void* data, DType dtype, std::int64_t i) {
  if (dtype == DType::kFloat16) {
    return half_bits_to_float(static_cast<const std::uint16_t*>(data)[i]);
  }
  return static_cast<const float*>(data)[i];
}

// Writes v as element i of a float32 or float16 buffer (float16: round to nearest even).
RTPOSE_HD void store_float(void* data, DType dtype, std::int64_t i, float v) {
  if (dtype == DType::kFloat16) {
    static_cast<std::uint16_t*>(data)[i] = float_to_half_bits(v);
  } else {
    static_cast<float*>(data)[i] = v;
  }
}

// The argmax rule of every decoder, identical in C++, CUDA and numpy:
// the peak is the largest non-NaN value; among equal values the smallest flat index wins
// (row-major: smallest y, then smallest x); NaN never wins; with no non-NaN value there is no
// peak (index -1). `Peak` values combine in any order (a parallel reduction gives the same answer
// as a sequential scan) because `better` is a strict total order on candidates.
struct Peak {
  float value;
  std::int64_t index;  // -1: no candidate yet
};

RTPOSE_HD Peak no_peak() { return Peak{0.0f, -1}; }

RTPOSE_HD bool better(const Peak& a, const Peak& b) {
  if (a.index < 0) return false;
  if (b.index < 0) return true;
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// Folds candidate (value, index) into p; NaN values are skipped.
RTPOSE_HD void consider(Peak& p, float value, std::int64_t index) {
  if (value != value) return;  // NaN
  const Peak c{value, index};
  if (better(c, p)) p = c;
}

// -1, 0 or +1; 0 for NaN (so a NaN neighbour never moves a keypoint).
RTPOSE_HD float sign_of(float d) { return static_cast<float>((d > 0.0f) - (d < 0.0f)); }

}  // namespace rtpose
