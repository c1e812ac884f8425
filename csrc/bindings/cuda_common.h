// Helpers for the GPU bindings (csrc/bindings/cuda_*.cpp). Compiled only with RTPOSE_WITH_CUDA.
//
// GPU launchers take raw device addresses as Python ints (rtpose/cuda/arrays.py extracts them
// from DLPack / __cuda_array_interface__ arrays and validates shapes, dtypes and devices), the
// CUDA device ordinal the arrays live on, and a cudaStream_t handle as an int. They release the
// GIL, switch to the device for the call, queue the work on the stream and return without
// waiting for it.
#pragma once

#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace rtpose::bindings {

// Throws RuntimeError "<what>: <CUDA error name>: <description>" unless err is cudaSuccess.
inline void check_cuda(cudaError_t err, const std::string& what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so the next call starts clean
    throw std::runtime_error(what + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
  }
}

// Makes `device` current for the scope and restores the previous device afterwards.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
    if (device != previous_) check_cuda(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

template <typename T>
T* device_ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

inline void* stream_ptr(std::uintptr_t handle) { return reinterpret_cast<void*>(handle); }

}  // namespace rtpose::bindings
