"""PyTorch backend: runs the ``nn.Module`` directly (development, and GPUs without TensorRT)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rtpose._deps import require
from rtpose.ops._device import is_device_array


class TorchBackend:
    """Wraps a module with one input and one output under the given tensor names.

    On a CUDA device the module runs on a stream of its own (``stream_handle``); GPU inputs
    (cupy, DeviceArray, DLPack) are used in place and the output stays on the GPU (a torch
    tensor), host inputs give host outputs.
    """

    name = "torch"

    def __init__(
        self, module, *, input_name: str = "images", output_name: str = "preds", device="cpu"
    ):
        self.torch = require("torch", purpose="the torch backend")
        self.device = self.torch.device(device)
        self.module = module.to(self.device).eval()
        self.input_names = [input_name]
        self.output_names = [output_name]
        self._stream = None
        self.stream_handle: int | None = None
        if self.device.type == "cuda":
            self._stream = self.torch.cuda.Stream(device=self.device)
            self.stream_handle = int(self._stream.cuda_stream)

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        torch = self.torch
        value = inputs[self.input_names[0]]
        on_device = is_device_array(value)
        if on_device:
            if self.device.type != "cuda":
                raise ValueError(
                    "TorchBackend on the CPU got a GPU array; create it with device='cuda'"
                )
            x = (
                torch.from_dlpack(value)
                if not hasattr(value, "__cuda_array_interface__")
                else (torch.as_tensor(value, device=self.device))
            )
        else:
            x = torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
        if self._stream is None:
            with torch.inference_mode():
                return {self.output_names[0]: self.module(x).float().cpu().numpy()}
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            y = self.module(x.float() if x.dtype != torch.float32 else x).float().contiguous()
        self._stream.synchronize()
        if on_device:
            return {self.output_names[0]: y}
        return {self.output_names[0]: y.cpu().numpy()}
