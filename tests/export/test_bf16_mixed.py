"""bf16 OpenVINO artifacts with measured float32 layer groups (rtgan/export/bf16.py), and OASIS's CPU plugin
graph (its label convs as rtgan's LabelConv3x3): against the PyTorch reference and OpenVINO's own runtime
model, which says the precision each node ran at."""

import json

import numpy as np
import pytest
from test_oasis_export import SLIM, like_trained

from rtgan import Engine
from rtgan.engine import openvino_ext
from rtgan.export import bf16, export, model_feeds, psnr, quantize, reference_image
from rtgan.models.oasis import OASISConfig, OASISGenerator
from rtgan.utils import cpu

ov = pytest.importorskip("openvino")
H, W = 32, 64  # test_oasis_export's size: like_trained centres the image at it


@pytest.fixture(scope="module")
def model():
    return like_trained(OASISGenerator(OASISConfig(**dict(SLIM, channels_G=8))))


@pytest.fixture(scope="module")
def core():
    core = ov.Core()
    try:
        openvino_ext.add_to(core)
    except openvino_ext.ExtensionUnavailable as e:  # no C++ compiler: the standard graph runs (tested elsewhere)
        pytest.skip(str(e))
    return core


@pytest.fixture(scope="module")
def fused(model, tmp_path_factory):
    return export(model, height=H, width=W, backend="openvino", plugins=True, progress=False,
                  out=tmp_path_factory.mktemp("oasis") / "fused")  # fmt: skip


def _runtime_precisions(compiled) -> dict[str, str]:
    """{original layer name: precision it ran at} from OpenVINO's runtime model."""
    found = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        for name in info["originalLayersNames"].astype(str).split(","):
            found[name] = info["runtimePrecision"].astype(str)
    return found


def test_oasis_plugin_graph_runs_every_label_conv_as_one_op(model, fused, core):
    manifest = json.loads((fused / "manifest.json").read_text())
    blocks = sum(hasattr(b, "norm_s") for b in model.body)
    assert manifest["plugins"]["nodes"] == {"LabelConv3x3": 1 + 2 * len(model.body) + blocks}  # fc and every SPADE
    engine = Engine.load(fused, "openvino", kernels=True)  # whether it pays on this slim model is noise
    assert engine.backend.kernels
    for seed in (3, 4):
        feeds = model_feeds(model, H, W, 2, seed=seed)
        assert psnr(engine.run(**feeds), reference_image(model, feeds)) >= 60


@pytest.mark.skipif(not cpu.has_bf16(), reason="this CPU has no bf16 units")
def test_bf16_keeps_the_measured_groups_in_float32(model, fused, core, tmp_path):
    # a floor whose aim (floor + margin) all-bf16 just misses on the validation maps: the search must run
    manifest = json.loads((fused / "manifest.json").read_text())
    _, val, _ = quantize.calibration_sets(manifest)
    refs = [reference_image(model, f) for f in val]
    source = fused / "model.plugins.onnx"
    groups = set(bf16.conv_costs(core.read_model(str(source))))

    def score(float_groups):
        xml = bf16.save_marked(core, source, tmp_path / "trial.xml", float_groups)
        compiled = core.compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
        return quantize.fidelity(lambda f: compiled(f)[0], val, refs)

    low, high = score(None), score(groups)
    assert high > low + 1, "float32 marks must raise the fidelity"
    floor = round(low + 0.5 - quantize.VALIDATION_MARGIN_DB, 2)
    out = export(model, height=H, width=W, backend="openvino", precision="bf16", plugins=True, min_psnr=floor,
                 progress=False, out=tmp_path / "bf16")  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    chosen = manifest["quantization"]["mixed_bf16"]
    assert chosen["float_groups"] and chosen["validation_psnr_db"] >= floor + quantize.VALIDATION_MARGIN_DB
    assert set(chosen["float_groups"]) | set(chosen["bf16_groups"]) == groups
    held_out = manifest["fidelity"]
    assert min(held_out["psnr_db_held_out_openvino"], held_out["psnr_db_held_out_openvino_fused"]) >= floor
    assert manifest["plugins"]["file"] == "model.plugins.xml" and "model.plugins.onnx" not in manifest["files"]
    # OpenVINO ran the float groups' convolutions in f32 and the bf16 groups' in bf16
    compiled = core.compile_model(str(out / "model.plugins.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    ran = _runtime_precisions(compiled)
    source_ir = core.read_model(str(out / "model.plugins.xml"))
    by_group: dict[str, set] = {}
    for op in source_ir.get_ops():
        if op.get_type_name() == "Convolution" and op.get_friendly_name() in ran:
            by_group.setdefault(bf16.group_of(op.get_friendly_name()), set()).add(ran[op.get_friendly_name()])
    assert all(by_group[g] == {"f32"} for g in chosen["float_groups"] if g in by_group)
    assert all(by_group[g] == {"bf16"} for g in chosen["bf16_groups"] if g in by_group)
    # the engine runs that IR: its painting is the compiled model's
    feeds = model_feeds(model, H, W, 1, seed=7)
    engine = Engine.load(out, "openvino", kernels=True)
    assert engine.backend.kernels
    np.testing.assert_array_equal(engine.run(**feeds), compiled(feeds)[0])


@pytest.mark.skipif(not cpu.has_bf16(), reason="this CPU has no bf16 units")
def test_a_float32_conv_summed_with_a_bf16_one_runs(tmp_path):
    """OpenVINO fuses `conv_a(x) + conv_b(x)` into one convolution's "sum"; with one of them kept in
    float32 that fused node cannot run. `unfuse_sums` makes it an Add of views, which runs and is exact."""
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)

    def conv(x, name, k):
        w = ops.constant((rng.standard_normal((16, 16, k, k)) * 0.2).astype(np.float32))
        c = ops.convolution(x, w, [1, 1], [k // 2] * 2, [k // 2] * 2, [1, 1])
        c.set_friendly_name(f"/model/{name}/Conv")
        return c

    x = ops.parameter([-1, 16, 8, 8], np.float32, name="x")
    a = ops.relu(conv(x, "block/conv_0", 3))
    total = ops.add(conv(a, "block/conv_1", 3), conv(x, "block/conv_s", 1))
    total.set_friendly_name("/model/block/Add")
    ov.save_model(ov.Model([ops.relu(total)], [x]), str(tmp_path / "m.xml"), compress_to_fp16=False)
    core = ov.Core()
    out = bf16.save_marked(core, tmp_path / "m.xml", tmp_path / "marked.xml", {"/model/block/conv_s"})
    compiled = core.compile_model(str(out), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    ran = _runtime_precisions(compiled)
    assert ran["/model/block/conv_s/Conv"] == "f32" and ran["/model/block/conv_1/Conv"] == "bf16"
    feed = rng.standard_normal((2, 16, 8, 8)).astype(np.float32)
    reference = core.compile_model(str(tmp_path / "m.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(feed)[0]
    np.testing.assert_allclose(compiled(feed)[0], reference, rtol=0.05, atol=0.05)
