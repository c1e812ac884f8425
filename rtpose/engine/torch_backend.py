"""PyTorch backend: runs the ``nn.Module`` directly (development, and GPUs without TensorRT)."""

from __future__ import annotations

import numpy as np

from rtpose._deps import require


class TorchBackend:
    """Wraps a module with one input and one output under the given tensor names."""

    name = "torch"

    def __init__(
        self, module, *, input_name: str = "images", output_name: str = "preds", device="cpu"
    ):
        self.torch = require("torch", purpose="the torch backend")
        self.device = self.torch.device(device)
        self.module = module.to(self.device).eval()
        self.input_names = [input_name]
        self.output_names = [output_name]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = self.torch.from_numpy(np.ascontiguousarray(inputs[self.input_names[0]])).to(self.device)
        with self.torch.inference_mode():
            y = self.module(x)
        return {self.output_names[0]: y.float().cpu().numpy()}
