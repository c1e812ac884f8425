// Binding of the CPU flip merge (csrc/cpu/flip_merge.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose::bindings {
namespace {

// A (N, K, H, W) float32/float16 numpy array read in place. Byte strides must be whole elements
// and the data aligned (always so for arrays numpy allocates and their views).
HeatmapView heatmap_view(const char* name, const py::array& a) {
  const std::string msg = std::string("flip_merge: ") + name +
                          " must be float32 or float16 of shape (N, K, H, W), got ";
  const bool f16 = is_float16(a);
  if (!f16 && !has_dtype<float>(a)) throw py::type_error(msg + describe(a));
  if (a.ndim() != 4 || a.shape(2) < 1 || a.shape(3) < 1) throw py::value_error(msg + describe(a));
  const auto item = static_cast<std::int64_t>(a.itemsize());
  std::int64_t strides[4];
  for (int d = 0; d < 4; ++d) {
    strides[d] = a.strides(d);
    if (strides[d] % item != 0) {
      throw py::value_error(std::string("flip_merge: ") + name +
                            " must have strides that are whole elements, got byte strides of " +
                            describe(a));
    }
    strides[d] /= item;
  }
  if (reinterpret_cast<std::uintptr_t>(a.data()) % static_cast<std::uintptr_t>(item) != 0) {
    throw py::value_error(std::string("flip_merge: ") + name + " must be aligned, got " +
                          describe(a) + " at a misaligned address");
  }
  return {a.data(),   f16 ? DType::kFloat16 : DType::kFloat32,
          a.shape(0), a.shape(1),
          a.shape(2), a.shape(3),
          strides[0], strides[1],
          strides[2], strides[3]};
}

// K int32 indices after checking they are a permutation of range(K).
std::vector<std::int32_t> flip_index_values(const py::array& index, std::int64_t k) {
  const std::string msg = "flip_merge: flip_indices must be an integer array of shape (" +
                          std::to_string(k) + ",) (a permutation of range(K)), got ";
  const char kind = index.dtype().kind();
  if (kind != 'i' && kind != 'u') throw py::type_error(msg + describe(index));
  if (index.ndim() != 1 || index.shape(0) != k) throw py::value_error(msg + describe(index));
  const auto values =
      py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(index);
  if (!values) throw py::type_error(msg + describe(index));  // uint64 beyond int64, say
  std::vector<std::int32_t> result(static_cast<size_t>(k));
  std::vector<std::int64_t> seen_at(static_cast<size_t>(k), -1);
  for (std::int64_t i = 0; i < k; ++i) {
    const std::int64_t v = values.data()[i];
    if (v < 0 || v >= k) {
      throw py::value_error("flip_merge: flip_indices must be a permutation of range(" +
                            std::to_string(k) + "), got " + std::to_string(v) + " at position " +
                            std::to_string(i));
    }
    if (seen_at[v] >= 0) {
      throw py::value_error("flip_merge: flip_indices must be a permutation of range(" +
                            std::to_string(k) + "), got " + std::to_string(v) +
                            " twice (positions " + std::to_string(seen_at[v]) + " and " +
                            std::to_string(i) + ")");
    }
    seen_at[v] = i;
    result[i] = static_cast<std::int32_t>(v);
  }
  return result;
}

// Returns `out` after checking it can take the result, or a new C-contiguous array.
py::array output_array(const py::object& out, const py::array& like) {
  std::vector<py::ssize_t> shape(like.shape(), like.shape() + like.ndim());
  if (out.is_none()) return py::array(like.dtype(), shape);
  const std::string dtype = py::str(like.dtype()).cast<std::string>();
  const std::string msg = "flip_merge: out must be a C-contiguous, writeable " + dtype +
                          " array of shape " + shape_str(like) + ", got ";
  if (!py::isinstance<py::array>(out)) {
    throw py::type_error(msg + py::str(py::type::of(out).attr("__name__")).cast<std::string>());
  }
  const auto arr = py::reinterpret_borrow<py::array>(out);
  if (!arr.dtype().equal(like.dtype())) throw py::type_error(msg + describe(arr));
  if (shape_str(arr) != shape_str(like)) throw py::value_error(msg + describe(arr));
  if (!(arr.flags() & py::array::c_style)) {
    throw py::value_error(msg + describe(arr) + ", not C-contiguous");
  }
  if (!arr.writeable()) throw py::value_error(msg + describe(arr) + ", read-only");
  return arr;
}

py::array flip_merge(const py::array& heatmaps, const py::array& flipped,
                     const py::array& flip_indices, bool shift, const py::object& out) {
  const HeatmapView a = heatmap_view("heatmaps", heatmaps);
  const HeatmapView b = heatmap_view("flipped", flipped);
  if (!flipped.dtype().equal(heatmaps.dtype())) {
    throw py::type_error("flip_merge: flipped must have the dtype of heatmaps (" +
                         describe(heatmaps) + "), got " + describe(flipped));
  }
  if (shape_str(flipped) != shape_str(heatmaps)) {
    throw py::value_error("flip_merge: flipped must have the shape of heatmaps (" +
                          describe(heatmaps) + "), got " + describe(flipped));
  }
  const std::vector<std::int32_t> index = flip_index_values(flip_indices, a.k);
  py::array result = output_array(out, heatmaps);
  void* out_data = result.mutable_data();
  if (a.n * a.k > 0) {
    py::gil_scoped_release no_gil;
    cpu::flip_merge(a, b, index.data(), shift, out_data);
  }
  return result;
}

}  // namespace

void bind_flip_merge(py::module_& m) {
  m.def("flip_merge", &flip_merge, py::arg("heatmaps"), py::arg("flipped"), py::arg("flip_indices"),
        py::arg("shift"), py::arg("out") = py::none(),
        "Flip-test merge of (N, K, H, W) heatmaps (see rtpose.ops.flip_merge).");
}

}  // namespace rtpose::bindings
