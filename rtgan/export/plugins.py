"""Plugin-node ONNX: the `kernels` rewrite's custom ops exported as TensorRT plugin nodes.

    graph = inference_graph(model, h, w, Rewrites(kernels=True))
    export_plugin_onnx(graph, "model.plugins.onnx")     # nodes rtgan::SpadeNormDenorm, rtgan::AsapPixelMlp
    check_plugin_onnx("model.plugins.onnx")             # TensorRT-RTX's parser maps every node to a creator

Node domain `rtgan` = plugin namespace, op_type = plugin name, attributes = plugin fields
(`rtgan.kernels.plugins` holds the specs and the shape/type rules TensorRT calls).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from ..engine.contract import OUTPUT
from ..errors import ConfigError
from ..kernels.plugins import ASAP_PIXEL_MLP, ASAP_PIXEL_MLP_EXTRA, NAMESPACE, SPADE_NORM_DENORM, SPECS, VERSION
from .onnx import OPSET, example_inputs

_registered = False


def _spade_symbolic(g, x, gamma, beta, mean, var, eps, slope):
    from torch.onnx import symbolic_helper as sh

    slope = 1.0 if sh._is_none(slope) else sh._get_const(slope, "f", "slope")  # slope 1: no activation
    out = g.op(f"{NAMESPACE}::{SPADE_NORM_DENORM.name}", x, gamma, beta, mean, var,
               eps_f=sh._get_const(eps, "f", "eps"), slope_f=slope, plugin_version_s=VERSION)  # fmt: skip
    out.setType(x.type())
    return out


def _asap_symbolic(g, labels, params, num_classes, channels, tile, extra, uint8):
    from torch.onnx import symbolic_helper as sh

    if not sh._get_const(uint8, "b", "uint8"):
        raise NotImplementedError("the AsapPixelMlp plugin writes uint8 only")
    inputs = [g.op("Cast", labels, to_i=6), g.op("Transpose", params, perm_i=[0, 2, 3, 1])]  # int32, channels-last
    spec = ASAP_PIXEL_MLP
    if not sh._is_none(extra):
        inputs.append(extra)
        spec = ASAP_PIXEL_MLP_EXTRA
    out = g.op(f"{NAMESPACE}::{spec.name}", *inputs, num_classes_i=sh._get_const(num_classes, "i", "num_classes"),
               channels_i=sh._get_const(channels, "is", "channels"), tile_i=sh._get_const(tile, "i", "tile"),
               plugin_version_s=VERSION)  # fmt: skip
    out.setType(labels.type().with_dtype(torch.uint8).with_sizes(None))
    return out


def register_symbolics() -> None:
    """Map torch.ops.rtgan.* to plugin nodes in the TorchScript ONNX exporter (once per process)."""
    global _registered
    if _registered:
        return
    import rtgan.kernels.ops  # noqa: F401

    torch.onnx.register_custom_op_symbolic("rtgan::spade_norm_denorm", _spade_symbolic, OPSET)
    torch.onnx.register_custom_op_symbolic("rtgan::asap_pixel_mlp", _asap_symbolic, OPSET)
    _registered = True


def export_plugin_onnx(graph, path: str | Path) -> Path:
    """Write a `kernels=True` inference graph as ONNX with plugin nodes (dynamic batch, opset 18 + rtgan 1)."""
    import onnx

    if not getattr(graph, "kernel", False) and not any(getattr(m, "kernel", False) for m in graph.modules()):
        raise ConfigError(
            "the graph calls no rtgan kernel: build it with Rewrites(kernels=True) "
            "(SPADE and ASAPNet have fused kernels; pix2pixHD has none)"
        )
    register_symbolics()
    path = Path(path)
    names = graph.input_names()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, example_inputs(graph), str(path), input_names=names, output_names=[OUTPUT], opset_version=OPSET,
            dynamo=False, custom_opsets={NAMESPACE: 1}, dynamic_axes={n: {0: "batch"} for n in [*names, OUTPUT]},
        )  # fmt: skip
    onnx.checker.check_model(str(path))  # no full check: ONNX cannot infer shapes through plugin nodes
    return path


def plugin_nodes(path: str | Path) -> list[dict]:
    """The plugin nodes of an ONNX file in graph order: index, op_type and attributes."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    return [
        {"index": i, "op_type": n.op_type, "attributes": {a.name: helper.get_attribute_value(a) for a in n.attribute}}
        for i, n in enumerate(model.graph.node)
        if n.domain == NAMESPACE
    ]


def check_plugin_onnx(path: str | Path) -> dict:
    """Parse a plugin-node ONNX with TensorRT-RTX's parser and report how each node maps to a plugin.

    TensorRT-RTX cannot run plugins written in Python, so the check registers creators that record
    the name, namespace and fields the parser hands them and then decline. Two passes:
    - no creators: the parser must reject exactly the plugin nodes ("plugin not found"), so every
      standard node parses;
    - recording creators, once per plugin node, with the earlier plugin nodes replaced by an
      Identity of their first input: the parser reaches that node and passes its fields.
    """
    import numpy as np
    import onnx
    import tensorrt_rtx as trt

    model = onnx.load(str(path))
    nodes = plugin_nodes(path)
    logger = trt.Logger(trt.Logger.INTERNAL_ERROR)  # the declined nodes are expected errors

    def parser():
        net = trt.Builder(logger).create_network(0)
        return trt.OnnxParser(net, logger), net

    p, _ = parser()
    p.supports_model_v2(model.SerializeToString())
    rejected = sorted({int(p.get_error(i).node()) for i in range(p.num_errors)})

    calls: list[dict] = []

    class Recorder(trt.IPluginCreatorV3One):
        def __init__(self, spec):
            trt.IPluginCreatorV3One.__init__(self)
            self.name, self.plugin_namespace, self.plugin_version = spec.name, NAMESPACE, VERSION
            kinds = {
                "float32": (np.float32, trt.PluginFieldType.FLOAT32),
                "int32": (np.int32, trt.PluginFieldType.INT32),
            }
            declared = []
            for field, kind in spec.fields.items():
                dtype, ftype = kinds[kind.rstrip("[]")]
                declared.append(trt.PluginField(field, np.zeros(1, dtype), ftype))
            self.field_names = trt.PluginFieldCollection(declared)

        def create_plugin(self, name, fields, phase):
            calls.append({"plugin": f"{self.plugin_namespace}::{self.name}", "version": self.plugin_version,
                          "fields": {f.name: {"type": f.type.name, "data": np.asarray(f.data).tolist()}
                                     for f in fields}})  # fmt: skip
            raise RuntimeError("recorded")  # declining here makes the parser stop cleanly

    registry = trt.get_plugin_registry()
    creators = [Recorder(s) for s in SPECS.values()]
    for c in creators:
        registry.register_creator(c, NAMESPACE)
    try:
        for k, node in enumerate(nodes):
            trial = onnx.ModelProto()
            trial.CopyFrom(model)
            for earlier in nodes[:k]:
                n = trial.graph.node[earlier["index"]]
                n.CopyFrom(onnx.helper.make_node("Identity", [n.input[0]], list(n.output)))
            before = len(calls)
            p, _ = parser()
            p.parse(trial.SerializeToString())
            stopped = [int(p.get_error(i).node()) for i in range(p.num_errors)]
            if len(calls) != before + 1 or stopped[:1] != [node["index"]]:
                raise AssertionError(f"plugin node {node['index']} ({node['op_type']}) was not handed to its creator")
            calls[-1]["index"] = node["index"]
    finally:
        for c in creators:
            registry.deregister_creator(c)
    return {"nodes": nodes, "rejected_without_creators": rejected, "creator_calls": calls}


def main(argv: list[str] | None = None) -> int:
    from ..utils import cli
    from ..utils.extras import require

    prog = "python -m rtgan.export.plugins"
    ap = cli.Parser(prog, "Check how TensorRT-RTX's ONNX parser maps each rtgan plugin node of a plugin graph.")
    ap.add_argument("onnx", metavar="MODEL.plugins.onnx", help="written by `rtgan.export --plugins`")
    args = ap.parse_args(argv)

    def body() -> int:
        if not Path(args.onnx).is_file():
            raise ConfigError(f"{args.onnx}: no such file (export with --plugins to write model.plugins.onnx)")
        require("tensorrt_rtx", "tensorrt", "checking plugin nodes", package="tensorrt-rtx")
        print(json.dumps(check_plugin_onnx(args.onnx), indent=1))
        return 0

    return cli.run(body, prog)


if __name__ == "__main__":
    import sys

    sys.exit(main())
