// Temporary: registration of simcc_decode (being written).
#include "bindings/common.h"

namespace rtpose::bindings {
void bind_simcc_decode(py::module_& m) { (void)m; }
}  // namespace rtpose::bindings
