"""The one GPU layer: everything rtpose needs to know about, hold or move GPU memory.

It sits below every module that touches the GPU (ops, video, backends, estimators, pipeline) and
needs neither cupy nor torch to import: modules that use them import them on first use.

- :mod:`rtpose.cuda.probe`: the one GPU probe, :func:`~rtpose.cuda.probe.gpu_status` returning a
  :class:`~rtpose.cuda.probe.GpuStatus` (is a device usable, which one, why not). Every other GPU
  check derives from it.
- :mod:`rtpose.cuda.arrays`: CUDA arrays as the kernels of ``rtpose._C`` see them (device views
  of any ``__cuda_array_interface__`` / DLPack producer), :class:`~rtpose.cuda.arrays.DeviceArray`
  (a GPU array rtpose allocates itself), stream handles, host<->device copies and their counter
  :data:`~rtpose.cuda.arrays.transfers`.
- :mod:`rtpose.cuda.streams`: CUDA streams and events per pipeline stage, and the few GPU array
  steps the kernels do not cover (done with cupy).
- :mod:`rtpose.cuda.libraries`: :class:`~rtpose.cuda.libraries.ArrayLibrary`, cupy or torch
  behind one interface, holding the TensorRT backend's buffers, streams and CUDA graphs.
"""
