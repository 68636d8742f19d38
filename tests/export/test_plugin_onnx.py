"""Plugin-node ONNX: one node per fused op with the plugin's fields, parsed by TensorRT-RTX with creators
registered, while the standard-op graph of the same export still builds a plan offline."""

import json

import pytest
import torch

from rtgan.errors import ConfigError
from rtgan.export.graph import inference_graph
from rtgan.export.plugins import check_plugin_onnx, export_plugin_onnx, plugin_nodes
from rtgan.export.rewrite import FastSPADE, Rewrites
from rtgan.models import build, make_config

pytest.importorskip("onnx")

SPADE = dict(label_nc=5, ngf=4, crop_size=64, num_upsampling_layers="normal", no_instance=False)
ASAP = dict(
    label_nc=5,
    crop_size=256,
    no_instance_edge=False,
    lr_instance=False,
    lr_width=8,
    lr_max_width=16,
    lr_depth=2,
    hr_width=8,
    hr_depth=3,
    noise_nc=2,
)  # fmt: skip  (extra input: an edge and 2 noise channels)


def _model(arch, **options):
    torch.manual_seed(0)
    return build(make_config(arch, **options)).eval()


@pytest.mark.parametrize("norm", ["spectralspadesyncbatch3x3", "spectralspadeinstance3x3"])
def test_spade_plugin_nodes_carry_the_layer_fields(tmp_path, norm):
    graph = inference_graph(_model("spade", **SPADE, norm_G=norm), 64, 64, Rewrites(kernels=True))
    layers = [m for m in graph.modules() if isinstance(m, FastSPADE)]
    path = export_plugin_onnx(graph, tmp_path / "m.onnx")
    nodes = plugin_nodes(path)
    assert len(nodes) == len(layers) and {n["op_type"] for n in nodes} == {"SpadeNormDenorm"}
    shortcuts = sum(1 for name, m in graph.named_modules() if name.endswith("norm_s"))
    assert shortcuts > 0  # the shortcut's SPADE has no activation: slope 1
    slopes = sorted(round(n["attributes"]["slope"], 6) for n in nodes)
    assert slopes.count(1.0) == shortcuts and slopes.count(0.2) == len(nodes) - shortcuts
    assert all(abs(n["attributes"]["eps"] - 1e-5) < 1e-9 for n in nodes)
    import onnx

    model = onnx.load(str(path))
    assert {(o.domain, o.version) for o in model.opset_import} >= {("rtgan", 1), ("", 18)}
    if "instance" in norm:  # statistics come from the graph's reductions
        assert sum(n.op_type == "ReduceMean" for n in model.graph.node) >= len(nodes)


def test_plugin_graph_refuses_a_graph_without_ops(tmp_path):
    with pytest.raises(ValueError, match="kernels=True"):
        export_plugin_onnx(inference_graph(_model("spade", **SPADE), 64, 64), tmp_path / "m.onnx")


@pytest.fixture(scope="module")
def trt_rtx():
    return pytest.importorskip("tensorrt_rtx")


def test_tensorrt_rtx_parser_hands_every_node_to_its_creator(trt_rtx, tmp_path):
    for arch, options, size in (("spade", SPADE, 64), ("asapnet", ASAP, 256)):
        graph = inference_graph(_model(arch, **options), size, size, Rewrites(kernels=True))
        report = check_plugin_onnx(export_plugin_onnx(graph, tmp_path / f"{arch}.onnx"))
        nodes = report["nodes"]
        # without creators the parser rejects exactly the plugin nodes: every standard node parses
        assert report["rejected_without_creators"] == [n["index"] for n in nodes]
        assert [c["index"] for c in report["creator_calls"]] == [n["index"] for n in nodes]
        for node, call in zip(nodes, report["creator_calls"]):
            assert call["plugin"] == f"rtgan::{node['op_type']}" and call["version"] == "1"
            attrs = {k: v for k, v in node["attributes"].items() if k != "plugin_version"}
            assert set(call["fields"]) == set(attrs)
            for name, value in attrs.items():
                got = call["fields"][name]["data"]
                want = value if isinstance(value, list) else [value]
                assert got == pytest.approx(want, rel=1e-6), name
        if arch == "asapnet":
            (node,) = nodes
            assert node["op_type"] == "AsapPixelMlpExtra"
            assert report["creator_calls"][0]["fields"]["channels"] == {"type": "INT32", "data": [24, 8, 8, 3]}


def test_export_writes_plugin_graph_beside_a_plan_that_builds(trt_rtx, tmp_path):
    from rtgan.export import export

    model = _model("spade", **SPADE)
    out = export(model, height=64, width=64, backend="tensorrt-rtx", compute_capability="SM86", out=tmp_path / "a",
                 plugins=True, progress=False, verify=False)  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["plugins"]["file"] == "model.plugins.onnx" and manifest["plugins"]["in_plan"] is False
    assert manifest["plugins"]["nodes"] == {"SpadeNormDenorm": len(plugin_nodes(out / "model.plugins.onnx"))}
    assert (out / "model.plan").stat().st_size == manifest["plan"]["plan_bytes"] > 0  # the standard-op graph built
    assert "model.plugins.onnx" in manifest["files"]
    with pytest.raises(ConfigError, match="fp32 only"):
        export(model, height=64, width=64, backend="tensorrt-rtx", precision="fp16", plugins=True, out=tmp_path / "b")
