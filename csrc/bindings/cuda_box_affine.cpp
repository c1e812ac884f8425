// Temporary: registration of the GPU box_affine (being written).
#include "bindings/common.h"
#include "bindings/cuda_common.h"

namespace rtpose::bindings {
void bind_cuda_box_affine(py::module_& m) { (void)m; }
}  // namespace rtpose::bindings
