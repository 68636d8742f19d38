"""The plugin-node graph of a CPU artifact, made for rtgan's OpenVINO extension (`rtgan.engine.openvino_ext`).

    fuse_label_convs("model.plugins.onnx")   # -> how many convolutions and argmaxes it replaced

A label-map model's graph builds the one-hot map as `Cast(Equal(ids, arange(K)))` and feeds it to
a 3x3 convolution (and, in the fused ASAPNet graph, to an ArgMax that recovers the ids for the MLP
op). Both are rewritten on the ONNX graph, exactly:
- `Conv(one_hot, W[, b])` (3x3, padding 1, stride 1) -> `rtgan::LabelConv3x3(ids, W[, b])`, a sum of
  weight rows per pixel, so the K-channel float map and its layout conversions are never made;
- `ArgMax(one_hot, axis=1)` -> the ids themselves (an id outside [0, K) has an all-zero row, whose
  argmax is 0; the ops downstream clamp it to the same 0, and engines refuse such ids first).
Only CPU artifacts get this: a TensorRT plan is built from the unfused plugin graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NAMESPACE = "rtgan"


def _constants(graph) -> dict:
    from onnx import numpy_helper

    found = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:  # in graph order: an Identity of a constant (a deduplicated initializer) is one too
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            found[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        elif n.op_type == "Identity" and n.input[0] in found:
            found[n.output[0]] = found[n.input[0]]
    return found


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def fuse_label_convs(path: str | Path) -> dict[str, int]:
    """Rewrite the one-hot convolutions and argmaxes of the ONNX file at `path` in place."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    consts = _constants(graph)
    producer = {o: n for n in graph.node for o in n.output}
    replaced = {"LabelConv3x3": 0, "ArgMax": 0}
    new_nodes = []
    for node in graph.node:
        source = producer.get(node.input[0]) if node.input else None
        ids = None
        if source is not None and source.op_type == "Cast" and _attrs(source).get("to") == TensorProto.FLOAT:
            eq = producer.get(source.input[0])
            if eq is not None and eq.op_type == "Equal" and eq.input[1] in consts:
                classes = consts[eq.input[1]]
                if (
                    classes.ndim == 4
                    and classes.shape[::2] == (1, 1)
                    and np.array_equal(classes.reshape(-1), np.arange(classes.size))
                ):
                    ids = eq.input[0]  # (B, 1, H, W) integer class ids
        a = _attrs(node)
        if ids is not None and node.op_type == "Conv" and a.get("kernel_shape") == [3, 3] \
                and a.get("pads", [0] * 4) == [1, 1, 1, 1] and a.get("strides", [1, 1]) == [1, 1] \
                and a.get("dilations", [1, 1]) == [1, 1] and a.get("group", 1) == 1:  # fmt: skip
            new_nodes.append(helper.make_node("LabelConv3x3", [ids, *node.input[1:]], list(node.output),
                                              domain=NAMESPACE, name=f"{node.name}_labels"))  # fmt: skip
            replaced["LabelConv3x3"] += 1
        elif ids is not None and node.op_type == "ArgMax" and a.get("axis") == 1:
            if a.get("keepdims", 1):
                new_nodes.append(helper.make_node("Identity", [ids], list(node.output), name=f"{node.name}_ids"))
            else:
                axes = f"{node.name}_axes"
                graph.initializer.append(onnx.numpy_helper.from_array(np.array([1], np.int64), axes))
                new_nodes.append(helper.make_node("Squeeze", [ids, axes], list(node.output), name=f"{node.name}_ids"))
            replaced["ArgMax"] += 1
        else:
            new_nodes.append(node)
    if any(replaced.values()):
        del graph.node[:]
        graph.node.extend(new_nodes)
        if not any(o.domain == NAMESPACE for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid(NAMESPACE, 1))
        onnx.save(model, str(path))
    return replaced
