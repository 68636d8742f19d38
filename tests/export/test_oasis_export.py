"""OASIS engines (rtgan/models/oasis.py's signature): label ids and z in, uint8 RGB out, on every CPU backend,
>= 60 dB against PyTorch and deterministic given (labels, z), or given the engine's seed."""

import json

import numpy as np
import pytest
import torch

from rtgan import Engine, InputError
from rtgan.export import export, model_feeds, psnr, reference_image
from rtgan.export.rewrite import FastSPADE, Rewrites, apply_rewrites, frozen_copy
from rtgan.models.oasis import OASISConfig, OASISGenerator

pytest.importorskip("onnxruntime")

# Cityscapes' mode, slim: 35 label channels + 16 noise channels, 32x64 (latent grid 1x2)
SLIM = dict(label_nc=34, crop_size=64, aspect_ratio=2.0, channels_G=4, z_dim=16)
H, W = 32, 64
BACKENDS = ["onnxruntime", "openvino", "torch"]  # every CPU backend


@torch.no_grad()
def like_trained(model: OASISGenerator, seed: int = 0) -> OASISGenerator:
    """Random weights and running statistics, conv_img centred and scaled to a pre-tanh std of 0.6 per
    channel: a saturated (or flat) image would pass any PSNR floor."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        p.copy_(torch.randn(p.shape, generator=g) * (0.05 if name.endswith("bias") else 0.15))
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(torch.randn(b.shape, generator=g) * 0.5)
        elif name.endswith("running_var"):
            b.copy_(torch.rand(b.shape, generator=g) * 2 + 0.3)
    pre = []
    hook = model.conv_img.register_forward_hook(lambda m, i, out: pre.append(out.transpose(0, 1).flatten(1)))
    for seed in range(3):
        feeds = {k: torch.from_numpy(v) for k, v in model_feeds(model, H, W, 2, seed=seed).items()}
        model(*model.prepare_inputs(**feeds))
    hook.remove()
    out = torch.cat(pre, 1)  # (3, N): per colour channel, centred and scaled to a pre-tanh std of 0.6
    scale = 0.6 / out.std(1)
    model.conv_img.weight.mul_(scale.view(-1, 1, 1, 1))
    model.conv_img.bias.copy_((model.conv_img.bias - out.mean(1)) * scale)
    return model


@pytest.fixture(scope="module")
def model():
    return like_trained(OASISGenerator(OASISConfig(**SLIM)))


@pytest.fixture(scope="module")
def artifacts(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("oasis")
    return {b: export(model, height=H, width=W, backend=b, out=root / b, progress=False) for b in BACKENDS}


def test_engine_graph_folds_spectral_and_batch_norms_exactly(model):
    """The default rewrites fold spectral norm (stored u, v) and first_norm's running statistics into the
    SPADE modulation of every OASIS block, and paint the same image."""
    feeds = {k: torch.from_numpy(v) for k, v in model_feeds(model, H, W, 2, seed=1).items()}
    with torch.no_grad():
        ref = model(*model.prepare_inputs(**feeds))
    for rewrites in (Rewrites(), Rewrites.all()):  # all: gamma and beta merged too (no label gathers: noise first)
        fast = apply_rewrites(frozen_copy(model), rewrites)
        assert sum(isinstance(m, FastSPADE) for m in fast.modules()) == 6 * 2 + 4  # norm_0, norm_1; four norm_s
        assert not any(hasattr(m, "weight_orig") for m in fast.modules())
        with torch.no_grad():
            err = (fast(*fast.prepare_inputs(**feeds)) - ref).abs().max()
        assert err < 1e-5, f"{rewrites}: {err:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_matches_pytorch_and_is_deterministic(model, artifacts, backend):
    manifest = json.loads((artifacts[backend] / "manifest.json").read_text())
    assert [(i["name"], i["kind"], i["shape"]) for i in manifest["inputs"]] == [
        ("labels", "labels", ["batch", H, W]),
        ("z", "latent", ["batch", 16]),
    ]
    assert manifest["arch"] == "oasis" and manifest["fidelity"]["psnr_db_onnxruntime"] >= 60
    engine = Engine.load(artifacts[backend], backend)
    feeds = model_feeds(model, H, W, batch=2, seed=4)
    got = engine.run(**feeds)
    ref = reference_image(model, feeds)
    value = psnr(got, ref)
    print(f"\n{backend}: {value:.1f} dB; reference mean {ref.mean():.0f}, std {ref.std():.0f}")
    assert got.shape == (2, H, W, 3) and got.dtype == np.uint8 and value >= 60
    assert 20 < ref.std() and (ref == 0).mean() + (ref == 255).mean() < 0.2, "a saturated image proves little"
    # the engine graph is the official forward: z broadcast before the one-hot labels
    t = torch.from_numpy
    with torch.no_grad():
        official = model(model.prepare(t(feeds["labels"])), z=t(feeds["z"]))
    assert np.abs(((official.permute(0, 2, 3, 1) + 1) * 127.5).clamp(0, 255).round().numpy() - ref).max() == 0
    assert np.array_equal(engine.run(**feeds), got)  # given (labels, z): the same image
    one = engine.run(labels=feeds["labels"][1], z=feeds["z"][1])
    assert one.shape == (H, W, 3) and np.abs(one.astype(int) - got[1]).max() <= 1
    assert not np.array_equal(engine.run(labels=feeds["labels"], z=feeds["z"][::-1].copy()), got)  # z paints


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampled_z_follows_the_engine_seed(model, artifacts, backend):
    labels = model_feeds(model, H, W, batch=2, seed=5)["labels"]
    a, b = (Engine.load(artifacts[backend], backend, seed=11) for _ in range(2))
    first = a.run(labels=labels)
    assert np.array_equal(first, b.run(labels=labels))  # the same seed, the same z draws
    assert not np.array_equal(first, a.run(labels=labels))  # a fresh draw per call, as the official forward
    with pytest.raises(InputError, match=r"z must be finite floats of shape \(2, 16\), got \(2, 10\)"):
        a.run(labels=labels, z=np.zeros((2, 10)))


def test_local_noise_engine(model, artifacts, tmp_path, monkeypatch):
    """noise_regions=3: all regions 0 paints as the z-only engine; a region painted with z_regions[0] as the
    forward with that noise map; region ids are checked."""
    local = OASISGenerator(OASISConfig(**SLIM, noise_regions=3))
    local.load_state_dict(model.state_dict())
    local.eval()
    from rtgan.utils import cpu

    monkeypatch.setattr(cpu, "has_bf16", lambda: False)  # the fp32 engine is under test, not bf16 timings
    out = export(local, height=H, width=W, out=tmp_path / "local", progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(i["name"], i["kind"], i["shape"]) for i in manifest["inputs"]][2:] == [
        ("noise_regions", "regions", ["batch", H, W]),
        ("z_regions", "latents", ["batch", 2, 16]),
    ]
    assert manifest["fidelity"]["psnr_db_onnxruntime"] >= 60
    engine, plain = Engine.load(out, "onnxruntime"), Engine.load(artifacts["onnxruntime"], "onnxruntime")
    feeds = model_feeds(local, H, W, batch=2, seed=7)
    labels, z, others = feeds["labels"], feeds["z"], feeds["z_regions"]
    assert psnr(engine.run(labels=labels, z=z), plain.run(labels=labels, z=z)) >= 60  # regions absent: all 0
    regions = np.zeros((2, H, W), np.int32)
    regions[:, 8:24, 16:48] = 1
    got = engine.run(labels=labels, z=z, noise_regions=regions, z_regions=others)
    t = torch.from_numpy
    noise = t(z)[:, :, None, None].expand(2, 16, H, W).clone()
    noise[:, :, 8:24, 16:48] = t(others)[:, 0, :, None, None]
    with torch.no_grad():
        want = ((model(model.prepare(t(labels)), noise=noise).permute(0, 2, 3, 1) + 1) * 127.5).clamp(0, 255).round()
    assert psnr(got, want.numpy()) >= 60 and psnr(got, plain.run(labels=labels, z=z)) < 40
    assert engine.run(labels=labels[0], z=z[0], noise_regions=regions[0], z_regions=others[0]).shape == (H, W, 3)
    for bad, message in [
        (regions + 3, "noise_regions: region id 4 is out of range; ids are 0..2"),
        (regions - 1, "noise_regions: region id -1 is out of range"),
        (regions.astype(np.float32), "noise_regions must hold integer region ids"),
        (regions[:, :8], r"noise_regions must be \(H, W\) or \(B, H, W\)"),
        (regions[:1], "noise_regions has batch 1, the labels 2"),
    ]:
        with pytest.raises(InputError, match=message):
            engine.run(labels=labels, z=z, noise_regions=bad)
    with pytest.raises(InputError, match=r"z_regions must be \(2, 16\) or \(B, 2, 16\)"):
        engine.run(labels=labels, z=z, z_regions=np.zeros((2, 3, 16)))
