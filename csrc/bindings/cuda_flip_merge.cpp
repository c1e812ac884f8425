// Binding of the GPU flip merge (csrc/cuda/flip_merge.cu). rtpose/ops/flip_merge.py validates
// the arrays (shapes, dtypes, devices) before the call; the checks here only keep a direct call
// with inconsistent integers from launching a kernel on nonsense.
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>

#include "bindings/common.h"
#include "bindings/cuda_common.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose::bindings {
namespace {

using Shape4 = std::array<std::int64_t, 4>;

std::string values_str(const Shape4& v) {
  return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ", " + std::to_string(v[2]) +
         ", " + std::to_string(v[3]) + ")";
}

void cuda_flip_merge(std::uintptr_t a_ptr, const Shape4& a_strides, std::uintptr_t b_ptr,
                     const Shape4& b_strides, int dtype_code, const Shape4& shape,
                     std::uintptr_t flip_index_ptr, bool shift, std::uintptr_t out_ptr, int device,
                     std::uintptr_t stream) {
  if (dtype_code != static_cast<int>(DType::kFloat32) &&
      dtype_code != static_cast<int>(DType::kFloat16)) {
    throw py::value_error("flip_merge: dtype_code must be 0 (float32) or 1 (float16), got " +
                          std::to_string(dtype_code));
  }
  if (shape[0] < 0 || shape[1] < 0 || shape[2] < 1 || shape[3] < 1) {
    throw py::value_error(
        "flip_merge: shape must be (N, K, H, W) with N, K >= 0 and H, W >= 1, "
        "got " +
        values_str(shape));
  }
  const auto dtype = static_cast<DType>(dtype_code);
  const HeatmapView a{device_ptr<const void>(a_ptr),
                      dtype,
                      shape[0],
                      shape[1],
                      shape[2],
                      shape[3],
                      a_strides[0],
                      a_strides[1],
                      a_strides[2],
                      a_strides[3]};
  const HeatmapView b{device_ptr<const void>(b_ptr),
                      dtype,
                      shape[0],
                      shape[1],
                      shape[2],
                      shape[3],
                      b_strides[0],
                      b_strides[1],
                      b_strides[2],
                      b_strides[3]};
  if (shape[0] * shape[1] == 0) return;
  if (a_ptr == 0 || b_ptr == 0 || flip_index_ptr == 0 || out_ptr == 0) {
    throw py::value_error(
        "flip_merge: heatmaps, flipped, flip_indices and out pointers must be "
        "non-null device addresses");
  }
  py::gil_scoped_release no_gil;
  DeviceGuard guard(device);
  cuda::flip_merge(a, b, device_ptr<const std::int32_t>(flip_index_ptr), shift,
                   device_ptr<void>(out_ptr), stream_ptr(stream));
}

}  // namespace

void bind_cuda_flip_merge(py::module_& m) {
  m.def("flip_merge", &cuda_flip_merge, py::arg("heatmaps_ptr"), py::arg("heatmaps_strides"),
        py::arg("flipped_ptr"), py::arg("flipped_strides"), py::arg("dtype_code"), py::arg("shape"),
        py::arg("flip_index_ptr"), py::arg("shift"), py::arg("out_ptr"), py::arg("device"),
        py::arg("stream"),
        "Queues the flip merge on `stream` (private: use rtpose.ops.flip_merge). Strides are in "
        "elements; out is C-contiguous.");
}

}  // namespace rtpose::bindings
