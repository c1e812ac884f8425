// Temporary: registration of the GPU heatmap_decode (being written).
#include "bindings/common.h"
#include "bindings/cuda_common.h"

namespace rtpose::bindings {
void bind_cuda_heatmap_decode(py::module_& m) { (void)m; }
}  // namespace rtpose::bindings
