"""Offline deployment (``rtpose-build``): a zoo model or ONNX file -> an accepted TensorRT engine.

- :mod:`rtpose.deploy.onnx`: torch -> ONNX export and the ONNX export cache;
- :mod:`rtpose.deploy.fp16`, :mod:`rtpose.deploy.int8`, :mod:`rtpose.deploy.calibration`: the
  precision passes, which put the precision into the ONNX itself (one path for TensorRT 10, 11
  and TensorRT-RTX);
- :mod:`rtpose.deploy.accuracy`: the gate comparing decoded keypoints with FP32;
- :mod:`rtpose.deploy.trt_builder`: the TensorRT builder;
- :mod:`rtpose.deploy.build`: the orchestration (``rtpose.build_engine``) writing the manifest.
"""
