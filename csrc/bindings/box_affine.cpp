// Binding of the CPU box -> crop affine: rtpose._C.box_to_affine (see rtpose/ops/box_affine.py).
#include "rtpose/box_affine.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "bindings/common.h"

namespace rtpose::bindings {
namespace {

std::pair<py::array, py::array> box_to_affine(const py::array& boxes, std::int64_t out_h,
                                              std::int64_t out_w, double padding) {
  const std::string msg = "box_to_affine: boxes must be float32 or float64 of shape (N, 4), got ";
  if (!has_dtype<double>(boxes) && !has_dtype<float>(boxes)) {
    throw py::type_error(msg + describe(boxes));
  }
  if (boxes.ndim() != 2 || boxes.shape(1) != 4) throw py::value_error(msg + describe(boxes));
  if (out_h < 1 || out_w < 1) {
    throw py::value_error("box_to_affine: input_size must be (height, width) >= 1, got (" +
                          std::to_string(out_h) + ", " + std::to_string(out_w) + ")");
  }
  if (!(padding > 0.0) || !std::isfinite(padding)) {
    throw py::value_error("box_to_affine: padding must be positive and finite, got " +
                          std::to_string(padding));
  }
  const auto b = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(boxes);
  const std::int64_t n = boxes.shape(0);
  py::array_t<double> fwd({n, std::int64_t{2}, std::int64_t{3}});
  py::array_t<double> inv({n, std::int64_t{2}, std::int64_t{3}});
  cpu::box_to_affine(b.data(), n, static_cast<double>(out_w), static_cast<double>(out_h), padding,
                     fwd.mutable_data(), inv.mutable_data());
  return {fwd, inv};
}

}  // namespace

void bind_box_affine(py::module_& m) {
  m.def("box_to_affine", &box_to_affine, py::arg("boxes"), py::arg("out_h"), py::arg("out_w"),
        py::arg("padding"),
        "(forward, inverse) float64 (N, 2, 3) crop maps of (N, 4) x1, y1, x2, y2 boxes.");
}

}  // namespace rtpose::bindings
