// GPU launcher of the box -> crop affine: rtpose._C.cuda.box_to_affine.
#include <cstdint>

#include "bindings/common.h"
#include "bindings/cuda_common.h"
#include "rtpose/box_affine.h"

namespace rtpose::bindings {
namespace {

void box_to_affine(std::uintptr_t boxes, bool boxes_f64, std::int64_t box_stride, std::int64_t n,
                   std::int64_t out_h, std::int64_t out_w, double padding, std::uintptr_t fwd,
                   std::uintptr_t inv, int device, std::uintptr_t stream) {
  py::gil_scoped_release no_gil;
  DeviceGuard guard(device);
  cuda::box_to_affine(device_ptr<const void>(boxes), boxes_f64, box_stride, n,
                      static_cast<double>(out_w), static_cast<double>(out_h), padding,
                      device_ptr<double>(fwd), device_ptr<double>(inv), stream_ptr(stream));
}

}  // namespace

void bind_cuda_box_affine(py::module_& m) {
  m.def("box_to_affine", &box_to_affine, py::arg("boxes"), py::arg("boxes_f64"),
        py::arg("box_stride"), py::arg("n"), py::arg("out_h"), py::arg("out_w"), py::arg("padding"),
        py::arg("fwd"), py::arg("inv"), py::arg("device"), py::arg("stream"));
}

}  // namespace rtpose::bindings
