// Binding of the CPU SimCC decoder (csrc/cpu/simcc_decode.cpp).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose::bindings {
namespace {

// A (N, K, L) float32/float16 numpy array read in place (byte strides must be whole elements).
VectorView vector_view(const char* name, const py::array& a) {
  const std::string msg =
      std::string("decode_simcc: ") + name + " must be float32 or float16 of shape (N, K, L), got ";
  const bool f16 = is_float16(a);
  if (!f16 && !has_dtype<float>(a)) throw py::type_error(msg + describe(a));
  if (a.ndim() != 3 || a.shape(2) < 1) throw py::value_error(msg + describe(a));
  const auto item = static_cast<std::int64_t>(a.itemsize());
  std::int64_t strides[3];
  for (int d = 0; d < 3; ++d) {
    strides[d] = a.strides(d);
    if (strides[d] % item != 0) {
      throw py::value_error(std::string("decode_simcc: ") + name +
                            " must have strides that are whole elements, got byte strides of " +
                            describe(a));
    }
    strides[d] /= item;
  }
  if (reinterpret_cast<std::uintptr_t>(a.data()) % static_cast<std::uintptr_t>(item) != 0) {
    throw py::value_error(std::string("decode_simcc: ") + name + " must be aligned, got " +
                          describe(a) + " at a misaligned address");
  }
  return {a.data(),   f16 ? DType::kFloat16 : DType::kFloat32,
          a.shape(0), a.shape(1),
          a.shape(2), strides[0],
          strides[1], strides[2]};
}

// (N, 2, 3) float64 C-contiguous copy of the maps, or empty for None (identity).
py::array_t<double> transform_values(const py::object& transforms, std::int64_t n) {
  if (transforms.is_none()) return py::array_t<double>();
  const std::string msg = "decode_simcc: transforms must be None or float32/float64 of shape (" +
                          std::to_string(n) + ", 2, 3), got ";
  if (!py::isinstance<py::array>(transforms)) {
    throw py::type_error(msg +
                         py::str(py::type::of(transforms).attr("__name__")).cast<std::string>());
  }
  const auto t = py::reinterpret_borrow<py::array>(transforms);
  if (!has_dtype<double>(t) && !has_dtype<float>(t)) throw py::type_error(msg + describe(t));
  if (t.ndim() != 3 || t.shape(0) != n || t.shape(1) != 2 || t.shape(2) != 3) {
    throw py::value_error(msg + describe(t));
  }
  return py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(t);
}

py::array output_array(const py::object& out, std::int64_t n, std::int64_t k) {
  const std::vector<py::ssize_t> shape = {n, k, 3};
  if (out.is_none()) return py::array_t<float>(shape);
  const std::string expected = "(" + std::to_string(n) + ", " + std::to_string(k) + ", 3)";
  const std::string msg =
      "decode_simcc: out must be a C-contiguous, writeable float32 array of shape " + expected +
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

py::array decode_simcc(const py::array& simcc_x, const py::array& simcc_y,
                       const py::object& transforms, double split_ratio, const py::object& out) {
  const VectorView x = vector_view("simcc_x", simcc_x);
  const VectorView y = vector_view("simcc_y", simcc_y);
  if (!simcc_y.dtype().equal(simcc_x.dtype())) {
    throw py::type_error("decode_simcc: simcc_y must have the dtype of simcc_x (" +
                         describe(simcc_x) + "), got " + describe(simcc_y));
  }
  if (y.n != x.n || y.k != x.k) {
    throw py::value_error("decode_simcc: simcc_y must be (N, K, Wy) with the N, K of simcc_x (" +
                          describe(simcc_x) + "), got " + describe(simcc_y));
  }
  if (!(split_ratio > 0.0) || !std::isfinite(split_ratio)) {
    throw py::value_error("decode_simcc: split_ratio must be positive and finite, got " +
                          py::str(py::float_(split_ratio)).cast<std::string>());
  }
  const py::array_t<double> maps = transform_values(transforms, x.n);
  py::array result = output_array(out, x.n, x.k);
  const double* maps_data = transforms.is_none() ? nullptr : maps.data();
  auto* out_data = static_cast<float*>(result.mutable_data());
  if (x.n * x.k > 0) {
    py::gil_scoped_release no_gil;
    cpu::decode_simcc(x, y, split_ratio, maps_data, out_data);
  }
  return result;
}

}  // namespace

void bind_simcc_decode(py::module_& m) {
  m.def("decode_simcc", &decode_simcc, py::arg("simcc_x"), py::arg("simcc_y"),
        py::arg("transforms"), py::arg("split_ratio"), py::arg("out") = py::none(),
        "SimCC decoding of (N, K, Wx) and (N, K, Wy) vectors (see rtpose.ops.decode_simcc).");
}

}  // namespace rtpose::bindings
