"""What every top-down heatmap network in rtpose.models provides, and how its size is counted.

A network is a plain ``torch.nn.Module``:

- ``forward(x)``: ``x`` (N, 3, H, W) float32, already normalised (the zoo entry says how);
  returns the final heatmaps (N, K, h, w). This is what is exported to ONNX and run by every
  backend.
- ``forward_all(x)``: every supervised output (intermediate supervision of the stacks / stages /
  scales), a list of tensors, final prediction last. Used by training.
- ``num_keypoints``: K.

Key names are the ones of the public checkpoints (MMPose 1.x names for MMPose models), so that
the checkpoint maps in :mod:`rtpose.models.checkpoint` are explicit and mostly identities.
"""

from __future__ import annotations

from typing import NamedTuple

from rtpose._deps import require


class Complexity(NamedTuple):
    """Size of a network at one input size."""

    params: int  # number of parameters (trainable tensors; BN running stats excluded)
    macs: int  # multiply-accumulates of convolutions and matrix products, batch 1


def count_complexity(model, input_hw: tuple[int, int]) -> Complexity:
    """Parameters and MACs of ``model`` for one (1, 3, H, W) input.

    MACs are conv / linear / matmul FLOPs / 2 as counted by ``torch.utils.flop_counter``
    (BatchNorm, activations, pooling and interpolation are not counted), the convention of the
    reference sizes the model tests compare against.
    """
    torch = require("torch", purpose="counting network parameters and MACs")
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    x = torch.zeros(1, 3, *input_hw)
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return Complexity(params=params, macs=counter.get_total_flops() // 2)
