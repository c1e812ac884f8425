// Temporary: registration of the GPU flip_merge (being written).
#include "bindings/common.h"
#include "bindings/cuda_common.h"

namespace rtpose::bindings {
void bind_cuda_flip_merge(py::module_& m) { (void)m; }
}  // namespace rtpose::bindings
