// Binding of the CPU affine warp (csrc/cpu/affine_warp.cpp).
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "rtpose/affine_warp.h"

namespace rtpose::bindings {
namespace {

rtpose::ImageView check_frame(const py::array& frame) {
  const std::string msg = "affine_warp: frame must be uint8 of shape (H, W, 3), got ";
  if (!has_dtype<std::uint8_t>(frame)) throw py::type_error(msg + describe(frame));
  if (frame.ndim() != 3 || frame.shape(2) != 3 || frame.shape(0) < 1 || frame.shape(1) < 1) {
    throw py::value_error(msg + describe(frame));
  }
  if (frame.shape(0) > rtpose::kMaxImageSide || frame.shape(1) > rtpose::kMaxImageSide) {
    throw py::value_error("affine_warp: frame sides must be at most " +
                          std::to_string(rtpose::kMaxImageSide) + ", got " + describe(frame));
  }
  // Byte strides: any numpy view (crop, frame[::2], flipped) is read in place.
  return {static_cast<const std::uint8_t*>(frame.data()),
          frame.shape(0),
          frame.shape(1),
          frame.strides(0),
          frame.strides(1),
          frame.strides(2)};
}

// Returns the inverse maps, (N, 2, 3) row-major, of the forward maps in `matrices`.
std::vector<double> inverse_maps(const py::array& matrices) {
  const std::string msg =
      "affine_warp: matrices must be float32 or float64 of shape (N, 2, 3), got ";
  if (!has_dtype<double>(matrices) && !has_dtype<float>(matrices)) {
    throw py::type_error(msg + describe(matrices));
  }
  if (matrices.ndim() != 3 || matrices.shape(1) != 2 || matrices.shape(2) != 3) {
    throw py::value_error(msg + describe(matrices));
  }
  const auto forward =
      py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(matrices);
  const std::int64_t n = matrices.shape(0);
  std::vector<double> inverse(static_cast<size_t>(6 * n));
  const std::int64_t bad = rtpose::invert_affine_maps(forward.data(), n, inverse.data());
  if (bad >= 0) {
    throw py::value_error("affine_warp: matrices[" + std::to_string(bad) +
                          "] is not invertible (singular, or non-finite entries); each must be a "
                          "forward map dst = M @ [x, y, 1]");
  }
  return inverse;
}

void check_channel_values(const char* name, const std::vector<double>& values, bool is_std) {
  if (values.size() != 3) {
    throw py::value_error(std::string("affine_warp: ") + name +
                          " must have 3 values (output channel order), got " +
                          std::to_string(values.size()));
  }
  for (double v : values) {
    if (!std::isfinite(v) || (is_std && v == 0.0)) {
      throw py::value_error(std::string("affine_warp: ") + name + " must be finite" +
                            (is_std ? " and non-zero" : "") + " in every channel, got " +
                            format_values(values));
    }
  }
}

// Returns `out` after checking it can take the result, or a new (n, 3, out_h, out_w) array.
py::array output_array(const py::object& out, std::int64_t n, std::int64_t out_h,
                       std::int64_t out_w) {
  const std::vector<py::ssize_t> shape = {n, 3, out_h, out_w};
  if (out.is_none()) return py::array_t<float>(shape);
  const std::string expected = "(" + std::to_string(n) + ", 3, " + std::to_string(out_h) + ", " +
                               std::to_string(out_w) + ")";
  const std::string msg =
      "affine_warp: out must be a C-contiguous, writeable float32 array of shape " + expected +
      ", got ";
  if (!py::isinstance<py::array>(out)) {
    throw py::type_error(msg + py::str(py::type::of(out).attr("__name__")).cast<std::string>());
  }
  const auto arr = py::reinterpret_borrow<py::array>(out);
  if (!has_dtype<float>(arr)) throw py::type_error(msg + describe(arr));
  if (shape_str(arr) != expected) throw py::value_error(msg + describe(arr));
  if (!(arr.flags() & py::array::c_style)) {
    throw py::value_error(msg + describe(arr) + ", not C-contiguous");
  }
  if (!arr.writeable()) throw py::value_error(msg + describe(arr) + ", read-only");
  return arr;
}

py::array affine_warp(const py::array& frame, const py::array& matrices, std::int64_t out_h,
                      std::int64_t out_w, const std::vector<double>& mean,
                      const std::vector<double>& std, bool rgb, double border_value,
                      const py::object& out) {
  const rtpose::ImageView view = check_frame(frame);
  const std::vector<double> inverse = inverse_maps(matrices);
  if (out_h < 1 || out_w < 1) {
    throw py::value_error("affine_warp: out_h and out_w must be >= 1, got out_h=" +
                          std::to_string(out_h) + ", out_w=" + std::to_string(out_w));
  }
  check_channel_values("mean", mean, false);
  check_channel_values("std", std, true);
  const std::int64_t n = matrices.shape(0);
  py::array result = output_array(out, n, out_h, out_w);

  rtpose::AffineWarpParams params{};
  params.out_h = out_h;
  params.out_w = out_w;
  for (int c = 0; c < 3; ++c) {
    params.mean[c] = mean[c];
    params.std[c] = std[c];
  }
  params.rgb = rgb;
  params.border_value = border_value;
  auto* out_data = static_cast<float*>(result.mutable_data());
  if (n > 0) {
    py::gil_scoped_release no_gil;
    rtpose::cpu::affine_warp(view, inverse.data(), n, params, out_data);
  }
  return result;
}

}  // namespace

void bind_affine_warp(py::module_& m) {
  m.def("affine_warp", &affine_warp, py::arg("frame"), py::arg("matrices"), py::arg("out_h"),
        py::arg("out_w"), py::arg("mean"), py::arg("std"), py::arg("rgb"), py::arg("border_value"),
        py::arg("out") = py::none(), "Batched affine warp (see rtpose.ops.affine_warp).");
}

}  // namespace rtpose::bindings
