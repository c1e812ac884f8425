"""MSPN and RSN: published key lists, sizes, the checkpoint maps and output shapes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rtpose.errors import CheckpointError  # noqa: E402
from rtpose.models.base import count_complexity  # noqa: E402
from rtpose.models.checkpoint import load_state_dict_strict  # noqa: E402
from rtpose.models.megvii_checkpoint import (  # noqa: E402
    MMPOSE_NORMALISATION,
    OFFICIAL_NORMALISATION,
    detect_layout,
    megvii_to_rtpose,
    mmpose_to_rtpose,
    official_mspn_to_rtpose,
    official_rsn_to_rtpose,
)
from rtpose.models.mspn import MSPN  # noqa: E402
from rtpose.models.rsn import RSN  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from official_megvii import official_mspn, official_rsn  # noqa: E402

KEYS = Path(__file__).parents[1] / "data" / "checkpoint-keys"
RSN50 = (3, 4, 6, 3)

# name -> (builder, params in M, GMACs at 256x192 of all 4*S supervised outputs), measured on
# MMPose 1.x's own MSPN / RSN modules with torch.utils.flop_counter.
VARIANTS = {
    "mspn50_1stg": (lambda: MSPN(1), 25.11, 5.07),
    "mspn50_2stg": (lambda: MSPN(2), 56.80, 11.26),
    "mspn50_3stg": (lambda: MSPN(3), 88.49, 17.45),
    "mspn50_4stg": (lambda: MSPN(4), 120.18, 23.64),
    "rsn18": (lambda: RSN(), 9.15, 2.25),
    "rsn18_prm": (lambda: RSN(use_prm=True), 9.17, 2.30),
    "rsn50": (lambda: RSN(num_blocks=RSN50), 19.33, 4.07),
    "rsn50_2x": (lambda: RSN(2, RSN50), 39.26, 8.22),
    "rsn50_3x": (lambda: RSN(3, RSN50), 59.20, 12.36),
}


def _published_shapes(name: str) -> dict[str, tuple[int, ...]]:
    # key TAB shape, dumped from the state_dict of MMPose 1.x's MSPN / RSN modules
    rows = [line.split("\t") for line in (KEYS / f"keys_{name}.txt").read_text().splitlines()]
    return {k: tuple(int(d) for d in s.strip("()").split(",") if d.strip()) for k, s in rows}


@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_matches_the_mmpose_key_list(name):
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = VARIANTS[name][0]()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    published = _published_shapes(name)
    assert sorted(set(ours) ^ set(published)) == []
    assert ours == published


class _AllOutputs(torch.nn.Module):
    """Counts the training graph (every head), the convention of the reference tables."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.forward_all(x)


@pytest.mark.slow
@pytest.mark.parametrize("name", VARIANTS)
def test_params_and_macs_match_the_reference_table(name):
    torch.set_num_threads(1)
    build, params_m, gmacs = VARIANTS[name]
    params, macs = count_complexity(_AllOutputs(build()), (256, 192))
    assert params / 1e6 == pytest.approx(params_m, rel=0.01)
    assert macs / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_deployed_forward_runs_only_the_final_head():
    torch.set_num_threads(1)
    net = RSN()
    _, macs_all = count_complexity(_AllOutputs(net), (128, 96))
    _, macs_final = count_complexity(net, (128, 96))
    # three coarser heads of (1x1 256->256, 3x3 256->17) on 4x3 + 8x6 + 16x12 positions
    skipped = (4 * 3 + 8 * 6 + 16 * 12) * (256 * 256 + 256 * 17 * 9)
    assert macs_all - macs_final == skipped


# --- authors' checkpoints -> rtpose: outputs preserved on random weights --------------------


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Random conv weights and biases, BN affine and running statistics (all non-trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.copy_(
                    torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5
                )
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.5)
            elif isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


@pytest.mark.parametrize(
    "official, ours, convert",
    [
        pytest.param(
            lambda: official_rsn(1, input_hw=(128, 96)), RSN, official_rsn_to_rtpose, id="rsn18"
        ),
        pytest.param(
            lambda: official_rsn(2, input_hw=(128, 96)),
            lambda: RSN(2),
            official_rsn_to_rtpose,
            id="2xrsn18",
        ),
        pytest.param(
            lambda: official_mspn(2, input_hw=(128, 96)),
            lambda: MSPN(2),
            official_mspn_to_rtpose,
            id="2xmspn50",
        ),
    ],
)
def test_official_map_preserves_outputs(official, ours, convert):
    torch.set_num_threads(1)
    ref, net = official().eval(), ours().eval()
    _randomise(ref, seed=0)
    state = ref.state_dict()
    before = {k: v.clone() for k, v in state.items()}
    assert detect_layout(state) == "official"
    load_state_dict_strict(net, convert(state), arch="test", source="official")
    assert all(torch.equal(before[k], v) for k, v in state.items())  # caller's tensors untouched
    x = torch.randn(1, 3, 128, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got, final = ref(x), net.forward_all(x), net(x)
    assert len(got) == len(expected) == 4 * net.num_stages
    # float32: folding a bias into the running mean reorders a few roundings; observed ~2e-6
    for e, g in zip(expected, got):
        assert g.shape == (1, 17, 32, 24)
        assert float((g - e).abs().max() / e.abs().max()) <= 1e-5
    assert torch.equal(final, got[-1])


def test_official_map_lists_unmapped_keys():
    with torch.device("meta"):
        state = dict(official_rsn(1).state_dict())
    state["stage0.upsample.up1.attention.conv.weight"] = torch.zeros(1)
    state["stage0.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="2 keys") as info:
        official_rsn_to_rtpose(state)
    assert "stage0.extra.weight" in str(info.value)
    assert "stage0.upsample.up1.attention.conv.weight" in str(info.value)
    # an RSN file is not an MSPN file: the RSB names are unknown to the MSPN map
    with pytest.raises(CheckpointError, match="conv_bn_relu2_1_1"):
        official_mspn_to_rtpose(official_rsn(1).state_dict())


def test_official_map_refuses_a_conv_bias_without_bn():
    state = official_rsn(1).state_dict()
    del state["stage0.upsample.up2.up_conv.bn.running_mean"]
    with pytest.raises(CheckpointError, match=r"stage0\.upsample\.up2\.up_conv\.conv\.bias"):
        official_rsn_to_rtpose(state)


def test_official_bias_is_folded_into_the_running_mean():
    state = official_rsn(1).state_dict()
    out = official_rsn_to_rtpose(state)
    key = "backbone.multi_stage_rsn.0.upsample.up1.in_skip.bn.running_mean"
    expected = state["stage0.upsample.up1.u_skip.bn.running_mean"]
    expected = expected - state["stage0.upsample.up1.u_skip.conv.bias"]
    assert torch.equal(out[key], expected)
    assert not any(k.endswith("conv.bias") for k in out)


# --- MMPose checkpoints ----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "module."])
def test_mmpose_map_accepts_0x_and_1x_heads(prefix):
    with torch.device("meta"):
        net = RSN(use_prm=True)
    own = net.state_dict()
    v1 = {prefix + k: v for k, v in own.items()}
    v0 = {prefix + k.replace("head.", "keypoint_head.", 1): v for k, v in own.items()}
    for state in (v0, v1):
        assert detect_layout(state) == "mmpose"
        out = mmpose_to_rtpose(state)
        assert list(out) == list(own)
        assert all(out[k] is own[k] for k in own)
        assert megvii_to_rtpose(state, family="rsn").keys() == own.keys()


@pytest.mark.parametrize("family", ["mspn", "rsn"])
def test_strict_load_lists_missing_extra_and_misshaped_keys(family):
    with torch.device("meta"):
        net = MSPN(1) if family == "mspn" else RSN()
    state = dict(net.state_dict())
    missing = next(k for k in state if "predict_layers.3.conv_layers.1.bn.bias" in k)
    shaped = "backbone.top.top.0.conv.weight"
    del state[missing]
    state["head.predict_layers.4.conv_layers.0.conv.weight"] = torch.zeros(1)
    state[shaped] = torch.zeros(64, 3, 3, 3)
    with pytest.raises(CheckpointError) as info:
        load_state_dict_strict(net, mmpose_to_rtpose(state), arch=family, source="ckpt")
    message = str(info.value)
    assert f"1 missing: {missing}" in message
    assert "1 unexpected: head.predict_layers.4.conv_layers.0.conv.weight" in message
    assert f"{shaped} (64, 3, 3, 3) vs (64, 3, 7, 7)" in message


def test_detect_layout_refuses_other_checkpoints():
    with pytest.raises(CheckpointError, match=r"model\.0\.conv\.weight"):
        detect_layout({"model.0.conv.weight": torch.zeros(1)})


def test_official_and_mmpose_normalisation_are_the_same_numbers_in_opposite_order():
    assert OFFICIAL_NORMALISATION.channel_order == "bgr"
    assert MMPOSE_NORMALISATION.channel_order == "rgb"
    assert OFFICIAL_NORMALISATION.mean == pytest.approx(MMPOSE_NORMALISATION.mean[::-1])
    assert OFFICIAL_NORMALISATION.std == pytest.approx(MMPOSE_NORMALISATION.std[::-1])


# --- construction and shapes -----------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 5, 2.0])
def test_mspn_refuses_unpublished_stage_counts(bad):
    with pytest.raises(ValueError, match="num_stages"):
        MSPN(bad)


@pytest.mark.parametrize(
    "kwargs", [{"num_stages": 0}, {"num_blocks": (2, 2, 2)}, {"num_blocks": (2, 0, 2, 2)}]
)
def test_rsn_refuses_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RSN(**kwargs)


def test_rsb_width_quirk():
    net = RSN()
    layers = net.backbone.multi_stage_rsn[0].downsample
    widths = [layers.layer2[0].branch_channels, layers.layer2[1].branch_channels]
    widths += [layers.layer3[0].branch_channels, layers.layer4[1].branch_channels]
    assert widths == [26, 52, 52, 208]


@pytest.mark.slow
@pytest.mark.parametrize("hw", [(256, 192), (384, 288), (256, 256)])
def test_rsn_output_shapes(hw):
    torch.set_num_threads(1)
    net = RSN(use_prm=True).eval()
    h, w = hw
    with torch.no_grad():
        outs = net.forward_all(torch.randn(2, 3, h, w))
    assert [tuple(o.shape) for o in outs] == [(2, 17, h // 4, w // 4)] * 4


@pytest.mark.slow
def test_mspn_output_shape_and_stage_count():
    torch.set_num_threads(1)
    net = MSPN(2, num_keypoints=16).eval()
    with torch.no_grad():
        outs = net.forward_all(torch.randn(2, 3, 256, 192))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 64, 48)] * 8
    assert net.num_keypoints == 16


def test_forward_is_the_last_supervised_output_and_prm_changes_it():
    torch.set_num_threads(1)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    plain = RSN().eval()
    torch.manual_seed(0)
    refined = RSN(use_prm=True).eval()
    with torch.no_grad():
        y, y_all, y_prm = plain(x), plain.forward_all(x), refined(x)
    assert y.shape == (2, 17, 16, 16)
    assert torch.equal(y, y_all[-1])
    # PRM: x1 * (1 + a * b) with x1 = relu(conv(...)) >= 0 and a, b in (0.5, 1)
    assert y_prm.shape == y.shape
    assert bool((y_prm >= 0).all()) and not torch.allclose(y_prm, y)


@pytest.mark.slow
def test_onnx_export_dynamic_batch_and_size_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    np = pytest.importorskip("numpy")
    from rtpose.deploy.onnx import export_onnx

    torch.set_num_threads(1)
    net = RSN(2, use_prm=True).eval()  # every layer kind: RSB split, skips, cross_conv, PRM
    path = export_onnx(net, tmp_path / "rsn.onnx", sample_shape=(1, 3, 128, 96),
                       output_axes={2: "height", 3: "width"})  # fmt: skip
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    compute = {"Conv", "BatchNormalization", "Relu", "MaxPool", "Resize", "Add", "Mul", "Sigmoid",
               "Concat", "Split", "GlobalAveragePool", "Flatten", "Gemm", "Unsqueeze"}  # fmt: skip
    shape_plumbing = {"Shape", "Gather", "Slice", "Cast", "Constant", "Identity"}
    assert ops <= compute | shape_plumbing, ops - compute - shape_plumbing
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 160, 128), (1, 3, 100, 76)]:  # 100x76: not a multiple of 32
        x = rng.random(shape, dtype=np.float32)
        (got,) = session.run(None, {"images": x})
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        assert got.shape == (shape[0], 17, -(-shape[2] // 4), -(-shape[3] // 4))
        # fp32 reassociation only (observed ~1e-6)
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
