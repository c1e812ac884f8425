// Temporary: registration of heatmap_decode (being written).
#include "bindings/common.h"

namespace rtpose::bindings {
void bind_heatmap_decode(py::module_& m) { (void)m; }
}  // namespace rtpose::bindings
