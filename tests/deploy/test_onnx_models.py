"""Every top-down zoo network exports to ONNX with a dynamic batch axis, and ONNX Runtime
computes what torch computes (relative error <= 1e-4: float32 reassociation across ~100 layers)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from rtpose.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from rtpose.deploy.onnx import export_onnx  # noqa: E402
from rtpose.models import create_model, get_model_info, list_models  # noqa: E402

# the 100M+ parameter networks are exported at batch 1 and run at batch 2 like the others, but
# compared on fewer pixels' worth of work: they are still whole-network comparisons.


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models(top_down=True))
def test_onnx_runtime_matches_torch_with_dynamic_batch(name, tmp_path):
    info = get_model_info(name)
    torch.manual_seed(0)
    model = create_model(name)
    with torch.no_grad():  # non-default BN statistics, as a trained network has
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    path = export_onnx(
        model, tmp_path / f"{name}.onnx", sample_shape=(1, 3, *info.input_size),
        input_name="crops", output_name="heatmaps", dynamic_size=False,
    )  # fmt: skip
    graph = onnx.load(str(path), load_external_data=False).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"
    assert [d.dim_value for d in dims[1:]] == [3, *info.input_size]

    x = np.random.default_rng(0).standard_normal((2, 3, *info.input_size), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    backend = OnnxRuntimeBackend(path, threads=2, providers=["CPUExecutionProvider"])
    out = backend.run({"crops": x})["heatmaps"]
    assert out.shape == ref.shape == (2, info.num_keypoints, *info.heatmap_size)
    scale = np.abs(ref).max()
    assert scale > 0 and np.isfinite(out).all()
    assert np.abs(out - ref).max() / scale <= 1e-4
