"""Inference graph -> ONNX file (opset 18, dynamic batch), checked by onnx.checker."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..engine.contract import OUTPUT
from .graph import GeneratorGraph

OPSET = 18


def example_inputs(graph: GeneratorGraph, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs of every declared kind at the graph's size (batch 2: batch 1 would be specialised)."""
    from .exporter import signature_feeds

    feeds = signature_feeds(graph.signature, graph.height, graph.width, batch)
    return tuple(torch.from_numpy(feeds[n]) for n in graph.input_names())


def export_onnx(graph: GeneratorGraph, path: str | Path, *, dynamo: bool = False, fold_constants: bool = True) -> Path:
    """Write `graph` as ONNX with a dynamic batch dimension and check it.

    `fold_constants=False` leaves computations on weights alone (the runtimes fold them when they
    load the graph), so weights stay as the model holds them: fp16-exact ones can be stored as fp16.

    The TorchScript exporter is the default: here it exported SPADE in half the time of the
    dynamo one and its graph ran faster in ONNX Runtime.
    """
    import onnx

    path = Path(path)
    names = graph.input_names()
    args = example_inputs(graph)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # exporter chatter about constant folding of strided slices
        if dynamo:
            batch = torch.export.Dim("batch", max=1024)
            dynamic = {"dynamic_shapes": {"labels": {0: batch}, "rest": tuple({0: batch} for _ in names[1:])}}
        else:
            dynamic = {"dynamic_axes": {n: {0: "batch"} for n in [*names, OUTPUT]}}
        torch.onnx.export(
            graph,
            args,
            str(path),
            input_names=names,
            output_names=[OUTPUT],
            opset_version=OPSET,
            dynamo=dynamo,
            **({} if dynamo else {"do_constant_folding": fold_constants}),
            **dynamic,
        )
    onnx.checker.check_model(str(path), full_check=True)
    return path


# ops that only move or relabel elements: casting before them gives the same tensor
LAYOUT_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")


def cast_uint8_inputs_first(src: str | Path, dst: str | Path) -> int:
    """Move each uint8 graph input's first Cast before the layout op (Transpose, Reshape, ...) that
    precedes it: Cast(Transpose(x)) -> Transpose(Cast(x)), the same values. TensorRT and TensorRT-RTX
    take uint8 only into a Cast (and out of the graph): an image input's NHWC -> NCHW permute
    before its cast to float fails to parse ("/Transpose: first input has type UInt8"). Other
    uses of a uint8 input are left for the parser to name. Returns how many ops moved."""
    import onnx

    model = onnx.load(str(src))
    graph = model.graph
    uint8 = {i.name for i in graph.input if i.type.tensor_type.elem_type == onnx.TensorProto.UINT8}
    outputs = {o.name for o in graph.output}
    consumers: dict[str, list[int]] = {}
    for k, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(k)
    nodes = [onnx.NodeProto() for _ in graph.node]
    for copy, node in zip(nodes, graph.node):
        copy.CopyFrom(node)
    retyped: set[str] = set()
    for k, node in enumerate(nodes):
        if node.op_type not in LAYOUT_OPS or not node.input or node.input[0] not in uint8:
            continue
        users = consumers.get(node.output[0], [])
        if node.output[0] in outputs or len(users) != 1 or nodes[users[0]].op_type != "Cast":
            continue
        cast = nodes[users[0]]
        x, between, y = node.input[0], node.output[0], cast.output[0]
        cast.input[0], cast.output[0] = x, between  # Cast(x) -> between (no longer uint8)
        node.input[0], node.output[0] = between, y  # layout(between) -> y, as the Cast gave before
        nodes[k], nodes[users[0]] = cast, node  # the cast now runs first (x is a graph input)
        retyped.add(between)
    if not retyped and Path(src) == Path(dst):
        return 0
    del graph.node[:]
    graph.node.extend(nodes)
    for v in [v for v in graph.value_info if v.name in retyped]:  # typed uint8 before
        graph.value_info.remove(v)
    onnx.save(model, str(dst))
    onnx.checker.check_model(str(dst), full_check=True)
    return len(retyped)


def store_exact_fp16(src: str | Path, dst: str | Path, min_elements: int = 1024) -> dict:
    """Store each float32 weight whose every value fp16 represents exactly as fp16, cast back to
    float32 in the graph: the same fp32 computation, bit for bit, in about half the file (weights
    trained and shipped in fp16 are all such). Weights folded at export (spectral norm, batch norm)
    are not, and stay float32. Returns the bytes before and after."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph, before = model.graph, Path(src).stat().st_size
    casts = []
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        value = numpy_helper.to_array(init)
        half = value.astype(np.float16)
        if value.size < min_elements or not np.array_equal(half.astype(np.float32), value):
            continue
        stored = f"{init.name}__fp16"
        graph.initializer.remove(init)
        graph.initializer.append(numpy_helper.from_array(half, stored))
        casts.append(helper.make_node("Cast", [stored], [init.name], to=onnx.TensorProto.FLOAT, name=f"{stored}_cast"))
    # the casts first: every consumer of a weight comes after the node that makes it
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(dst))
    onnx.checker.check_model(str(dst))
    return {"bytes_before": before, "bytes_after": Path(dst).stat().st_size}


def drop_identity_casts(model) -> int:
    """Remove each Cast to the type its input already has, its consumers reading the input instead: what
    `.float()` / `.to(dtype)` on a float32 graph input (OASIS's z, SEAN's style and noise, StyleGAN's noise)
    exports. onnxconverter-common (1.16) pairs its own fp16 cast of that input with such a Cast and removes both:
    where the Cast feeds several nodes it crashes ("'list' object has no attribute 'input'"), elsewhere the
    float32 input reaches fp16 ops (TensorRT: "IConcatenationLayer inputs must all be of the same type").
    Returns how many were removed."""
    import onnx

    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*graph.input, *onnx.shape_inference.infer_shapes(model).graph.value_info)}  # fmt: skip
    outputs = {o.name for o in graph.output}
    renamed: dict[str, str] = {}
    kept = []
    for node in graph.node:
        for k, name in enumerate(node.input):
            node.input[k] = renamed.get(name, name)
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if node.op_type == "Cast" and types.get(node.input[0]) == to and node.output[0] not in outputs:
            renamed[node.output[0]] = node.input[0]
        else:
            kept.append(node)
    if renamed:
        del graph.node[:]
        graph.node.extend(kept)
        for v in [v for v in graph.value_info if v.name in renamed]:  # no node makes them any more
            graph.value_info.remove(v)
    return len(renamed)


def to_fp16(src: str | Path, dst: str | Path) -> Path:
    """fp16 weights and activations inside the graph (TensorRT 11 and -RTX are strongly typed)."""
    import onnx
    from onnxconverter_common.float16 import convert_float_to_float16

    source = onnx.load(str(src))
    drop_identity_casts(source)
    ours = {node.name for node in source.graph.node if node.op_type == "Cast"}
    model = convert_float_to_float16(source, keep_io_types=True)
    # The converter leaves our Cast(to=float32) nodes, the one-hot and instance-edge casts, which
    # would feed float32 into fp16 convs (TensorRT's strong typing rejects the mix). Every float in
    # these graphs is internal (inputs are ids, the output uint8), so those casts become fp16. The
    # casts the converter inserts around ops it keeps in float32 (Resize, whose scales ONNX
    # requires in float32) stay as they are.
    for node in model.graph.node:
        if node.op_type == "Cast" and node.name in ours:
            for attr in node.attribute:
                if attr.name == "to" and attr.i == onnx.TensorProto.FLOAT:
                    attr.i = onnx.TensorProto.FLOAT16
    onnx.save(model, str(dst))
    onnx.checker.check_model(str(dst))
    return Path(dst)


def export_style_encoder(encoder: torch.nn.Module, path: str | Path, fold_constants: bool = True) -> Path:
    """The style encoder graph: `style` uint8 (B, H, W, 3) with dynamic B, H, W -> `mu` float32 (B, z_dim)."""
    import onnx

    style = torch.randint(0, 256, (2, 200, 300, 3), dtype=torch.uint8)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            (style,),
            str(path),
            input_names=["style"],
            output_names=["mu"],
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=fold_constants,
            dynamic_axes={"style": {0: "batch", 1: "height", 2: "width"}, "mu": {0: "batch"}},
        )
    onnx.checker.check_model(str(path), full_check=True)
    return Path(path)


class RegionEncoderGraph(torch.nn.Module):
    """A model's per-region style encoder (SEAN's Zencoder): its `style_encoder_inputs()` in order ->
    `encode_inputs(...)`, the codes (B, classes, length)."""

    def __init__(self, model: torch.nn.Module):
        from .rewrite import frozen_copy

        super().__init__()
        self.names = model.style_encoder_inputs()
        self.model = frozen_copy(model)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model.encode_inputs(**dict(zip(self.names, inputs)))


def export_region_encoder(
    model: torch.nn.Module, path: str | Path, height: int, width: int, fold_constants: bool = True
) -> Path:
    """The per-region style encoder graph: `style` uint8 (B, H, W, 3) and `labels` int32 (B, H, W) (+ `instance`)
    at the model's fixed size, dynamic B -> `codes` float32 (B, classes, length)."""
    import onnx

    from .exporter import signature_feeds

    graph = RegionEncoderGraph(model).eval()
    feeds = signature_feeds(model.signature(), height, width, batch=2)
    feeds["style"] = np.random.default_rng(0).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    args = tuple(torch.from_numpy(feeds[n]) for n in graph.names)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            args,
            str(path),
            input_names=list(graph.names),
            output_names=["codes"],
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=fold_constants,
            dynamic_axes={n: {0: "batch"} for n in [*graph.names, "codes"]},
        )
    onnx.checker.check_model(str(path), full_check=True)
    return Path(path)
