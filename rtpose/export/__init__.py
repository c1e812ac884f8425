"""Export of PyTorch networks to ONNX."""
