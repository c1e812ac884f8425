// CUDA implementation of rtpose::cuda::box_to_affine (contract: rtpose/box_affine.h): one thread
// per box, so boxes decoded on the GPU become crop maps without a trip to the host.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "rtpose/box_affine.h"

namespace rtpose::cuda {
namespace {

template <bool kF64>
__global__ void box_to_affine_kernel(const void* __restrict__ boxes, std::int64_t box_stride,
                                     std::int64_t n, double out_w, double out_h, double padding,
                                     double* __restrict__ fwd, double* __restrict__ inv) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double box[4];
  for (int k = 0; k < 4; ++k) {
    box[k] = kF64 ? static_cast<const double*>(boxes)[i * box_stride + k]
                  : static_cast<double>(static_cast<const float*>(boxes)[i * box_stride + k]);
  }
  rtpose::box_to_affine(box, out_w, out_h, padding, fwd + 6 * i, inv + 6 * i);
}

}  // namespace

void box_to_affine(const void* boxes, bool boxes_f64, std::int64_t box_stride, std::int64_t n,
                   double out_w, double out_h, double padding, double* fwd, double* inv,
                   void* stream) {
  if (n == 0) return;
  constexpr int kThreads = 128;
  const auto blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  const auto s = static_cast<cudaStream_t>(stream);
  if (boxes_f64) {
    box_to_affine_kernel<true>
        <<<blocks, kThreads, 0, s>>>(boxes, box_stride, n, out_w, out_h, padding, fwd, inv);
  } else {
    box_to_affine_kernel<false>
        <<<blocks, kThreads, 0, s>>>(boxes, box_stride, n, out_w, out_h, padding, fwd, inv);
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("box_to_affine kernel launch: ") + cudaGetErrorName(err) +
                             ": " + cudaGetErrorString(err));
  }
}

}  // namespace rtpose::cuda
