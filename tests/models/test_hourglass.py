"""Stacked hourglass networks: Newell's (pytorch_stacked_hourglass layout) and MMPose hourglass52.

Sizes are checked on the ``meta`` device (shapes only, no memory, no arithmetic); numerics on small
widths / inputs. The reference sizes were measured on the original modules (Newell's
pytorch_stacked_hourglass, MMPose's hourglass52) with ``torch.utils.flop_counter``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn import functional as F  # noqa: E402

from rtpose.errors import CheckpointError  # noqa: E402
from rtpose.models.base import count_complexity  # noqa: E402
from rtpose.models.checkpoint import load_state_dict_strict, read_state_dict  # noqa: E402
from rtpose.models.hourglass import (  # noqa: E402
    Residual,
    StackedHourglass,
    stacked_hourglass_to_rtpose,
)
from rtpose.models.hourglass52 import (  # noqa: E402
    BasicBlock,
    HourglassNet,
    mmpose_hourglass_to_rtpose,
)

KEYS = Path(__file__).parents[1] / "data" / "checkpoint-keys"
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _key_list(name: str) -> dict[str, tuple[int, ...]]:
    """``key TAB (shape)`` lines, dumped from the instantiated MMPose modules."""
    rows = [line.split("\t") for line in (KEYS / name).read_text().splitlines()]
    return {k: tuple(int(d) for d in s.strip("()").split(",") if d.strip()) for k, s in rows}


def _meta_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def _shapes(state) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BN statistics, so that no layer is an identity by accident."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            else:
                t.copy_(0.2 * torch.randn(t.shape, generator=gen))
    return model.eval()


# ------------------------------------------------------------------------------- MMPose hg52


@pytest.mark.parametrize(
    ("listing", "num_keypoints"),
    [("keys_hourglass52_coco256.txt", 17), ("keys_hourglass52_coco384.txt", 17),
     ("keys_hourglass52_mpii256.txt", 16)],
)  # fmt: skip
@pytest.mark.parametrize("head_prefix", ["head.", "keypoint_head."])  # MMPose 1.x / 0.x files
def test_mmpose_key_lists_map_onto_hourglass52(listing, num_keypoints, head_prefix):
    published = _key_list(listing)
    assert len(published) == 494
    state = {(head_prefix + k[5:] if k.startswith("head.") else k): v
             for k, v in _meta_state(published).items()}  # fmt: skip
    mapped = mmpose_hourglass_to_rtpose(state)
    with torch.device("meta"):
        own = HourglassNet(num_stacks=1, num_keypoints=num_keypoints).state_dict()
    assert _shapes(mapped) == _shapes(own)
    # the only keys dropped: the 12 tensors of the never-run inters.0 block
    dropped = set(published) - set(mapped)
    assert len(dropped) == 12 and all(k.startswith("backbone.inters.0.") for k in dropped)


def test_mmpose_map_drops_inters_only_when_unused():
    with torch.device("meta"):
        own = HourglassNet(num_stacks=2).state_dict()
    assert any(k.startswith("backbone.inters.0.") for k in own)  # between stacks 0 and 1: used
    extra = {k.replace("inters.0.", "inters.1."): v for k, v in own.items() if ".inters.0." in k}
    mapped = mmpose_hourglass_to_rtpose({"module." + k: v for k, v in {**own, **extra}.items()})
    assert list(mapped) == list(own)


def test_mmpose_map_leaves_other_surprises_to_the_strict_loader():
    with torch.device("meta"):
        model = HourglassNet(num_stacks=1)
    state = dict(model.state_dict())
    state["backbone.foo.weight"] = torch.empty(3, device="meta")
    del state["backbone.out_convs.0.conv.weight"]
    mapped = mmpose_hourglass_to_rtpose(state)
    assert "backbone.foo.weight" in mapped
    with pytest.raises(CheckpointError, match=r"1 missing: backbone\.out_convs\.0\.conv\.weight"):
        load_state_dict_strict(model, mapped, arch="hourglass52", source="test")


@pytest.mark.parametrize(
    ("input_side", "params", "gmacs"),
    # MMPose's module holds the never-run inters.0 block (1,180,672 params): 94.85 M with it.
    [(256, 94.85e6 - 1_180_672, 28.62), (384, 94.85e6 - 1_180_672, 64.40)],
    ids=["256", "384"],
)
def test_hourglass52_size(input_side, params, gmacs):
    with torch.device("meta"):
        size = count_complexity(HourglassNet(num_stacks=1), (input_side, input_side))
    assert size.params == pytest.approx(params, rel=1e-3)
    assert size.macs / 1e9 == pytest.approx(gmacs, rel=1e-3)


def test_hourglass104_backbone_size():
    with torch.device("meta"):
        model = HourglassNet(num_stacks=2)
    assert sum(p.numel() for p in model.backbone.parameters()) == pytest.approx(187.7e6, rel=1e-3)


@pytest.mark.parametrize(("side", "stacks"), [(256, 1), (384, 1), (256, 2)])
def test_hourglass52_output_shapes(side, stacks):
    with torch.device("meta"):
        model = HourglassNet(num_stacks=stacks, num_keypoints=17)
        outs = model.forward_all(torch.empty(2, 3, side, side))
    assert [tuple(o.shape) for o in outs] == [(2, 17, side // 4, side // 4)] * stacks


def test_basic_block_is_post_activation_with_projection_shortcut():
    block = _randomize(BasicBlock(8, 12, stride=2))
    x = torch.randn(2, 8, 16, 16)

    def bn(y, m):
        return F.batch_norm(y, m.running_mean, m.running_var, m.weight, m.bias, eps=m.eps)

    y = F.relu(bn(F.conv2d(x, block.conv1.weight, stride=2, padding=1), block.bn1))
    y = bn(F.conv2d(y, block.conv2.weight, padding=1), block.bn2)
    conv, norm = block.downsample
    expected = F.relu(y + bn(F.conv2d(x, conv.weight, stride=2), norm))
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)


@pytest.mark.slow
def test_hourglass52_onnx_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from rtpose.deploy.onnx import export_onnx

    torch.manual_seed(0)
    model = HourglassNet(num_stacks=1, num_keypoints=17).eval()
    path = export_onnx(model, tmp_path / "hg52.onnx", sample_shape=(1, 3, 128, 128),
                       output_axes={2: "h", 3: "w"})  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 128, 128), dtype=np.float32)
    (got,) = session.run(None, {"images": x})
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 17, 32, 32)
    # fp32 reassociation over ~100 layers, relative to the output's scale
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


# ---------------------------------------------------------------------------- Newell original


@pytest.mark.parametrize(
    ("stacks", "params", "gmacs", "stored"),
    # measured on Newell's modules: used params, GMACs at 256x256 (K=16), params stored in the port
    [(1, 3.43e6, 5.15, 4.36e6), (2, 6.57e6, 8.33, 8.43e6), (8, 25.43e6, 27.44, 32.82e6)],
    ids=["1-stack", "2-stack", "8-stack"],
)
def test_stacked_hourglass_size(stacks, params, gmacs, stored):
    with torch.device("meta"):
        model = StackedHourglass(num_stacks=stacks)
        size = count_complexity(model, (256, 256))
        port = _port_checkpoint(model)
    assert size.params == pytest.approx(params, rel=2e-3)
    assert size.macs / 1e9 == pytest.approx(gmacs, rel=2e-3)
    # the port's files hold a skip_layer in every Residual: this says which ones we left out
    port_params = sum(v.numel() for k, v in port.items() if not k.endswith(BUFFERS))
    assert port_params == pytest.approx(stored, rel=2e-3)


def _port_checkpoint(model: StackedHourglass, seed: int = 1) -> dict[str, torch.Tensor]:
    """A pytorch_stacked_hourglass-style state_dict holding ``model``'s weights: ``model.module.``
    prefix, and a random (unused) ``skip_layer`` in every same-width Residual."""
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    state = {f"model.module.{k}": v for k, v in model.state_dict().items()}
    for name, module in model.named_modules():
        if isinstance(module, Residual) and module.skip_layer is None:
            c = module.bn1.num_features
            w, b = (torch.randn(c, c, 1, 1, generator=gen), torch.randn(c, generator=gen))
            state[f"model.module.{name}.skip_layer.conv.weight"] = w.to(device)
            state[f"model.module.{name}.skip_layer.conv.bias"] = b.to(device)
    return state


@pytest.fixture(scope="module")
def small_hourglass():
    torch.manual_seed(0)
    return _randomize(StackedHourglass(num_stacks=2, num_features=32, num_keypoints=16))


def test_port_checkpoint_round_trip_keeps_outputs(small_hourglass, tmp_path):
    port = _port_checkpoint(small_hourglass)
    path = tmp_path / "checkpoint.pt"
    optimizer = {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}
    torch.save({"state_dict": port, "optimizer": optimizer}, path)

    mapped = stacked_hourglass_to_rtpose(read_state_dict(path))
    assert set(mapped) == set(small_hourglass.state_dict())
    # a width-changing Residual keeps its (used) skip conv: pre.1 is 64 -> 128
    assert mapped["pre.1.skip_layer.conv.weight"].shape == (128, 64, 1, 1)

    fresh = StackedHourglass(num_stacks=2, num_features=32, num_keypoints=16).eval()
    load_state_dict_strict(fresh, mapped, arch="hourglass-2", source=str(path))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        want = small_hourglass.forward_all(x)
        got = fresh.forward_all(x)
    assert len(got) == 2
    for g, w in zip(got, want, strict=True):
        assert g.shape == (2, 16, 16, 16)
        torch.testing.assert_close(g, w, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("outs.1.conv.bias"), r"1 missing: outs\.1\.conv\.bias"),
        (lambda s: s.__setitem__("outs.2.conv.bias", torch.zeros(16)),
         r"1 unexpected: outs\.2\.conv\.bias"),
        (lambda s: s.__setitem__("outs.1.conv.weight", torch.zeros(17, 32, 1, 1)),
         r"outs\.1\.conv\.weight \(17, 32, 1, 1\) vs \(16, 32, 1, 1\)"),
    ],
)  # fmt: skip
def test_strict_loading_lists_bad_keys(small_hourglass, edit, message):
    mapped = stacked_hourglass_to_rtpose(_port_checkpoint(small_hourglass))
    edit(mapped)
    before = small_hourglass.outs[1].conv.bias.clone()
    with pytest.raises(CheckpointError, match=message):
        load_state_dict_strict(small_hourglass, mapped, arch="hourglass-2", source="test")
    torch.testing.assert_close(small_hourglass.outs[1].conv.bias, before)  # left untouched


@pytest.mark.parametrize(
    "key",
    ["model.module.head.final.weight", "pre.0.bn1.weight.extra", "outs.0.skip_layer.conv.weight",
     "hgs.0.1.up1.bn1.weight"],
)  # fmt: skip
def test_port_map_refuses_unknown_keys(small_hourglass, key):
    state = _port_checkpoint(small_hourglass)
    state[key] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="1 keys are not pytorch_stacked_hourglass") as info:
        stacked_hourglass_to_rtpose(state)
    assert key.removeprefix("model.module.") in str(info.value)


def test_stacked_hourglass_forward(small_hourglass):
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        outs = small_hourglass.forward_all(x)
        final = small_hourglass(x)
    assert [tuple(o.shape) for o in outs] == [(1, 16, 32, 32)] * 2
    torch.testing.assert_close(final, outs[-1], rtol=0, atol=0)
    assert not torch.allclose(outs[0], outs[1])  # the second stack refines, not repeats
    with torch.device("meta"):
        outs = StackedHourglass().forward_all(torch.empty(1, 3, 256, 256))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 64, 64)] * 8


@pytest.mark.parametrize(("in_ch", "out_ch"), [(16, 16), (8, 16)])
def test_residual_is_preactivation_bottleneck(in_ch, out_ch):
    block = _randomize(Residual(in_ch, out_ch))
    x = torch.randn(2, in_ch, 8, 8)

    def pre(y, bn):
        z = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps)
        return F.relu(z)

    def conv(y, c, padding=0):
        return F.conv2d(y, c.conv.weight, c.conv.bias, padding=padding)

    y = conv(pre(x, block.bn1), block.conv1)
    y = conv(pre(y, block.bn2), block.conv2, padding=1)
    y = conv(pre(y, block.bn3), block.conv3)
    skip = x if in_ch == out_ch else conv(x, block.skip_layer)
    assert (block.skip_layer is None) == (in_ch == out_ch)
    with torch.no_grad():
        torch.testing.assert_close(block(x), y + skip)


def test_stacked_hourglass_onnx_matches_torch(small_hourglass, tmp_path):
    from onnx_parity import assert_onnx_matches_torch  # tests/models: on sys.path under pytest

    assert_onnx_matches_torch(small_hourglass, tmp_path / "hg.onnx", 16)
