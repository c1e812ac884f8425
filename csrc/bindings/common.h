// Helpers shared by the pybind11 binding files (csrc/bindings/*.cpp) and the registration
// functions each of them defines; csrc/bindings.cpp calls them to build the rtpose._C module.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

namespace rtpose::bindings {

namespace py = pybind11;

// "(480, 640)", "(5,)", "()": shapes written the way Python prints them.
inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(a.shape(i));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

// "float32 (480, 640)"
inline std::string describe(const py::array& a) {
  return py::str(a.dtype()).cast<std::string>() + " " + shape_str(a);
}

template <typename T>
bool has_dtype(const py::array& a) {
  return a.dtype().equal(py::dtype::of<T>());
}

// numpy float16 has no C++ type in pybind11; compare by the dtype's character code.
inline bool is_float16(const py::array& a) { return a.dtype().char_() == 'e'; }

inline std::string format_values(const std::vector<double>& values) {
  std::string s = "(";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) s += ", ";
    s += py::str(py::float_(values[i])).cast<std::string>();
  }
  return s + ")";
}

// Registration functions, one per binding file.
void bind_dlpack(py::module_& m);          // bindings/dlpack.cpp
void bind_affine_warp(py::module_& m);     // bindings/affine_warp.cpp
void bind_heatmap_decode(py::module_& m);  // bindings/heatmap_decode.cpp
void bind_flip_merge(py::module_& m);      // bindings/flip_merge.cpp
#if defined(RTPOSE_WITH_CUDA)
// Submodule rtpose._C.cuda: device buffers, DLPack, and the GPU op launchers.
void bind_cuda_runtime(py::module_& cuda);         // bindings/cuda_runtime.cpp
void bind_cuda_affine_warp(py::module_& cuda);     // bindings/cuda_affine_warp.cpp
void bind_cuda_heatmap_decode(py::module_& cuda);  // bindings/cuda_heatmap_decode.cpp
void bind_cuda_flip_merge(py::module_& cuda);      // bindings/cuda_flip_merge.cpp
#endif

}  // namespace rtpose::bindings
