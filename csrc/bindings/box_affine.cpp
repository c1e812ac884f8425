// Temporary: registration of box_affine (being written).
#include "bindings/common.h"

namespace rtpose::bindings {
void bind_box_affine(py::module_& m) { (void)m; }
}  // namespace rtpose::bindings
