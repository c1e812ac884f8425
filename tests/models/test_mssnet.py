"""MSS-net (multi-scale supervised stacked hourglass) with the MSR-net regression stage."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rtpose.models.base import count_complexity  # noqa: E402
from rtpose.models.hourglass import StackedHourglass  # noqa: E402
from rtpose.models.mssnet import MSSNet  # noqa: E402


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return MSSNet(num_stacks=2, num_features=32, num_keypoints=16).eval()


def test_outputs_every_scale_of_every_stack_then_the_regression(small):
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        outs = small.forward_all(x)
        final = small(x)
    per_stack = [(2, 16, 4, 4), (2, 16, 8, 8), (2, 16, 16, 16), (2, 16, 32, 32)]
    assert [tuple(o.shape) for o in outs] == per_stack * 2 + [(2, 16, 32, 32)]
    torch.testing.assert_close(final, outs[-1], rtol=0, atol=0)


def test_default_network_shapes_and_size():
    with torch.device("meta"):
        model = MSSNet()
        outs = model.forward_all(torch.empty(1, 3, 256, 256))
        size = count_complexity(model, (256, 256))
        newell = count_complexity(StackedHourglass(), (256, 256))
    sides = [8, 16, 32, 64] * 8 + [64]
    assert [tuple(o.shape) for o in outs] == [(1, 16, s, s) for s in sides]
    # our reading adds 24 small 1x1 heads and one hourglass stage (+ head and 1x1 input conv)
    # to the 8-stack Newell network: about 1/8 more of everything, measured 28.69 M / 30.72 GMACs
    assert 1.1 < size.params / newell.params < 1.15
    assert 1.1 < size.macs / newell.macs < 1.15


def test_regression_reads_the_last_stack_multi_scale_heatmaps(small):
    """The final output depends on every scale head of the last stack, and on none of an earlier
    stack (those heads are supervision only)."""
    small.zero_grad()
    small.forward_all(torch.rand(1, 3, 64, 64))[-1].sum().backward()
    last = [head.conv.weight.grad for head in small.scale_outs[-1]]
    first = [head.conv.weight.grad for head in small.scale_outs[0]]
    assert all(g is not None and g.abs().sum() > 0 for g in last)
    assert all(g is None for g in first)
    small.zero_grad()


def test_rejects_zero_stacks():
    with pytest.raises(ValueError, match="num_stacks must be >= 1, got 0"):
        MSSNet(num_stacks=0)


def test_onnx_matches_torch(small, tmp_path):
    from onnx_parity import assert_onnx_matches_torch  # tests/models: on sys.path under pytest

    assert_onnx_matches_torch(small, tmp_path / "mss.onnx", 16)
