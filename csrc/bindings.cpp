// pybind11 entry point of the rtpose._C extension module.
//
// Each op's binding lives in csrc/bindings/<op>.cpp; CPU ops take numpy arrays and validate
// them with messages that name the argument, the expected dtype/shape and what was received.
// When the extension is built with CUDA, the submodule rtpose._C.cuda holds the GPU launchers,
// which take raw device pointers (rtpose/cuda/arrays.py turns DLPack / __cuda_array_interface__
// arrays into them) and a CUDA stream handle.
#include <pybind11/pybind11.h>

#include "bindings/common.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() =
      "rtpose native ops (C++ CPU kernels, CUDA kernels when built with CUDA). "
      "Use them through rtpose.ops.";
#ifdef _OPENMP
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif
  rtpose::bindings::bind_dlpack(m);
  rtpose::bindings::bind_affine_warp(m);
  rtpose::bindings::bind_heatmap_decode(m);
  rtpose::bindings::bind_flip_merge(m);
#if defined(RTPOSE_WITH_CUDA)
  m.attr("has_cuda") = true;
  py::module_ cuda = m.def_submodule("cuda", "GPU launchers (private: use rtpose.ops)");
  rtpose::bindings::bind_cuda_runtime(cuda);
  rtpose::bindings::bind_cuda_affine_warp(cuda);
  rtpose::bindings::bind_cuda_heatmap_decode(cuda);
  rtpose::bindings::bind_cuda_flip_merge(cuda);
#else
  m.attr("has_cuda") = false;
#endif
}
