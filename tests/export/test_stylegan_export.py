"""StyleGAN engines (rtgan/models/stylegan.py's signature): z and the flat noise in, uint8 RGB out, on every
CPU backend, >= 60 dB against PyTorch and deterministic given (z, noise), or given the engine's seed."""

import json

import numpy as np
import pytest
import torch

from rtgan import Engine, InputError
from rtgan.export import export, model_feeds, psnr, reference_image
from rtgan.models import get_model
from rtgan.models.stylegan import StyleGANConfig, StyleGANGenerator, split_noise

pytest.importorskip("onnxruntime")

# six blocks to 128 px, block 5 a fused one; the engine paints step 5
SLIM = dict(code_dim=16, n_mlp=2, channels=(16, 16, 8, 8, 8, 4), size=128)
BACKENDS = ["onnxruntime", "openvino", "torch"]  # every CPU backend


@torch.no_grad()
def like_trained(model: StyleGANGenerator, seed: int = 0) -> StyleGANGenerator:
    """Random weights (noise weights and biases too), the last to_rgb scaled so that the image mostly
    stays inside [-1, 1]: a saturated image would pass any PSNR floor."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        p.copy_(torch.randn(p.shape, generator=g) * (0.2 if name.endswith("bias") else 1.0))
    feeds = {k: torch.from_numpy(v) for k, v in model_feeds(model, model.config.size, model.config.size, 2).items()}
    rgb = model.generator.to_rgb[model.config.step].conv
    scale = 0.5 / model(*model.prepare_inputs(**feeds)).std()
    rgb.weight_orig.mul_(scale)
    rgb.bias.mul_(scale)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return like_trained(StyleGANGenerator(StyleGANConfig(**SLIM)))


@pytest.fixture(scope="module")
def artifacts(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("stylegan")
    return {b: export(model, height=128, width=128, backend=b, out=root / b, progress=False) for b in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_matches_pytorch_and_is_deterministic(model, artifacts, backend):
    manifest = json.loads((artifacts[backend] / "manifest.json").read_text())
    n = model.config.noise_size
    assert [(i["name"], i["kind"], i["shape"]) for i in manifest["inputs"]] == [
        ("z", "latent", ["batch", 16]),
        ("noise", "latent", ["batch", n]),
        ("truncation", "scalar", ["batch"]),
    ]
    assert manifest["arch"] == "stylegan" and manifest["fidelity"]["psnr_db_onnxruntime"] >= 60
    engine = Engine.load(artifacts[backend], backend)
    rng = np.random.default_rng(4)
    z, noise = rng.standard_normal((3, 16)), rng.standard_normal((3, n))
    got = engine.run(z=z, noise=noise)
    ref = reference_image(model, {"z": z.astype(np.float32), "noise": noise.astype(np.float32)})
    value = psnr(got, ref)
    print(f"\n{backend}: {value:.1f} dB; reference mean {ref.mean():.0f}, std {ref.std():.0f}")
    assert got.shape == (3, 128, 128, 3) and got.dtype == np.uint8 and value >= 60
    assert 20 < ref.std() and (ref == 0).mean() + (ref == 255).mean() < 0.2, "a saturated image proves little"
    # the engine graph is the official forward at step 5 with these maps
    t = lambda a: torch.from_numpy(a.astype(np.float32))  # noqa: E731
    with torch.no_grad():
        official = model(t(z), noise=split_noise(t(noise), 5), step=5)
    assert np.abs(((official.permute(0, 2, 3, 1) + 1) * 127.5).clamp(0, 255).round().numpy() - ref).max() == 0
    assert np.array_equal(engine.run(z=z, noise=noise), got)  # given (z, noise): the same image
    one = engine.run(z=z[1], noise=noise[1])
    assert one.shape == (128, 128, 3) and np.abs(one.astype(int) - got[1]).max() <= 1
    assert not np.array_equal(engine.run(z=z, noise=noise[::-1].copy()), got)  # the noise paints


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampled_noise_follows_the_engine_seed(artifacts, backend):
    z = np.random.default_rng(5).standard_normal((2, 16))
    a, b = (Engine.load(artifacts[backend], backend, seed=11) for _ in range(2))
    first = a.run(z=z)
    assert np.array_equal(first, b.run(z=z))  # the same seed, the same noise draws
    assert not np.array_equal(first, a.run(z=z))  # a fresh draw per call, as the official forward
    assert a.run().shape == (128, 128, 3)  # z sampled too
    with pytest.raises(InputError, match=r"noise must be \(21840,\) or \(B, 21840\)"):
        a.run(z=z, noise=np.zeros((2, 100)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncation_is_the_official_one_and_checked(model, artifacts, backend):
    """ψ = 1 (the default) paints as the forward without truncation; ψ = 0.5 as the forward with
    mean_style=get_mean_style(), style_weight=0.5; per sample, or one ψ for the batch; outside [0, 1] refused."""
    engine = Engine.load(artifacts[backend], backend)
    rng = np.random.default_rng(6)
    z = rng.standard_normal((2, 16)).astype(np.float32)
    noise = rng.standard_normal((2, model.config.noise_size)).astype(np.float32)
    t = torch.from_numpy
    u8 = lambda x: ((x.permute(0, 2, 3, 1) + 1) * 127.5).clamp(0, 255).round().numpy()  # noqa: E731
    with torch.no_grad():
        maps = split_noise(t(noise), 5)
        plain = u8(model(t(z), noise=maps, step=5))
        half = u8(model(t(z), noise=maps, step=5, mean_style=model.get_mean_style(), style_weight=0.5))
    assert psnr(engine.run(z=z, noise=noise), plain) >= 60
    assert psnr(engine.run(z=z, noise=noise, truncation=1.0), plain) >= 60
    got = engine.run(z=z, noise=noise, truncation=0.5)
    value = psnr(got, half)
    print(f"\n{backend}: psi 0.5 {value:.1f} dB; vs no truncation {psnr(got, plain):.1f} dB")
    assert value >= 60 and psnr(got, plain) < 40  # truncation changes the image
    mixed = engine.run(z=z, noise=noise, truncation=np.array([1.0, 0.5]))
    assert psnr(mixed, np.stack([plain[0], half[1]])) >= 60
    assert engine.run(z=z[0], noise=noise[0], truncation=0.5).shape == (128, 128, 3)
    for bad in (1.5, -0.1, np.array([0.5, 2.0])):
        with pytest.raises(InputError, match=r"truncation must be in \[0, 1\]"):
            engine.run(z=z, noise=noise, truncation=bad)
    with pytest.raises(InputError, match="disagree on the batch"):
        engine.run(z=z, noise=noise, truncation=np.full(3, 0.5))


@pytest.mark.slow
def test_released_width_preset_engine(tmp_path):
    """The released generator at 256x256 (stylegan-ffhq-256, step 6) through both CPU backends."""
    model = like_trained(get_model("stylegan-ffhq-256"), seed=1)
    out = export(model, height=256, width=256, out=tmp_path / "e", progress=False)
    feeds = model_feeds(model, 256, 256, batch=1, seed=3)
    ref = reference_image(model, feeds)
    for backend in ("onnxruntime", "openvino"):  # OpenVINO reads the ONNX of an onnxruntime artifact
        value = psnr(Engine.load(out, backend).run(**feeds), ref)
        print(f"\nstylegan-ffhq-256 {backend}: {value:.1f} dB")
        assert value >= 60
