// Binding of the CPU heatmap decoder (csrc/cpu/heatmap_decode.cpp). rtpose/ops/heatmap_decode.py
// runs the same checks first; these keep a direct call of rtpose._C.decode_heatmaps from crashing.
#include "rtpose/heatmap_decode.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "bindings/common.h"
#include "bindings/heatmap_decode_args.h"

namespace rtpose::bindings {
namespace {

rtpose::HeatmapView check_heatmaps(const py::array& heatmaps) {
  const std::string msg =
      "decode_heatmaps: heatmaps must be float32 or float16 of shape (N, K, H, W) with H, W >= 1, "
      "got ";
  const bool f16 = is_float16(heatmaps);
  if (!has_dtype<float>(heatmaps) && !f16) throw py::type_error(msg + describe(heatmaps));
  if (heatmaps.ndim() != 4 || heatmaps.shape(2) < 1 || heatmaps.shape(3) < 1) {
    throw py::value_error(msg + describe(heatmaps));
  }
  const py::ssize_t item = heatmaps.itemsize();
  std::int64_t strides[4];
  for (int d = 0; d < 4; ++d) {
    // Byte strides that are not a whole number of elements (possible with as_strided) cannot be
    // expressed as element strides.
    if (heatmaps.strides(d) % item != 0) {
      throw py::value_error(
          "decode_heatmaps: heatmaps strides must be multiples of the element "
          "size, got strides " +
          std::to_string(heatmaps.strides(d)) + " for " + describe(heatmaps));
    }
    strides[d] = heatmaps.strides(d) / item;
  }
  return {heatmaps.data(),   f16 ? rtpose::DType::kFloat16 : rtpose::DType::kFloat32,
          heatmaps.shape(0), heatmaps.shape(1),
          heatmaps.shape(2), heatmaps.shape(3),
          strides[0],        strides[1],
          strides[2],        strides[3]};
}

py::array decode_heatmaps(const py::array& heatmaps, const py::object& transforms, double scale_x,
                          double scale_y, int mode, int blur_kernel) {
  const rtpose::HeatmapView view = check_heatmaps(heatmaps);
  check_params(mode, blur_kernel, scale_x, scale_y);
  py::array_t<double, py::array::c_style | py::array::forcecast> maps;
  if (!transforms.is_none()) {
    const std::string msg = "decode_heatmaps: transforms must be None or float64 of shape (" +
                            std::to_string(view.n) + ", 2, 3), got ";
    if (!py::isinstance<py::array>(transforms)) {
      throw py::type_error(msg +
                           py::str(py::type::of(transforms).attr("__name__")).cast<std::string>());
    }
    const auto arr = py::reinterpret_borrow<py::array>(transforms);
    if (!has_dtype<double>(arr) && !has_dtype<float>(arr))
      throw py::type_error(msg + describe(arr));
    if (arr.ndim() != 3 || arr.shape(0) != view.n || arr.shape(1) != 2 || arr.shape(2) != 3) {
      throw py::value_error(msg + describe(arr));
    }
    maps = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(arr);
  }
  py::array_t<float> result({view.n, view.k, static_cast<std::int64_t>(3)});
  rtpose::DecodeParams params{};
  params.mode = static_cast<rtpose::RefineMode>(mode);
  params.blur_kernel = blur_kernel;
  params.scale_x = scale_x;
  params.scale_y = scale_y;
  const double* t = transforms.is_none() ? nullptr : maps.data();
  float* out = result.mutable_data();
  if (view.n * view.k > 0) {
    py::gil_scoped_release no_gil;
    rtpose::cpu::decode_heatmaps(view, t, params, out);
  }
  return result;
}

}  // namespace

void bind_heatmap_decode(py::module_& m) {
  m.def(
      "decode_heatmaps", &decode_heatmaps, py::arg("heatmaps"), py::arg("transforms"),
      py::arg("scale_x"), py::arg("scale_y"), py::arg("mode"), py::arg("blur_kernel"),
      "Heatmap decoding, (N, K, H, W) -> (N, K, 3) x, y, score (see rtpose.ops.decode_heatmaps).");
}

}  // namespace rtpose::bindings
