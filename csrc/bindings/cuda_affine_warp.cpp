// Temporary: registration of the GPU affine_warp (being written).
#include "bindings/common.h"
#include "bindings/cuda_common.h"

namespace rtpose::bindings {
void bind_cuda_affine_warp(py::module_& m) { (void)m; }
}  // namespace rtpose::bindings
