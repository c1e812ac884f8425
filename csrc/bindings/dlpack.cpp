// DLPack in and out, without any GPU call (so it is tested on CPU machines with numpy):
//   dlpack_info(capsule): what a producer's capsule describes, for rtpose/cuda/arrays.py;
//   dlpack_capsule(owner, ...): a capsule describing memory `owner` keeps alive (our DeviceArray).
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "bindings/common.h"
#include "rtpose/dlpack_abi.h"

namespace rtpose::bindings {
namespace {

namespace dl = rtpose::dlpack;

// (data address, shape, strides in elements, (type code, bits, lanes), (device type, device id))
using Info = std::tuple<std::uintptr_t, std::vector<std::int64_t>, std::vector<std::int64_t>,
                        std::tuple<int, int, int>, std::tuple<int, int>>;

Info info_of(const dl::Tensor& t) {
  if (t.ndim < 0 || t.ndim > 32) {
    throw py::value_error("DLPack tensor has an invalid ndim " + std::to_string(t.ndim));
  }
  std::vector<std::int64_t> shape(t.shape, t.shape + t.ndim);
  std::vector<std::int64_t> strides(static_cast<size_t>(t.ndim));
  if (t.strides != nullptr) {
    strides.assign(t.strides, t.strides + t.ndim);
  } else {  // compact row-major
    std::int64_t s = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      strides[static_cast<size_t>(i)] = s;
      s *= shape[static_cast<size_t>(i)];
    }
  }
  const auto address = reinterpret_cast<std::uintptr_t>(t.data) + t.byte_offset;
  return Info{address,
              shape,
              strides,
              {t.dtype.code, t.dtype.bits, t.dtype.lanes},
              {t.device.device_type, t.device.device_id}};
}

Info dlpack_info(const py::capsule& capsule) {
  const std::string name = capsule.name() ? capsule.name() : "";
  if (name == "dltensor") return info_of(capsule.get_pointer<dl::ManagedTensor>()->dl_tensor);
  if (name == "dltensor_versioned") {
    const auto* t = capsule.get_pointer<dl::ManagedTensorVersioned>();
    if (t->version.major != 1) {
      throw py::value_error("DLPack capsule of unsupported major version " +
                            std::to_string(t->version.major) + " (rtpose reads version 1)");
    }
    return info_of(t->dl_tensor);
  }
  throw py::value_error("not an unconsumed DLPack capsule (name '" + name +
                        "'; expected 'dltensor' or 'dltensor_versioned')");
}

// What a capsule we produce owns: the Python owner (kept alive) and the shape/stride storage.
struct Context {
  PyObject* owner;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> strides;
};

void delete_managed(dl::ManagedTensor* self) {
  auto* ctx = static_cast<Context*>(self->manager_ctx);
  {
    // Consumers may call the deleter from any thread, with or without the GIL.
    py::gil_scoped_acquire gil;
    Py_XDECREF(ctx->owner);
  }
  delete ctx;
  delete self;
}

// Capsule destructor: frees the tensor unless a consumer took it (renamed to "used_dltensor").
void capsule_destructor(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, "dltensor")) {
    auto* t = static_cast<dl::ManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
    if (t != nullptr && t->deleter != nullptr) t->deleter(t);
  }
}

py::capsule dlpack_capsule(const py::object& owner, std::uintptr_t data,
                           const std::vector<std::int64_t>& shape,
                           const std::vector<std::int64_t>& strides, int code, int bits,
                           int device_type, int device_id) {
  if (shape.size() != strides.size()) {
    throw py::value_error("dlpack_capsule: shape and strides must have the same length");
  }
  auto* ctx = new Context{owner.ptr(), shape, strides};
  Py_INCREF(ctx->owner);
  auto* t = new dl::ManagedTensor{};
  t->dl_tensor.data = reinterpret_cast<void*>(data);
  t->dl_tensor.device = {device_type, device_id};
  t->dl_tensor.ndim = static_cast<std::int32_t>(shape.size());
  t->dl_tensor.dtype = {static_cast<std::uint8_t>(code), static_cast<std::uint8_t>(bits), 1};
  t->dl_tensor.shape = ctx->shape.data();
  t->dl_tensor.strides = ctx->strides.data();
  t->dl_tensor.byte_offset = 0;
  t->manager_ctx = ctx;
  t->deleter = delete_managed;
  PyObject* capsule = PyCapsule_New(t, "dltensor", capsule_destructor);
  if (capsule == nullptr) {
    delete_managed(t);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(capsule);
}

}  // namespace

void bind_dlpack(py::module_& m) {
  m.def("dlpack_info", &dlpack_info, py::arg("capsule"),
        "(address, shape, strides in elements, (code, bits, lanes), (device type, id)) of an "
        "unconsumed DLPack capsule; the capsule is left as it is (the caller keeps it alive).");
  m.def("dlpack_capsule", &dlpack_capsule, py::arg("owner"), py::arg("data"), py::arg("shape"),
        py::arg("strides"), py::arg("code"), py::arg("bits"), py::arg("device_type"),
        py::arg("device_id"),
        "A 'dltensor' capsule describing memory that `owner` keeps alive (strides in elements).");
}

}  // namespace rtpose::bindings
