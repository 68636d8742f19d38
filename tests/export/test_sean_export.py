"""SEAN engines (rtgan/models/sean.py's signature): labels (+ instance), per-class style codes or a style image, and
the flat noise in, uint8 RGB out, on every CPU backend, >= 60 dB against PyTorch and deterministic given their
inputs, or given the engine's seed."""

import json

import numpy as np
import pytest
import torch

from rtgan import Engine, InputError
from rtgan.export import export, model_feeds, psnr, reference_image
from rtgan.models.sean import SEANConfig, SEANGenerator

pytest.importorskip("onnxruntime")

SLIM = dict(label_nc=5, no_instance=False, crop_size=32, ngf=4, style_length=16)
BACKENDS = ["onnxruntime", "openvino", "torch"]  # every CPU backend
EXPORTS = ["onnxruntime", "torch"]  # OpenVINO reads the ONNX of the onnxruntime artifact (its own export adds minutes)


@torch.no_grad()
def like_trained(model: SEANGenerator, seed: int = 0) -> SEANGenerator:
    """Every parameter and running statistic random (the blending weights and noise scales start at 0), conv_img
    scaled so that the image mostly stays inside [-1, 1]: a saturated image would pass any PSNR floor."""
    model.eval()  # spectral norm and batch norm as at inference while the scale is measured
    g = torch.Generator().manual_seed(seed)
    for name, b in model.named_buffers():  # spectral norm's u and v: drawn at construction from the global generator
        if name.endswith(("weight_u", "weight_v")):
            b.copy_(torch.nn.functional.normalize(torch.randn(b.shape, generator=g), dim=0))
    for p in model.parameters():
        p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(torch.randn(b.shape, generator=g) * 0.2)
        elif name.endswith("running_var"):
            b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    h, w = model.config.size
    feeds = {k: torch.from_numpy(v) for k, v in model_feeds(model, h, w, 2).items()}
    seen = []
    hook = model.conv_img.register_forward_hook(lambda m, i, out: seen.append(out.std()))
    model(*model.prepare_inputs(**feeds))
    hook.remove()
    model.conv_img.weight.mul_(0.5 / seen[0])
    model.conv_img.bias.mul_(0.5 / seen[0])
    return model.eval()


@pytest.fixture(scope="module")
def models():
    return {
        "codes": like_trained(SEANGenerator(SEANConfig(**SLIM))),
        "image": like_trained(SEANGenerator(SEANConfig(**SLIM, style_input="image")), seed=1),
    }


@pytest.fixture(scope="module")
def artifacts(models, tmp_path_factory):
    from rtgan.utils import cpu

    root = tmp_path_factory.mktemp("sean")
    with pytest.MonkeyPatch.context() as mp:  # fp32 engines are under test: no timing of bf16 runs (test_precision's)
        mp.setattr(cpu, "has_bf16", lambda: False)
        out = {
            b: export(models["codes"], height=32, width=32, backend=b, out=root / b, progress=False) for b in EXPORTS
        }
        out["image"] = export(
            models["image"], height=32, width=32, backend="onnxruntime", out=root / "i", progress=False
        )
    out["openvino"] = out["onnxruntime"]
    return out


def feeds_of(model, batch: int, seed: int) -> dict[str, np.ndarray]:
    return model_feeds(model, 32, 32, batch=batch, seed=seed)


@pytest.mark.parametrize("backend", BACKENDS)
def test_codes_engine_matches_pytorch_and_is_deterministic(models, artifacts, backend):
    model = models["codes"]
    manifest = json.loads((artifacts[backend] / "manifest.json").read_text())
    n = model.config.noise_size
    assert [(i["name"], i["kind"], i["shape"]) for i in manifest["inputs"]] == [
        ("labels", "labels", ["batch", 32, 32]),
        ("instance", "instance", ["batch", 32, 32]),
        ("style", "styles", ["batch", 6, 16]),
        ("noise", "latent", ["batch", n]),
    ]
    assert manifest["arch"] == "sean" and manifest["fidelity"]["psnr_db_onnxruntime"] >= 60
    engine = Engine.load(artifacts[backend], backend)
    feeds = feeds_of(model, 3, seed=4)
    got = engine.run(**feeds)
    ref = reference_image(model, feeds)
    value = psnr(got, ref)
    print(f"\n{backend}: {value:.1f} dB; reference mean {ref.mean():.0f}, std {ref.std():.0f}")
    assert got.shape == (3, 32, 32, 3) and got.dtype == np.uint8 and value >= 60
    assert 20 < ref.std() and (ref == 0).mean() + (ref == 255).mean() < 0.2, "a saturated image proves little"
    # the engine graph is the model's forward with these codes and maps
    t = {k: torch.from_numpy(v) for k, v in feeds.items()}
    with torch.no_grad():
        semantics = model.prepare(t["labels"], t["instance"])
        official = model(semantics, style=t["style"], noise=model.split_noise(t["noise"]))
    assert np.abs(((official.permute(0, 2, 3, 1) + 1) * 127.5).clamp(0, 255).round().numpy() - ref).max() == 0
    assert np.array_equal(engine.run(**feeds), got)  # given every input: the same image
    one = engine.run(**{k: v[1] for k, v in feeds.items()})
    assert one.shape == (32, 32, 3) and np.abs(one.astype(int) - got[1]).max() <= 1
    assert not np.array_equal(engine.run(**feeds | {"style": feeds["style"][::-1].copy()}), got)  # the codes paint
    assert not np.array_equal(engine.run(**feeds | {"noise": feeds["noise"][::-1].copy()}), got)  # the noise too
    # other classes present than at export (no per-class branch froze into the graph): classes 0 and 3 only
    few = feeds | {"labels": feeds["labels"] % 2 * 3, "instance": feeds["labels"] % 2}
    assert psnr(engine.run(**few), reference_image(model, few)) >= 60


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_style_image_engine_matches_pytorch(models, artifacts, backend):
    model = models["image"]
    manifest = json.loads((artifacts["image"] / "manifest.json").read_text())
    assert [(i["name"], i["kind"]) for i in manifest["inputs"]][2] == ("style", "image")
    engine = Engine.load(artifacts["image"], backend)
    feeds = feeds_of(model, 2, seed=5)
    assert feeds["style"].dtype == np.uint8 and feeds["style"].shape == (2, 32, 32, 3)
    got, ref = engine.run(**feeds), reference_image(model, feeds)
    value = psnr(got, ref)
    print(f"\nstyle image, {backend}: {value:.1f} dB; reference std {ref.std():.0f}")
    assert value >= 60 and ref.std() > 20
    other = feeds | {"style": feeds["style"][::-1].copy()}
    assert not np.array_equal(engine.run(**other), got)
    with pytest.raises(InputError, match=r"input 'style' \(image\) is required"):
        engine.run(labels=feeds["labels"], instance=feeds["instance"], noise=feeds["noise"])


def test_sampled_inputs_follow_the_engine_seed(artifacts):
    labels = feeds_of(SEANGenerator(SEANConfig(**SLIM)), 2, seed=6)["labels"]
    a, b = (Engine.load(artifacts["onnxruntime"], "onnxruntime", seed=11) for _ in range(2))
    first = a.run(labels)
    assert np.array_equal(first, b.run(labels))  # the same seed, the same draws of codes and noise
    assert not np.array_equal(first, a.run(labels))  # fresh draws per call
    with pytest.raises(InputError, match=r"style must be \(6, 16\) or \(B, 6, 16\), got shape \(2, 5, 16\)"):
        a.run(labels, style=np.zeros((2, 5, 16)))
    with pytest.raises(InputError, match="style has batch 1, the labels 2"):
        a.run(labels, style=np.zeros((1, 6, 16)))
    with pytest.raises(InputError, match="unknown input"):
        a.run(labels, codes=np.zeros((2, 6, 16)))


@pytest.mark.parametrize("backend", EXPORTS)
def test_codes_engine_encodes_style_images_per_region(models, artifacts, backend):
    """A codes engine holds the Zencoder: encode_style(image, labels, instance) is encode(image, prepare(...)), and
    running on those codes paints what the style_input='image' forward paints with the same weights."""
    model = models["codes"]
    manifest = json.loads((artifacts[backend] / "manifest.json").read_text())
    assert manifest["style_encoder"] == {"file": "encoder.onnx", "inputs": ["style", "labels", "instance"],
                                         "output": "codes"}  # fmt: skip
    engine = Engine.load(artifacts[backend], backend)
    feeds = feeds_of(model, 2, seed=9)
    image = np.random.default_rng(9).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    codes = engine.encode_style(image, feeds["labels"], feeds["instance"])
    t = torch.from_numpy
    with torch.no_grad():
        want = model.encode_inputs(t(image), t(feeds["labels"]), t(feeds["instance"])).numpy()
    assert codes.shape == (2, 6, 16) and codes.dtype == np.float32 and np.abs(codes - want).max() < 1e-4
    by_image = SEANGenerator(SEANConfig(**SLIM, style_input="image"))
    by_image.load_state_dict(model.state_dict())
    by_image.eval()
    got = engine.run(feeds["labels"], instance=feeds["instance"], style=codes, noise=feeds["noise"])
    ref = reference_image(by_image, feeds | {"style": image})
    value = psnr(got, ref)
    print(f"\n{backend}: codes from the encoder {value:.1f} dB vs the style-image forward")
    assert value >= 60 and ref.std() > 20
    one = engine.encode_style(image[1], feeds["labels"][1])  # one image; instance defaults to the labels
    assert one.shape == (6, 16) and np.abs(one - engine.encode_style(image[1:], feeds["labels"][1:])[0]).max() == 0
    with pytest.raises(InputError, match="labels are required"):
        engine.encode_style(image)
    with pytest.raises(InputError, match="style must be 32x32"):
        engine.encode_style(image[:, :16], feeds["labels"])
    with pytest.raises(InputError, match="style has batch 2, the labels 1"):
        engine.encode_style(image, feeds["labels"][:1])
    with pytest.raises(InputError, match="label id 9 is out of range"):
        engine.encode_style(image, feeds["labels"] * 0 + 9)


@pytest.mark.slow
def test_openvino_ir_artifact(models, tmp_path):
    """An OpenVINO artifact of its own (the IR, not the ONNX of an onnxruntime one)."""
    model = models["codes"]
    out = export(model, height=32, width=32, backend="openvino", out=tmp_path / "ov", progress=False)
    feeds = feeds_of(model, 2, seed=8)
    value = psnr(Engine.load(out, "openvino").run(**feeds), reference_image(model, feeds))
    print(f"\nopenvino IR: {value:.1f} dB")
    assert value >= 60
