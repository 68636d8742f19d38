"""Every inference rewrite, alone and together, equals the unrewritten model (fp32, max abs error <= 1e-4)."""

import dataclasses

import pytest
import torch

from rtgan.export.graph import inference_graph
from rtgan.export.rewrite import LabelConv, Rewrites, to_uint8

from helpers import VARIANTS, inputs, make

EXPORTABLE = [v for v in VARIANTS if v != "p2phd-global-batch-feat"]  # feature channels need their encoder
SINGLE = (
    [Rewrites.none()]
    + [dataclasses.replace(Rewrites.none(), **{f.name: True}) for f in dataclasses.fields(Rewrites)]
    + [Rewrites.all()]
)


def graph_args(model, size, batch=2):
    """Reference semantics and z, and the graph's integer inputs for the same label map."""
    labels, instance, sem = inputs(model, size, batch=batch)
    z = torch.randn(batch, model.config.z_dim) if getattr(model.config, "use_vae", False) else None
    args = [labels[:, 0].int()] + ([instance[:, 0].int()] if instance is not None else [])
    return sem, z, args + ([z] if z is not None else [])


def _name(r: Rewrites) -> str:
    return "+".join(k for k, v in dataclasses.asdict(r).items() if v) or "none"


# each rewrite alone on one variant per architecture family; all of them and none on every variant
CASES = (
    [(v, r) for v in EXPORTABLE for r in (Rewrites.all(), Rewrites.none())]
    + [
        (v, r)
        for v in (
            "spade-normal-syncbatch3",
            "spade-normal-instance3",
            "asap-tile16",
            "asap-tile32-tent-reflect",
            "p2phd-local",
            "asap-noise-edges-in-mlp",
        )
        for r in SINGLE[1:-1]
    ]
    + [("p2phd-local-nearest", dataclasses.replace(Rewrites.none(), fold_resize_conv=True))]
)


@pytest.mark.parametrize("variant,rewrites", CASES, ids=[f"{v}-{_name(r)}" for v, r in CASES])
def test_rewrite_equals_reference(variant, rewrites):
    model, size = make(variant)
    graph = inference_graph(model, *size, rewrites=rewrites)
    sem, z, args = graph_args(model, size)
    with torch.no_grad():
        ref = model(sem, z=z)
        out = graph.model(sem, z)  # the rewritten model on the same float input
        image = graph(*args)
    if out.dtype == torch.uint8:  # the fused ASAPNet kernel writes the uint8 image itself
        diff = (out.int() - to_uint8(ref).int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3, f"{(diff > 0).sum()} pixels differ"
    else:
        err = (out - ref).abs().max().item()
        assert err <= 1e-4, f"max abs error {err:.2e}"
    assert image.dtype == torch.uint8 and image.shape == (args[0].shape[0], *size, 3)
    assert (image.int() - to_uint8(ref).int()).abs().max() <= 1


def test_rewrites_replace_modules_and_keep_the_forward():
    """The rewritten model is the model's class, with its forward; only submodules changed."""
    from rtgan.export.rewrite import FastSPADE, TiledHighResStream

    for variant, kind in (("spade-normal-syncbatch3", FastSPADE), ("asap-tile16", TiledHighResStream)):
        model, size = make(variant)
        rewritten = inference_graph(model, *size, rewrites=Rewrites.all()).model
        assert type(rewritten).forward is type(model).forward
        assert any(isinstance(m, kind) for m in rewritten.modules())
        assert any(isinstance(m, LabelConv) for m in rewritten.modules())
        assert not any(isinstance(m, kind) for m in model.modules())  # the model itself is untouched


def test_label_conv_is_the_dense_conv_on_one_hot():
    torch.manual_seed(1)
    for k, pad in [(3, 1), (7, 0), (5, 2), (3, 0)]:
        conv = torch.nn.Conv2d(6, 9, k, padding=pad)
        labels = torch.randint(0, 5, (2, 11, 13))
        edges = torch.randint(0, 2, (2, 1, 11, 13)).float()
        x = torch.cat([torch.nn.functional.one_hot(labels, 5).permute(0, 3, 1, 2).float(), edges], 1)
        torch.testing.assert_close(LabelConv(conv, 5)(x), conv(x), atol=1e-5, rtol=1e-5)


def test_model_label_preparation_equals_the_official_formulas():
    """One-hot by comparison and edges by padded differences (what exports) equal the official
    scatter_ and in-place edge map."""
    from rtgan.models.labels import instance_edges, one_hot

    torch.manual_seed(0)
    inst = torch.randint(0, 3, (2, 1, 9, 7))
    edge = torch.zeros_like(inst, dtype=torch.bool)  # the official get_edges
    edge[:, :, :, 1:] |= inst[:, :, :, 1:] != inst[:, :, :, :-1]
    edge[:, :, :, :-1] |= inst[:, :, :, 1:] != inst[:, :, :, :-1]
    edge[:, :, 1:, :] |= inst[:, :, 1:, :] != inst[:, :, :-1, :]
    edge[:, :, :-1, :] |= inst[:, :, 1:, :] != inst[:, :, :-1, :]
    assert torch.equal(instance_edges(inst), edge.float())
    labels = torch.randint(0, 4, (2, 1, 9, 7))
    assert torch.equal(one_hot(labels, 4), torch.zeros(2, 4, 9, 7).scatter_(1, labels, 1.0))


@pytest.mark.parametrize("bias", [True, False])
def test_resize_conv_folds_into_one_transposed_conv(bias):
    from rtgan.export.rewrite import resize_conv_as_transposed
    from rtgan.models.pix2pixhd import ResizeConv

    torch.manual_seed(0)
    up = ResizeConv(5, 3)
    if not bias:
        up.conv.bias = None
    folded = resize_conv_as_transposed(up)
    assert folded.kernel_size == (4, 4) and folded.stride == (2, 2)
    for h, w in ((1, 1), (4, 6), (7, 9)):  # odd sizes and a single pixel: the borders fold exactly
        x = torch.randn(2, 5, h, w)
        with torch.no_grad():
            torch.testing.assert_close(folded(x), up(x), atol=1e-5, rtol=0)


def test_default_export_folds_nearest_resize_convs_and_keeps_bilinear_ones(tmp_path):
    import onnx

    from rtgan.export.onnx import export_onnx

    ops = {}
    for variant in ("p2phd-local-nearest", "p2phd-bilinear-noise-decoder"):
        model, size = make(variant)
        for name, rewrites in (("default", Rewrites()), ("none", Rewrites.none())):
            export_onnx(inference_graph(model, *size, rewrites=rewrites), tmp_path / f"{variant}-{name}.onnx")
            nodes = onnx.load(str(tmp_path / f"{variant}-{name}.onnx")).graph.node
            ops[variant, name] = [n.op_type for n in nodes]
    n = model.config.n_downsample_global
    nearest = n + 1  # the global generator's and the enhancer's upsampling
    assert "Resize" not in ops["p2phd-local-nearest", "default"]
    assert ops["p2phd-local-nearest", "default"].count("ConvTranspose") == nearest
    assert ops["p2phd-local-nearest", "none"].count("Resize") == nearest
    for name in ("default", "none"):  # bilinear resizing clamps at the borders: no exact fold
        assert ops["p2phd-bilinear-noise-decoder", name].count("Resize") == n
        assert "ConvTranspose" not in ops["p2phd-bilinear-noise-decoder", name]
