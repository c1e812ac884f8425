// Temporary: registration of the GPU runtime (being written).
#include "bindings/common.h"
#include "bindings/cuda_common.h"

namespace rtpose::bindings {
void bind_cuda_runtime(py::module_& m) { (void)m; }
}  // namespace rtpose::bindings
