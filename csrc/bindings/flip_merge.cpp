// Temporary: registration of flip_merge (being written).
#include "bindings/common.h"

namespace rtpose::bindings {
void bind_flip_merge(py::module_& m) { (void)m; }
}  // namespace rtpose::bindings
