"""CI proof that the OASIS, SEAN and StyleGAN exported graphs parse and build with TensorRT-RTX (offline, SM86).

Slim generators with random weights, as test_tensorrt_rtx_archs.py does for the label-map families; their extra
inputs (OASIS's z, SEAN's per-class style codes or style image and flat noise, StyleGAN's z and noise) are graph
inputs of the plan, and the CPU fallback engine takes them by name. The released widths run under `slow`.
"""

import json

import onnx
import pytest
import torch

from rtgan import Engine
from rtgan.engine import BackendUnavailable
from rtgan.export import export, model_feeds, psnr, reference_image, sample_feeds
from rtgan.models import get_model
from rtgan.models.oasis import OASISConfig, OASISGenerator
from rtgan.models.sean import SEANConfig, SEANGenerator
from rtgan.models.stylegan import StyleGANConfig, StyleGANGenerator

pytest.importorskip("tensorrt_rtx")

_OASIS = dict(channels_G=4, z_dim=8)  # six OASIS blocks at 4..64 channels: the official depth, slim
_SEAN = dict(ngf=4, style_length=16, crop_size=32)

# id -> (a slim model, (H, W))
SLIM = {
    # ADE20K's mode: square, label 0 is the don't-care class (one-hot channel 0)
    "oasis-ade20k": lambda: (
        OASISGenerator(OASISConfig(**_OASIS, label_nc=5, contain_dontcare_label=True, crop_size=32)),
        (32, 32),
    ),
    # Cityscapes' mode: 34 labels + don't-care, 2:1 (a 1x2 latent grid)
    "oasis-cityscapes": lambda: (
        OASISGenerator(OASISConfig(**_OASIS, label_nc=34, crop_size=64, aspect_ratio=2.0)),
        (32, 64),
    ),
    # per-class style codes (B, classes, style_length) and instance edges (a semantic channel of their own)
    "sean-codes-instance": lambda: (SEANGenerator(SEANConfig(**_SEAN, label_nc=3, no_instance=False)), (32, 32)),
    # a uint8 style image encoded inside the graph (TensorRT takes it into a Cast first), no instance map
    "sean-image": lambda: (SEANGenerator(SEANConfig(**_SEAN, label_nc=3, style_input="image")), (32, 32)),
    # blocks at 4..32 px, z through the mapping MLP, per-layer noise maps from the flat noise input
    "stylegan": lambda: (
        StyleGANGenerator(StyleGANConfig(code_dim=16, n_mlp=2, channels=(16, 8, 8, 4), size=32)),
        (32, 32),
    ),
}


def output_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The conv that paints the image (its output goes through tanh or straight to the image)."""
    if model.config.arch == "stylegan":
        return model.generator.to_rgb[model.config.step].conv
    return model.conv_img


@torch.no_grad()
def like_trained(model: torch.nn.Module, h: int, w: int, seed: int = 0) -> torch.nn.Module:
    """Construction's weights, with what it leaves constant (biases, norm affines, StyleGAN's noise strengths,
    SEAN's blending weights and noise scales) drawn at random so that every input path paints; batch-norm
    statistics gathered on random inputs, then perturbed (default statistics normalise nothing: activations
    would grow past fp16's range); the output conv centred and scaled per channel to a std of 0.3: a flat or
    saturated image would pass any PSNR floor."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if p.numel() == 1 or p.std() == 0:
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    feeds = {k: torch.from_numpy(v) for k, v in model_feeds(model, h, w, batch=2, seed=seed).items()}
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # the average over the batches below
        model.train()
        model(*model.prepare_inputs(**feeds))
        for m in norms:
            m.momentum = 0.1
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.mul_(torch.rand(m.running_var.shape, generator=g) * 0.4 + 0.8)
    model.eval()
    layer, seen = output_layer(model), []
    hook = layer.register_forward_hook(lambda m, i, out: seen.append(out.transpose(0, 1).flatten(1)))
    model(*model.prepare_inputs(**feeds))
    hook.remove()
    out = seen[0]
    scale = 0.3 / out.std(1)
    weight = layer.weight_orig if hasattr(layer, "weight_orig") else layer.weight  # StyleGAN's equalized lr
    weight.mul_(scale.view(-1, 1, 1, 1))
    layer.bias.copy_((layer.bias - out.mean(1)) * scale)
    return model


def built(model, size, precision, out):
    """Export a TensorRT-RTX plan and check what every plan must satisfy; returns (directory, manifest)."""
    h, w = size
    path = export(model, height=h, width=w, backend="tensorrt-rtx", precision=precision, compute_capability="SM86",
                  out=out, progress=False)  # fmt: skip
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["target"] == {"device": "cuda", "gpu_arch": "SM86"}
    assert manifest["plan"]["plan_bytes"] > 0
    assert (path / "model.plan").stat().st_size == manifest["plan"]["plan_bytes"]
    # every declared input (z, style, noise too) is an input of the graph the plan was built from
    assert [i["name"] for i in manifest["inputs"]] == [i.name for i in model.signature().inputs]
    graph = onnx.load(str(path / "model.onnx")).graph
    for name in [i["name"] for i in manifest["inputs"] if i["dtype"] == "uint8"]:  # SEAN's style image
        users = [n.op_type for n in graph.node if name in n.input]
        assert users == ["Cast"], f"uint8 {name!r} must go into a Cast first (TensorRT's rule), got {users}"
    with pytest.raises(BackendUnavailable, match="needs an NVIDIA GPU"):
        Engine.load(path, backend="tensorrt-rtx")
    return path, manifest


def check_paints(model, path, manifest, precision):
    """fp32: the CPU fallback engine on the same ONNX graph, >= 60 dB against PyTorch (with no GPU, 'auto' picks a
    CPU runtime). fp16: the fp16 graph the plan was built from, on ONNX Runtime's CPU provider, >= 40 dB."""
    feeds = sample_feeds(manifest, batch=2)
    ref = reference_image(model, feeds)
    assert ref.std() > 20 and (ref == 0).mean() + (ref == 255).mean() < 0.2, "a flat or saturated image proves little"
    if precision == "fp32":
        engine = Engine.load(path)
        assert engine.backend_name in ("openvino", "onnxruntime")
        got = engine.run(**feeds)  # labels and instance as maps, z / style / noise by name
        assert got.shape == ref.shape and psnr(got, ref) >= 60
    else:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
        assert psnr(session.run(None, feeds)[0], ref) >= 40


# fp16: one model per family (their float inputs z, style and noise enter fp16 graphs through a Cast)
# in CI: every family at fp32 and one fp16 graph (the float inputs' casts); the other variants under `slow`
CI = {("oasis-ade20k", "fp32"), ("sean-codes-instance", "fp32"), ("stylegan", "fp32"), ("stylegan", "fp16")}
CASES = [
    pytest.param(v, p, id=f"{v}-{p}", marks=() if (v, p) in CI else pytest.mark.slow)
    for p, variants in (("fp32", SLIM), ("fp16", ("oasis-ade20k", "sean-codes-instance", "stylegan")))
    for v in variants
]


@pytest.mark.parametrize("variant, precision", CASES)
def test_offline_plan_builds(variant, precision, tmp_path):
    torch.manual_seed(0)  # spectral norm's u, v are drawn at construction
    model, size = SLIM[variant]()
    model = like_trained(model, *size)
    path, manifest = built(model, size, precision, tmp_path / "plan")
    check_paints(model, path, manifest, precision)


# the released generators at their widths (at a small size where the architecture allows it)
FULL = [("oasis-ade20k", (64, 64)), ("oasis-cityscapes", (64, 128)), ("sean-celebahq", (256, 256)),
        ("stylegan-ffhq-256", (256, 256))]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("preset, size", FULL, ids=[p for p, _ in FULL])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_offline_released_width_plan_builds(preset, size, precision, tmp_path):
    torch.manual_seed(0)
    model = like_trained(get_model(preset), *size)
    path, manifest = built(model, size, precision, tmp_path / "plan")
    check_paints(model, path, manifest, precision)
