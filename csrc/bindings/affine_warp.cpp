// Binding of the CPU affine warp (csrc/cpu/affine_warp.cpp): rtpose._C.affine_warp.
#include "rtpose/affine_warp.h"

#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/common.h"

namespace rtpose::bindings {
namespace {

rtpose::ImageView check_frame(const py::handle& obj, size_t index) {
  const std::string name = "frames[" + std::to_string(index) + "]";
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error("affine_warp: " + name + " must be a numpy uint8 array (H, W, 3), got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  }
  const auto frame = py::reinterpret_borrow<py::array>(obj);
  const std::string msg = "affine_warp: " + name + " must be uint8 of shape (H, W, 3), got ";
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

// Frame of each crop as int32, checked against the number of frames; empty when not given.
std::vector<std::int32_t> frame_indices(const py::object& frame_index, std::int64_t n,
                                        std::int64_t num_frames) {
  if (frame_index.is_none()) {
    if (num_frames != 1) {
      throw py::value_error("affine_warp: frame_index is required with " +
                            std::to_string(num_frames) + " frames");
    }
    return {};
  }
  const auto arr = py::reinterpret_borrow<py::array>(frame_index);
  const std::string msg = "affine_warp: frame_index must be an integer array of shape (" +
                          std::to_string(n) + ",), got ";
  if (!py::isinstance<py::array>(frame_index) ||
      (arr.dtype().kind() != 'i' && arr.dtype().kind() != 'u')) {
    throw py::type_error(
        msg + (py::isinstance<py::array>(frame_index)
                   ? describe(arr)
                   : py::str(py::type::of(frame_index).attr("__name__")).cast<std::string>()));
  }
  if (arr.ndim() != 1 || arr.shape(0) != n) throw py::value_error(msg + describe(arr));
  const auto values =
      py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(arr);
  std::vector<std::int32_t> result(static_cast<size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t v = values.data()[i];
    if (v < 0 || v >= num_frames) {
      throw py::value_error("affine_warp: frame_index[" + std::to_string(i) +
                            "] = " + std::to_string(v) + " is not a frame index in [0, " +
                            std::to_string(num_frames) + ")");
    }
    result[static_cast<size_t>(i)] = static_cast<std::int32_t>(v);
  }
  return result;
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

DType out_dtype_of(const std::string& dtype) {
  if (dtype == "float32") return DType::kFloat32;
  if (dtype == "float16") return DType::kFloat16;
  throw py::value_error("affine_warp: dtype must be 'float32' or 'float16', got '" + dtype + "'");
}

// Returns `out` after checking it can take the result, or a new (n, 3, out_h, out_w) array.
py::array output_array(const py::object& out, std::int64_t n, std::int64_t out_h,
                       std::int64_t out_w, DType dtype) {
  const std::vector<py::ssize_t> shape = {n, 3, out_h, out_w};
  const bool half = dtype == DType::kFloat16;
  if (out.is_none()) return py::array(py::dtype(half ? "float16" : "float32"), shape);
  const std::string expected = "(" + std::to_string(n) + ", 3, " + std::to_string(out_h) + ", " +
                               std::to_string(out_w) + ")";
  const std::string msg = std::string("affine_warp: out must be a C-contiguous, writeable ") +
                          (half ? "float16" : "float32") + " array of shape " + expected + ", got ";
  if (!py::isinstance<py::array>(out)) {
    throw py::type_error(msg + py::str(py::type::of(out).attr("__name__")).cast<std::string>());
  }
  const auto arr = py::reinterpret_borrow<py::array>(out);
  if (half ? !is_float16(arr) : !has_dtype<float>(arr)) throw py::type_error(msg + describe(arr));
  if (shape_str(arr) != expected) throw py::value_error(msg + describe(arr));
  if (!(arr.flags() & py::array::c_style)) {
    throw py::value_error(msg + describe(arr) + ", not C-contiguous");
  }
  if (!arr.writeable()) throw py::value_error(msg + describe(arr) + ", read-only");
  return arr;
}

py::array affine_warp(const py::sequence& frames, const py::array& matrices,
                      const py::object& frame_index, std::int64_t out_h, std::int64_t out_w,
                      const std::vector<double>& mean, const std::vector<double>& std, bool rgb,
                      double border_value, const std::string& dtype, const py::object& out) {
  const auto num_frames = static_cast<std::int64_t>(py::len(frames));
  if (num_frames < 1) throw py::value_error("affine_warp: frames must hold at least one frame");
  std::vector<rtpose::ImageView> views;
  for (size_t f = 0; f < static_cast<size_t>(num_frames); ++f) {
    views.push_back(check_frame(frames[f], f));
  }
  const std::vector<double> inverse = inverse_maps(matrices);
  const std::int64_t n = matrices.shape(0);
  const std::vector<std::int32_t> index = frame_indices(frame_index, n, num_frames);
  if (out_h < 1 || out_w < 1) {
    throw py::value_error("affine_warp: out_h and out_w must be >= 1, got out_h=" +
                          std::to_string(out_h) + ", out_w=" + std::to_string(out_w));
  }
  check_channel_values("mean", mean, false);
  check_channel_values("std", std, true);
  rtpose::AffineWarpParams params{};
  params.out_h = out_h;
  params.out_w = out_w;
  for (int c = 0; c < 3; ++c) {
    params.mean[c] = mean[c];
    params.std[c] = std[c];
  }
  params.rgb = rgb;
  params.border_value = border_value;
  params.out_dtype = out_dtype_of(dtype);
  py::array result = output_array(out, n, out_h, out_w, params.out_dtype);
  void* out_data = result.mutable_data();
  if (n > 0) {
    py::gil_scoped_release no_gil;
    rtpose::cpu::affine_warp(views.data(), index.empty() ? nullptr : index.data(), inverse.data(),
                             n, params, out_data);
  }
  return result;
}

}  // namespace

void bind_affine_warp(py::module_& m) {
  m.def("affine_warp", &affine_warp, py::arg("frames"), py::arg("matrices"), py::arg("frame_index"),
        py::arg("out_h"), py::arg("out_w"), py::arg("mean"), py::arg("std"), py::arg("rgb"),
        py::arg("border_value"), py::arg("dtype"), py::arg("out") = py::none(),
        R"doc(Batched bilinear affine warp of BGR uint8 frames into normalised CHW crops.

frames: sequence of (H, W, 3) uint8 BGR arrays, any strides. matrices: (N, 2, 3) float32/float64
forward maps (cv2.warpAffine convention). frame_index: (N,) ints, the frame of each crop (None
with one frame). mean/std: 3 values each, output channel order, pixel units. rgb: output RGB.
border_value: raw value of neighbours outside the frame. dtype: 'float32' or 'float16'.
out: optional (N, 3, out_h, out_w) C-contiguous buffer of that dtype, written in place.)doc");
}

}  // namespace rtpose::bindings
