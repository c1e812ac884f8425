// Binding of the GPU SimCC decoder (csrc/cuda/simcc_decode.cu). rtpose/ops/simcc_decode.py
// validates the arrays (shapes, dtypes, devices) before the call; the checks here only keep a
// direct call with inconsistent integers from launching a kernel on nonsense.
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <string>

#include "bindings/common.h"
#include "bindings/cuda_common.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose::bindings {
namespace {

using Shape3 = std::array<std::int64_t, 3>;

std::string values_str(const Shape3& v) {
  return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ", " + std::to_string(v[2]) +
         ")";
}

void cuda_decode_simcc(std::uintptr_t x_ptr, const Shape3& x_shape, const Shape3& x_strides,
                       std::uintptr_t y_ptr, const Shape3& y_shape, const Shape3& y_strides,
                       int dtype_code, double split_ratio, std::uintptr_t transforms_ptr,
                       std::uintptr_t out_ptr, int device, std::uintptr_t stream) {
  if (dtype_code != static_cast<int>(DType::kFloat32) &&
      dtype_code != static_cast<int>(DType::kFloat16)) {
    throw py::value_error("decode_simcc: dtype_code must be 0 (float32) or 1 (float16), got " +
                          std::to_string(dtype_code));
  }
  if (x_shape[0] < 0 || x_shape[1] < 0 || x_shape[2] < 1) {
    throw py::value_error("decode_simcc: x_shape must be (N, K, Wx) with Wx >= 1, got " +
                          values_str(x_shape));
  }
  if (y_shape[0] != x_shape[0] || y_shape[1] != x_shape[1] || y_shape[2] < 1) {
    throw py::value_error("decode_simcc: y_shape must be (N, K, Wy) with the N, K of x_shape " +
                          values_str(x_shape) + " and Wy >= 1, got " + values_str(y_shape));
  }
  if (!(split_ratio > 0.0) || !std::isfinite(split_ratio)) {
    throw py::value_error("decode_simcc: split_ratio must be positive and finite, got " +
                          py::str(py::float_(split_ratio)).cast<std::string>());
  }
  const auto dtype = static_cast<DType>(dtype_code);
  const VectorView x{device_ptr<const void>(x_ptr),
                     dtype,
                     x_shape[0],
                     x_shape[1],
                     x_shape[2],
                     x_strides[0],
                     x_strides[1],
                     x_strides[2]};
  const VectorView y{device_ptr<const void>(y_ptr),
                     dtype,
                     y_shape[0],
                     y_shape[1],
                     y_shape[2],
                     y_strides[0],
                     y_strides[1],
                     y_strides[2]};
  if (x_shape[0] * x_shape[1] == 0) return;
  if (x_ptr == 0 || y_ptr == 0 || out_ptr == 0) {
    throw py::value_error(
        "decode_simcc: simcc_x, simcc_y and out pointers must be non-null "
        "device addresses");
  }
  py::gil_scoped_release no_gil;
  DeviceGuard guard(device);
  cuda::decode_simcc(x, y, split_ratio, device_ptr<const double>(transforms_ptr),
                     device_ptr<float>(out_ptr), stream_ptr(stream));
}

}  // namespace

void bind_cuda_simcc_decode(py::module_& m) {
  m.def("decode_simcc", &cuda_decode_simcc, py::arg("x_ptr"), py::arg("x_shape"),
        py::arg("x_strides"), py::arg("y_ptr"), py::arg("y_shape"), py::arg("y_strides"),
        py::arg("dtype_code"), py::arg("split_ratio"), py::arg("transforms_ptr"),
        py::arg("out_ptr"), py::arg("device"), py::arg("stream"),
        "Queues SimCC decoding on `stream` (private: use rtpose.ops.decode_simcc). Strides are "
        "in elements; transforms_ptr 0 means identity; out is (N, K, 3) float32 C-contiguous.");
}

}  // namespace rtpose::bindings
