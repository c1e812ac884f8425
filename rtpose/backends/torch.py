"""PyTorch backend: runs the ``nn.Module`` directly (development, and GPUs without TensorRT)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rtpose._deps import require
from rtpose.backends.base import TensorSpec, closed_error
from rtpose.cuda.arrays import is_device_array


class TorchBackend:
    """Wraps a module with one input and one output under the given tensor names.

    On a CUDA device the module runs on a stream of its own (``stream_handle``); GPU inputs
    (cupy, DeviceArray, DLPack) are used in place and the output stays on the GPU (a torch
    tensor), host inputs give host outputs.

    A module takes an image batch (N, C, H, W) of any batch and size, so ``inputs`` reports
    every dim as -1 and ``batch_range`` is None.
    """

    name = "torch"
    batch_range: tuple[int, int] | None = None

    def __init__(
        self, module, *, input_name: str = "images", output_name: str = "preds", device="cpu"
    ):
        self.torch = require("torch", purpose="the torch backend")
        self.device = self.torch.device(device)
        self.module = module.to(self.device).eval()
        self._what = f"{type(module).__name__} on {self.device}"
        self.input_names = [input_name]
        self.output_names = [output_name]
        self.inputs = {input_name: TensorSpec(input_name, (-1, -1, -1, -1), "float32")}
        self._stream = None
        self.stream_handle: int | None = None
        if self.device.type == "cuda":
            self._stream = self.torch.cuda.Stream(device=self.device)
            self.stream_handle = int(self._stream.cuda_stream)

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Runs the module on the one input; see the class docstring for where outputs live."""
        if self.module is None:
            raise closed_error(self, self._what)
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

    def close(self) -> None:
        """Waits for the backend's stream, then drops the module and the stream. Idempotent."""
        if self.module is None:
            return
        if self._stream is not None:
            self._stream.synchronize()
        self.module = None
        self._stream = None
        self.stream_handle = None

    def __enter__(self) -> TorchBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
