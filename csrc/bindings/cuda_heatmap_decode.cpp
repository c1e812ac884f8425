// Binding of the CUDA heatmap decoder (csrc/cuda/heatmap_decode.cu): raw device pointers and a
// stream handle in, nothing waited for. rtpose/ops/heatmap_decode.py validates the arrays
// (dtypes, shapes, devices) before calling; these checks keep a direct call from launching a
// kernel that cannot run.
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <string>

#include "bindings/common.h"
#include "bindings/cuda_common.h"
#include "bindings/heatmap_decode_args.h"
#include "rtpose/heatmap_decode.h"
#include "rtpose/heatmap_decode_math.h"

namespace rtpose::bindings {
namespace {

void decode_heatmaps(std::uintptr_t heatmaps, int dtype, const std::array<std::int64_t, 4>& shape,
                     const std::array<std::int64_t, 4>& strides, std::uintptr_t transforms,
                     double scale_x, double scale_y, int mode, int blur_kernel, std::uintptr_t out,
                     int device, std::uintptr_t stream) {
  const auto shape_text = [&] {
    return "(" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", " +
           std::to_string(shape[2]) + ", " + std::to_string(shape[3]) + ")";
  };
  if (dtype != 0 && dtype != 1) {
    throw py::value_error("decode_heatmaps: dtype must be 0 (float32) or 1 (float16), got " +
                          std::to_string(dtype));
  }
  if (shape[0] < 0 || shape[1] < 0 || shape[2] < 1 || shape[3] < 1) {
    throw py::value_error(
        "decode_heatmaps: heatmaps must have shape (N, K, H, W) with H, W >= 1, got " +
        shape_text());
  }
  if (shape[2] * shape[3] >= (std::int64_t{1} << 31) ||
      shape[0] * shape[1] >= (std::int64_t{1} << 31)) {
    throw py::value_error(
        "decode_heatmaps: the GPU decoder takes fewer than 2^31 maps of fewer than 2^31 "
        "elements, got heatmaps of shape " +
        shape_text());
  }
  check_params(mode, blur_kernel, scale_x, scale_y);
  const auto refine = static_cast<rtpose::RefineMode>(mode);
  const bool blurs = refine == rtpose::RefineMode::kMegvii || refine == rtpose::RefineMode::kDark;
  const bool empty = shape[0] * shape[1] == 0;
  if (!empty && (heatmaps == 0 || out == 0)) {
    throw py::value_error("decode_heatmaps: heatmaps and out must be device pointers, got 0");
  }

  DeviceGuard guard(device);
  const std::int64_t bytes =
      rtpose::decode_shared_floats(refine, shape[2], shape[3]) * std::int64_t{sizeof(float)};
  if (bytes > 0) {
    int limit = 0;
    check_cuda(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
               "decode_heatmaps: cudaDeviceGetAttribute");
    if (bytes > limit) {
      const char* what = refine == rtpose::RefineMode::kMegvii ? "2 * H * W" : "H * W";
      throw py::value_error("decode_heatmaps: mode " +
                            std::string(refine == rtpose::RefineMode::kMegvii ? "megvii" : "dark") +
                            " on the GPU keeps " + what + " floats in shared memory, " +
                            std::to_string(bytes) + " bytes for H=" + std::to_string(shape[2]) +
                            ", W=" + std::to_string(shape[3]) + ", but device " +
                            std::to_string(device) + " allows at most " + std::to_string(limit) +
                            " bytes per block; decode such maps on the CPU");
    }
  }
  if (empty) return;

  const rtpose::HeatmapView view{device_ptr<const void>(heatmaps),
                                 static_cast<rtpose::DType>(dtype),
                                 shape[0],
                                 shape[1],
                                 shape[2],
                                 shape[3],
                                 strides[0],
                                 strides[1],
                                 strides[2],
                                 strides[3]};
  rtpose::DecodeParams params{};
  params.mode = refine;
  params.blur_kernel = blurs ? blur_kernel : 1;
  params.scale_x = scale_x;
  params.scale_y = scale_y;
  py::gil_scoped_release no_gil;
  rtpose::cuda::decode_heatmaps(view, device_ptr<const double>(transforms), params,
                                device_ptr<float>(out), stream_ptr(stream));
}

}  // namespace

void bind_cuda_heatmap_decode(py::module_& m) {
  m.def("decode_heatmaps", &decode_heatmaps, py::arg("heatmaps"), py::arg("dtype"),
        py::arg("shape"), py::arg("strides"), py::arg("transforms"), py::arg("scale_x"),
        py::arg("scale_y"), py::arg("mode"), py::arg("blur_kernel"), py::arg("out"),
        py::arg("device"), py::arg("stream"),
        "GPU heatmap decoding on device pointers (see rtpose.ops.decode_heatmaps). transforms: "
        "0 for identity, else device float64 (N, 2, 3) C-contiguous; out: device float32 "
        "(N, K, 3) C-contiguous; strides in elements; queued on `stream`, not waited for.");
}

}  // namespace rtpose::bindings
