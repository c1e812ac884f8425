// The small CUDA runtime surface rtpose/cuda/arrays.py needs: device count, the device of a
// pointer, stream-ordered buffers, host<->device copies and cross-stream ordering. Nothing here
// synchronises the host except copy_to_host (documented as such: it is for tests and debugging).
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "bindings/common.h"
#include "bindings/cuda_common.h"

namespace rtpose::bindings {
namespace {

// Device memory from the stream-ordered allocator: allocated and freed in `stream`'s order, so
// dropping the buffer right after queueing a kernel that uses it is safe (the free waits for the
// kernel), and no call here blocks the host. The stream must outlive the buffer.
class DeviceBuffer {
 public:
  DeviceBuffer(std::size_t nbytes, int device, std::uintptr_t stream)
      : nbytes_(nbytes), device_(device), stream_(stream) {
    if (nbytes == 0) return;  // ptr 0: valid for empty arrays
    DeviceGuard guard(device);
    void* p = nullptr;
    check_cuda(cudaMallocAsync(&p, nbytes, static_cast<cudaStream_t>(stream_ptr(stream))),
               "cudaMallocAsync of " + std::to_string(nbytes) + " bytes on device " +
                   std::to_string(device));
    ptr_ = reinterpret_cast<std::uintptr_t>(p);
  }
  ~DeviceBuffer() {
    if (ptr_ == 0) return;
    int previous = 0;
    cudaGetDevice(&previous);
    cudaSetDevice(device_);
    void* p = reinterpret_cast<void*>(ptr_);
    if (cudaFreeAsync(p, static_cast<cudaStream_t>(stream_ptr(stream_))) != cudaSuccess) {
      cudaGetLastError();
      cudaFree(p);  // the stream is gone: a synchronous free is the safe fallback
    }
    cudaSetDevice(previous);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  std::uintptr_t ptr() const { return ptr_; }
  std::size_t nbytes() const { return nbytes_; }
  int device() const { return device_; }
  std::uintptr_t stream() const { return stream_; }

 private:
  std::uintptr_t ptr_ = 0;
  std::size_t nbytes_;
  int device_;
  std::uintptr_t stream_;
};

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {  // no driver, no device: not an error here
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string device_error() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  cudaGetLastError();
  if (err != cudaSuccess)
    return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  return n == 0 ? "cudaGetDeviceCount reported 0 devices" : "";
}

// Device ordinal of a device (or managed) pointer; ValueError for host or unknown memory.
int pointer_device(std::uintptr_t address) {
  cudaPointerAttributes attributes{};
  const cudaError_t err = cudaPointerGetAttributes(&attributes, reinterpret_cast<void*>(address));
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw py::value_error(std::string("address is not CUDA memory (") + cudaGetErrorName(err) +
                          ")");
  }
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
    throw py::value_error("address is host memory, not GPU memory");
  }
  return attributes.device;
}

void copy_from_host(std::uintptr_t dst, const py::array& src, int device, std::uintptr_t stream) {
  if (!(src.flags() & py::array::c_style)) {
    throw py::value_error("copy_from_host: src must be C-contiguous");
  }
  const auto nbytes = static_cast<std::size_t>(src.nbytes());
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  // Pageable source: the runtime stages it before returning, so `src` may be freed right after
  // and the host never waits for the device.
  check_cuda(cudaMemcpyAsync(device_ptr<void>(dst), src.data(), nbytes, cudaMemcpyHostToDevice,
                             static_cast<cudaStream_t>(stream_ptr(stream))),
             "cudaMemcpyAsync (host to device)");
}

void copy_to_host(const py::array& dst, std::uintptr_t src, int device, std::uintptr_t stream) {
  if (!(dst.flags() & py::array::c_style) || !dst.writeable()) {
    throw py::value_error("copy_to_host: dst must be C-contiguous and writeable");
  }
  const auto nbytes = static_cast<std::size_t>(dst.nbytes());
  if (nbytes == 0) return;
  void* host = const_cast<void*>(dst.data());
  py::gil_scoped_release no_gil;
  DeviceGuard guard(device);
  const auto s = static_cast<cudaStream_t>(stream_ptr(stream));
  check_cuda(cudaMemcpyAsync(host, device_ptr<void>(src), nbytes, cudaMemcpyDeviceToHost, s),
             "cudaMemcpyAsync (device to host)");
  check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

// Makes `consumer` wait (on the device, not the host) for the work queued so far on `producer`.
void stream_wait(std::uintptr_t producer, std::uintptr_t consumer, int device) {
  if (producer == consumer) return;
  DeviceGuard guard(device);
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  cudaError_t err = cudaEventRecord(event, static_cast<cudaStream_t>(stream_ptr(producer)));
  if (err == cudaSuccess) {
    err = cudaStreamWaitEvent(static_cast<cudaStream_t>(stream_ptr(consumer)), event, 0);
  }
  cudaEventDestroy(event);  // released once the wait has been satisfied
  check_cuda(err, "cudaEventRecord / cudaStreamWaitEvent");
}

void synchronize(int device, std::uintptr_t stream) {
  py::gil_scoped_release no_gil;
  DeviceGuard guard(device);
  check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_ptr(stream))),
             "cudaStreamSynchronize");
}

}  // namespace

void bind_cuda_runtime(py::module_& m) {
  py::class_<DeviceBuffer>(m, "DeviceBuffer")
      .def(py::init<std::size_t, int, std::uintptr_t>(), py::arg("nbytes"), py::arg("device"),
           py::arg("stream"))
      .def_property_readonly("ptr", &DeviceBuffer::ptr)
      .def_property_readonly("nbytes", &DeviceBuffer::nbytes)
      .def_property_readonly("device", &DeviceBuffer::device)
      .def_property_readonly("stream", &DeviceBuffer::stream);
  m.def("device_count", &device_count, "Number of CUDA devices (0 without a driver).");
  m.def("device_error", &device_error, "Why there is no CUDA device ('' when there is one).");
  m.def("pointer_device", &pointer_device, py::arg("address"));
  m.def("copy_from_host", &copy_from_host, py::arg("dst"), py::arg("src"), py::arg("device"),
        py::arg("stream"));
  m.def("copy_to_host", &copy_to_host, py::arg("dst"), py::arg("src"), py::arg("device"),
        py::arg("stream"));
  m.def("stream_wait", &stream_wait, py::arg("producer"), py::arg("consumer"), py::arg("device"));
  m.def("synchronize", &synchronize, py::arg("device"), py::arg("stream"));
}

}  // namespace rtpose::bindings
