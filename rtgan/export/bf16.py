"""OpenVINO bf16 with the layers that hurt kept in float32, chosen by measurement.

OpenVINO's `INFERENCE_PRECISION_HINT=bf16` runs every convolution and elementwise op in bf16. A
deep generator can lose too much that way: OASIS-ADE20K at 256x256 paints 44 dB against its fp32
reference, below export's 45 dB floor, while each of its layers alone costs little; the error is
spread over all of them. So the choice is made per layer group, where a group is a module of the
generator at depth three of the ONNX node names (`/model/body.5/norm_0`: one SPADE layer with its
convolutions), measured on the validation maps:

1. all bf16: kept when it holds the floor plus the validation margin (the common case: no marks);
2. otherwise every group in float32, then, largest convolution cost first, each group is moved to
   bf16 if the validation maps still hold the floor plus the margin.

A float32 group is marked in the IR (the `precise_0` runtime attribute, which serialization turns
into OpenVINO's DisablePrecisionConversion: the CPU plugin then keeps those nodes in f32). Marks
only take effect through a saved IR, so each trial is saved and read back. Two limits of the CPU
plugin shape the graph:
- a float32 convolution whose output the plugin fuses into a following Add ("sum" post-op) fails
  at inference ("object is not initialized"); such Adds of two activations are rewritten as the
  same Add over (B, C, H*W) views, which the plugin does not fuse (exact: the same additions);
- some nodes made by its own transformations (Einsum decomposed into MatMul, Interpolate) keep
  bf16 whatever their mark: the measurement includes them.
The held-out maps are measured afterwards by the caller, as for every reduced artifact.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

MARK = "precise_0"  # OpenVINO's rt_info name for "keep this node's original precision"
MAX_TRIALS = 12  # groups tried after the all-float32 one; the rest (the cheapest) stay float32
SKIP = ("Constant", "Parameter", "Result")


def group_of(name: str) -> str:
    """The module path of a node named `/model/body.5/norm_0/gamma/Conv` (the components before the
    first op name, which the exporters capitalize), cut at depth three: `/model/body.5/norm_0`;
    "" for names that are not module paths."""
    if not name.startswith("/"):
        return ""
    modules = []
    for part in name.split("/")[1:]:
        if not part or part[0].isupper():
            break
        modules.append(part)
    return "/" + "/".join(modules[:3]) if modules else ""


def conv_costs(model) -> dict[str, float]:
    """Multiply-adds per sample of each group's convolutions, from the IR's static shapes."""
    costs: dict[str, float] = {}
    for op in model.get_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution"):
            continue
        out = op.get_output_partial_shape(0)
        weights = op.input_value(1).get_partial_shape()
        if out.rank.get_length() != 4 or not all(d.is_static for d in list(out)[1:]) or not weights.is_static:
            continue
        c, h, w = (d.get_length() for d in list(out)[1:])
        per_output = int(np.prod([d.get_length() for d in weights])) // c  # Cin/groups * kh * kw
        g = group_of(op.get_friendly_name())
        costs[g] = costs.get(g, 0.0) + float(c * h * w * per_output)
    return costs


def _float_conv_output(value) -> bool:
    node = value.get_node()
    if node.get_type_name() == "Add":  # a bias added after the convolution
        node = next((v.get_node() for v in node.input_values() if v.get_node().get_type_name() != "Constant"), node)
    return node.get_type_name() in ("Convolution", "GroupConvolution") and MARK in node.get_rt_info()


def unfuse_sums(model, ops) -> int:
    """Rewrite each Add of two same-shaped activations, one of them a float32-marked convolution's
    output, as the Add of their (B, C, H*W) views (marked too): the CPU plugin fuses no such Add into
    the convolution. bf16 convolutions keep their fused sums."""
    done = 0
    for op in list(model.get_ops()):
        if op.get_type_name() != "Add":
            continue
        a, b = op.input_value(0), op.input_value(1)
        if any(v.get_node().get_type_name() == "Constant" for v in (a, b)):
            continue
        sa, sb = a.get_partial_shape(), b.get_partial_shape()
        if sa.rank.get_length() != 4 or sa != sb or not (_float_conv_output(a) or _float_conv_output(b)):
            continue
        flat = ops.constant(np.array([0, 0, -1], np.int64))
        views = [ops.reshape(a, flat, True), ops.reshape(b, flat, True)]
        added = ops.add(*views)
        new = ops.reshape(added, ops.shape_of(a), False)
        new.set_friendly_name(op.get_friendly_name())
        for node in (*views, added, new):
            node.get_rt_info()[MARK] = ""
        op.output(0).replace(new.output(0))
        done += 1
    return done


def mark(model, float_groups: set[str]) -> int:
    """Mark every node outside the bf16 groups as float32: the groups named and the glue between groups
    (residual adds, resizes, the output), which is cheap. Returns the number of marked nodes."""
    costs = conv_costs(model)
    marked = 0
    for op in model.get_ops():
        if op.get_type_name() in SKIP:
            continue
        g = group_of(op.get_friendly_name())
        if g in float_groups or g not in costs:
            op.get_rt_info()[MARK] = ""
            marked += 1
    return marked


def save_marked(core, source, out: Path, float_groups: set[str] | None) -> Path:
    """`source` (an ONNX or IR path) as an IR at `out`, with `float_groups` marked (None: no marks)."""
    import openvino as ov
    import openvino.opset13 as ops

    model = core.read_model(str(source))
    if float_groups is not None:
        mark(model, float_groups)
        unfuse_sums(model, ops)
    ov.save_model(model, str(out), compress_to_fp16=False)
    return out


def choose(core, source, compile_run: Callable, feeds: list, refs: list, target: float, say) -> dict:
    """The float32 groups for `source` (see the module doc): {"float_groups": [...] or None (all bf16),
    "bf16_groups", "validation_psnr_db", "trials", "seconds"}."""
    from .quantize import fidelity

    started = time.perf_counter()
    groups = conv_costs(core.read_model(str(source)))
    total = sum(groups.values()) or 1.0
    order = sorted(groups, key=lambda g: -groups[g])
    with tempfile.TemporaryDirectory(prefix="rtgan-bf16-") as scratch:
        trial_no = 0

        def trial(float_groups: set[str] | None) -> float:
            nonlocal trial_no
            trial_no += 1
            xml = save_marked(core, source, Path(scratch) / f"trial{trial_no}.xml", float_groups)
            return fidelity(compile_run(xml), feeds, refs)

        got = trial(None)
        say(f"bf16: all layers {got} dB on the validation maps (aim {target} dB)")
        if got >= target:
            return {"float_groups": None, "bf16_groups": order, "validation_psnr_db": got, "trials": trial_no,
                    "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        keep = set(order)
        got = trial(keep)
        say(f"bf16: every layer group in float32 {got} dB")
        for g in order[:MAX_TRIALS] if got >= target else ():
            score = trial(keep - {g})
            if score >= target:
                keep.discard(g)
                got = score
            say(f"bf16: {g} ({100 * groups[g] / total:.0f} % of the conv work) in bf16: {score} dB, "
                + ("kept" if g not in keep else "back to float32"))  # fmt: skip
    share = sum(groups[g] for g in order if g not in keep) / total
    return {"float_groups": sorted(keep), "bf16_groups": [g for g in order if g not in keep],
            "bf16_conv_share": round(share, 3), "validation_psnr_db": got, "trials": trial_no,
            "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
