"""Photo in, painting out, inside Triton: an ensemble of four steps, wired by `ensemble_scheduling`.

    photo (uint8 H x W x 3, any size)
      -> {segmenter}-pre          resize to the segmenter's input, scale to 0..1, normalize (mean, std), NCHW
      -> {segmenter}              the user's ONNX network: class scores (B, C, h, w) or class ids (B, h, w)
      -> {segmenter}-to-{model}   argmax, class -> label id lookup, nearest resize to the generator's size
      -> {model}                  the generator: labels (+ z, sent with the request) -> image
    = ensemble {model}-photo

The pre- and post-processing steps are tiny ONNX graphs built here with onnx.helper, so every step
runs on Triton's ONNX Runtime backend: no Python backend, nothing to install on the server. The
mapping JSON is the demo's (rtgan.demo.segment.OnnxSegmenter): {"classes": {"0": "sky", "1": 154},
"fallback": "grass", "mean": [...], "std": [...], "size": [H, W]}; classes it does not list, and
classes past the largest it lists, become `fallback`. The photo is resized to the segmenter's input as
is: give photos of the generator's aspect ratio (the demo crops; a server cannot guess the crop).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from . import dtypes
from .repository import VERSION, Model, Tensor

OPSET = 18  # Resize's `axes` and `antialias` attributes arrived in opset 18
PHOTO, PIXELS, SCORES, LABELS = "photo", "pixels", "scores", "labels"  # the ensemble's own tensor names


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ConfigError("the photo ensemble needs onnx: pip install 'rtgan[serve]'") from None
    return onnx


def photo_ensembles(segmenter: Path, mapping: Path, models: list[Model], *, max_batch_size: int | None) -> list[Model]:
    """The segmenter, its pre-processing and, per generator that takes labels, a post-processing step and
    the ensemble."""
    generators = [m for m in models if m.kind != "ensemble" and any(t.name == LABELS for t in m.inputs)]
    if not generators:
        raise ConfigError("--segmenter needs a generator that takes a label map among the artifacts")
    for g in generators:
        if g.max_batch_size < 1:
            raise ConfigError(f"the photo ensemble batches requests: model {g.name!r} needs --max-batch-size 1 or more")
    seg = inspect_segmenter(segmenter, json_file(mapping))
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", segmenter.stem).strip("-.") or "segmenter"
    batch = max(g.max_batch_size for g in generators)
    device = "KIND_GPU" if any(g.device == "KIND_GPU" for g in generators) else "KIND_CPU"
    pixels = Tensor(PIXELS, "float32", [3, *seg["size"]])
    scores = Tensor(SCORES, seg["out_dtype"], seg["out_dims"])
    out = [
        Model(name, "onnxruntime", [Tensor(seg["input"], "float32", pixels.dims)],
              [Tensor(seg["output"], seg["out_dtype"], seg["out_dims"])], batch,
              files={f"{VERSION}/model.onnx": segmenter, **seg["external"]}, device=device,
              notes=[f"the segmenter {segmenter}, classes mapped by {mapping}"],
              record={"segmenter": str(segmenter), "mapping": seg["spec"]}),
        Model(f"{name}-pre", "onnxruntime", [Tensor(PHOTO, "uint8", [-1, -1, 3])], [pixels], batch,
              files={f"{VERSION}/model.onnx": pre_model(seg)},
              notes=[f"photo -> the input of {name}: resize to {seg['size'][0]}x{seg['size'][1]}, 0..1, normalize"],
              record={"mean": seg["mean"], "std": seg["std"], "size": seg["size"]}),
    ]  # fmt: skip
    for g in generators:
        manifest = next(iter(g.record["artifacts"].values()))["manifest"]
        lut = lookup_table(seg, manifest, mapping)
        labels_in = next(t for t in g.inputs if t.name == LABELS)
        post = Model(f"{name}-to-{g.name}", "onnxruntime", [scores], [Tensor(LABELS, "int32", labels_in.dims)],
                     g.max_batch_size, files={f"{VERSION}/model.onnx": post_model(seg, lut, labels_in.dims)},
                     notes=[f"{name}'s classes -> {g.name}'s label ids at {labels_in.dims[0]}x{labels_in.dims[1]}"],
                     record={"lut": lut.tolist()})  # fmt: skip
        extra = [t for t in g.inputs if t.name not in (LABELS, "instance")]  # z: sent with the request
        feeds = {LABELS: LABELS, **({"instance": LABELS} if any(t.name == "instance" for t in g.inputs) else {})}
        steps = [
            _step(f"{name}-pre", {PHOTO: PHOTO}, {PIXELS: PIXELS}),
            _step(name, {seg["input"]: PIXELS}, {seg["output"]: SCORES}),
            _step(post.name, {SCORES: SCORES}, {LABELS: LABELS}),
            _step(g.name, {**feeds, **{t.name: t.name for t in extra}}, {o.name: o.name for o in g.outputs}),
        ]
        ensemble = Model(f"{g.name}-photo", "ensemble", [Tensor(PHOTO, "uint8", [-1, -1, 3]), *extra], g.outputs,
                         g.max_batch_size, device=None, steps=steps,
                         notes=[f"photo -> {name}-pre -> {name} -> {post.name} -> {g.name}"])  # fmt: skip
        out += [post, ensemble]
    return out


def _step(model: str, inputs: dict[str, str], outputs: dict[str, str]) -> dict:
    # keys: the step model's tensor names; values: the ensemble's
    return {"model_name": model, "model_version": -1, "input_map": inputs, "output_map": outputs}


def json_file(path: Path) -> dict:
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the class mapping: {e}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("classes"), dict) or not spec["classes"]:
        raise ConfigError(f'{path}: needs a non-empty "classes" object mapping network classes to ids or names')
    for key in ("mean", "std"):
        value = spec.get(key, [0.0, 0.0, 0.0] if key == "mean" else [1.0, 1.0, 1.0])
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value)):
            raise ConfigError(f'{path}: "{key}" must be three numbers (R, G, B), got {value!r}')
        if key == "std" and not all(v > 0 for v in value):
            raise ConfigError(f'{path}: "std" must be positive, got {value!r}')
        spec[key] = [float(v) for v in value]
    return spec


def _dims(value_info) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def inspect_segmenter(path: Path, spec: dict) -> dict:
    """The segmenter's input and output, checked for what the ensemble needs; `spec` is the mapping."""
    onnx = _onnx()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # a missing or corrupt file: onnx raises several types
        raise ConfigError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    graph = model.graph
    weights = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1 or len(graph.output) < 1:
        raise ConfigError(f"{path}: a segmenter takes one image input; this graph takes {[i.name for i in inputs]}")
    x, y = inputs[0], graph.output[0]
    shape = _dims(x)
    if x.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(shape) != 4 or shape[1] not in (3, None):
        raise ConfigError(f"{path}: the segmenter's input {x.name!r} must be float32 (batch, 3, H, W), got "
                          f"{dtypes.from_onnx(x.type.tensor_type.elem_type)} {shape}")  # fmt: skip
    if shape[0] is not None:
        raise ConfigError(
            f"{path}: the segmenter's batch dimension is fixed at {shape[0]}; Triton batches requests, so "
            "export it with a dynamic batch axis (torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}}))"
        )
    size = spec.get("size") or (shape[2:] if None not in shape[2:] else None)
    if size is None:
        raise ConfigError(f'the segmenter {path} takes any input size: give "size": [H, W] in the mapping')
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        raise ConfigError(f'the mapping\'s "size" must be [H, W] in pixels, got {size!r}')
    if None not in shape[2:] and list(size) != shape[2:]:
        raise ConfigError(f'{path} takes {shape[2]}x{shape[3]} images; the mapping\'s "size" says {size[0]}x{size[1]}')
    out_dtype = dtypes.from_onnx(y.type.tensor_type.elem_type)
    out_shape = _dims(y)
    scores = len(out_shape) == 4 and out_dtype in ("float32", "float16")
    ids = len(out_shape) == 3 and out_dtype in ("int32", "int64", "uint8")
    if not (scores or ids):
        raise ConfigError(f"{path}: the segmenter's output {y.name!r} must be class scores (batch, C, h, w) or class "
                          f"ids (batch, h, w), got {out_dtype} {out_shape}")  # fmt: skip
    external = {
        f"{VERSION}/{e.value}": path.parent / e.value
        for t in graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL
        for e in t.external_data
        if e.key == "location"
    }
    return {"input": x.name, "output": y.name, "size": list(size), "out_dtype": out_dtype,
            "out_dims": [-1 if d is None else d for d in out_shape[1:]], "classes": out_shape[1] if scores else None,
            "scores": scores, "mean": spec["mean"], "std": spec["std"], "spec": spec, "external": external}  # fmt: skip


def lookup_table(seg: dict, manifest: dict, where: Path) -> np.ndarray:
    """int32 table: segmenter class -> generator label id; its last entry (the fallback) catches classes past it."""
    spec = seg["spec"]
    valid = manifest.get("label_ids") or list(range(manifest.get("num_classes") or 0))
    names = {v: int(k) for k, v in (manifest.get("class_names") or {}).items()}

    def label(value) -> int:
        if isinstance(value, str):
            if value not in names:
                raise ConfigError(f"{where}: unknown class name {value!r}; the generator knows {', '.join(names)}")
            value = names[value]
        if isinstance(value, bool) or not isinstance(value, int) or value not in valid:
            raise ConfigError(f"{where}: {value!r} is not one of the generator's label ids {valid}")
        return value

    try:
        table = {int(k): label(v) for k, v in spec["classes"].items()}
    except ValueError as e:
        raise ConfigError(f"{where}: class keys must be the network's class indices: {e}") from None
    if min(table) < 0:
        raise ConfigError(f"{where}: class indices start at 0, got {min(table)}")
    fallback = label(spec.get("fallback", next(iter(table.values()))))
    size = max(max(table) + 1, seg["classes"] or 0) + 1
    lut = np.full(size, fallback, np.int32)
    for k, v in table.items():
        lut[k] = v
    return lut


def pre_model(seg: dict) -> bytes:
    """uint8 photo (B, H, W, 3) -> float32 (B, 3, h, w): resized (area-like when shrinking), /255, normalized."""
    onnx = _onnx()
    from onnx import TensorProto as T
    from onnx import helper as h

    h_, w_ = seg["size"]
    const = [
        h.make_tensor("size", T.INT64, [2], [h_, w_]),
        h.make_tensor("scale", T.FLOAT, [], [1 / 255]),
        h.make_tensor("mean", T.FLOAT, [1, 3, 1, 1], seg["mean"]),
        h.make_tensor("std", T.FLOAT, [1, 3, 1, 1], seg["std"]),
    ]
    nodes = [
        h.make_node("Cast", [PHOTO], ["f"], to=T.FLOAT),
        h.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
        # antialias: shrinking averages the pixels under each output pixel, like the demo's INTER_AREA
        h.make_node(
            "Resize",
            ["nchw", "", "", "size"],
            ["resized"],
            mode="linear",
            antialias=1,
            axes=[2, 3],
            coordinate_transformation_mode="half_pixel",
        ),  # fmt: skip
        h.make_node("Mul", ["resized", "scale"], ["unit"]),
        h.make_node("Sub", ["unit", "mean"], ["centred"]),
        h.make_node("Div", ["centred", "std"], [PIXELS]),
    ]
    graph = h.make_graph(
        nodes, "rtgan_segment_pre",
        [h.make_tensor_value_info(PHOTO, T.UINT8, ["batch", "height", "width", 3])],
        [h.make_tensor_value_info(PIXELS, T.FLOAT, ["batch", 3, h_, w_])], const,
    )  # fmt: skip
    return _serialize(onnx, graph)


def post_model(seg: dict, lut: np.ndarray, size: list[int]) -> bytes:
    """Segmenter scores (B, C, h, w) or ids (B, h, w) -> int32 label ids (B, H, W) of the generator."""
    onnx = _onnx()
    from onnx import TensorProto as T
    from onnx import helper as h

    elem = dtypes.DTYPES[seg["out_dtype"]][2]
    nodes = [h.make_node("ArgMax", [SCORES], ["cls"], axis=1, keepdims=0)] if seg["scores"] else \
        [h.make_node("Cast", [SCORES], ["cls"], to=T.INT64)]  # fmt: skip
    nodes += [
        h.make_node("Clip", ["cls", "lo", "hi"], ["cls_in"]),  # past the table: its last entry, the fallback
        h.make_node("Gather", ["lut", "cls_in"], ["ids"], axis=0),
        # nearest with floor(dst * src / dst): the pixel cv2.INTER_NEAREST (the demo) picks
        h.make_node(
            "Resize",
            ["ids", "", "", "size"],
            [LABELS],
            mode="nearest",
            axes=[1, 2],
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),  # fmt: skip
    ]
    const = [
        h.make_tensor("lo", T.INT64, [], [0]),
        h.make_tensor("hi", T.INT64, [], [len(lut) - 1]),
        h.make_tensor("lut", T.INT32, [len(lut)], lut.tolist()),
        h.make_tensor("size", T.INT64, [2], list(size)),
    ]
    shape = ["batch", *(d if d > 0 else f"d{i}" for i, d in enumerate(seg["out_dims"]))]
    graph = h.make_graph(
        nodes, "rtgan_segment_post",
        [h.make_tensor_value_info(SCORES, elem, shape)],
        [h.make_tensor_value_info(LABELS, T.INT32, ["batch", *size])], const,
    )  # fmt: skip
    return _serialize(onnx, graph)


def _serialize(onnx, graph) -> bytes:
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="rtgan")
    model.ir_version = 8  # readable by the ONNX Runtime of older Triton releases too (IR 8: ORT >= 1.10)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()
