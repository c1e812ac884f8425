// GPU launcher of the affine warp: rtpose._C.cuda.affine_warp (see rtpose/ops/affine.py).
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "bindings/common.h"
#include "bindings/cuda_common.h"
#include "rtpose/affine_warp.h"

namespace rtpose::bindings {
namespace {

// (address, height, width, stride_y, stride_x, stride_c) with byte strides.
using FrameArg = std::tuple<std::uintptr_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                            std::int64_t>;

void affine_warp(const std::vector<FrameArg>& frames, std::uintptr_t frame_index,
                 std::uintptr_t forward, bool forward_f64, std::int64_t n, std::int64_t out_h,
                 std::int64_t out_w, const std::vector<double>& mean,
                 const std::vector<double>& std, bool rgb, double border_value, int out_dtype,
                 std::uintptr_t out, int device, std::uintptr_t stream) {
  if (frames.empty() || frames.size() > static_cast<size_t>(kMaxFramesPerLaunch)) {
    throw py::value_error("affine_warp: between 1 and " + std::to_string(kMaxFramesPerLaunch) +
                          " frames per call on the GPU, got " + std::to_string(frames.size()));
  }
  if (mean.size() != 3 || std.size() != 3 || n < 0 || out_h < 1 || out_w < 1 ||
      (out_dtype != 0 && out_dtype != 1)) {
    throw py::value_error("affine_warp: invalid launch parameters");
  }
  std::vector<ImageView> views;
  for (const auto& [address, h, w, sy, sx, sc] : frames) {
    views.push_back({device_ptr<const std::uint8_t>(address), h, w, sy, sx, sc});
  }
  AffineWarpParams params{};
  params.out_h = out_h;
  params.out_w = out_w;
  for (int c = 0; c < 3; ++c) {
    params.mean[c] = mean[static_cast<size_t>(c)];
    params.std[c] = std[static_cast<size_t>(c)];
  }
  params.rgb = rgb;
  params.border_value = border_value;
  params.out_dtype = static_cast<DType>(out_dtype);
  py::gil_scoped_release no_gil;
  DeviceGuard guard(device);
  cuda::affine_warp(views.data(), static_cast<int>(views.size()),
                    device_ptr<const std::int32_t>(frame_index), device_ptr<const void>(forward),
                    forward_f64, n, params, device_ptr<void>(out), stream_ptr(stream));
}

}  // namespace

void bind_cuda_affine_warp(py::module_& m) {
  m.def("affine_warp", &affine_warp, py::arg("frames"), py::arg("frame_index"), py::arg("forward"),
        py::arg("forward_f64"), py::arg("n"), py::arg("out_h"), py::arg("out_w"), py::arg("mean"),
        py::arg("std"), py::arg("rgb"), py::arg("border_value"), py::arg("out_dtype"),
        py::arg("out"), py::arg("device"), py::arg("stream"));
}

}  // namespace rtpose::bindings
