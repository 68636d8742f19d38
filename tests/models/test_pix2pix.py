"""pix2pix / CycleGAN generators (rtgan/models/pix2pix.py): official loading, size policy, inference modes.

Key layouts of every recorded official configuration are checked in test_official_keys.py; outputs
against the official code in tests/official/test_pix2pix_parity.py.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rtgan.errors import CheckpointError, ConfigError, InputError
from rtgan.models import build, get_model, load, load_official, make_config, save
from rtgan.models.official import drop_stale_instance_norm_buffers
from rtgan.models.pix2pix import BatchNorm2d

KEYS = Path(__file__).parents[1] / "data" / "official-keys"
STALE = ("running_mean", "running_var", "num_batches_tracked")


def small(arch="pix2pix", **options):
    options = {"ngf": 4, **options}
    return build(make_config(arch, **options))


@torch.no_grad()
def with_statistics(model, seed=0):
    """Random batch-norm affines and running statistics (a default batch norm normalises nothing)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.normal_(1, 0.2, generator=g)
            m.bias.normal_(0, 0.2, generator=g)
            m.running_mean.normal_(0, 0.3, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
    return model


def image(b=2, c=3, h=64, w=64, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def released_state(model):
    """The model's state dict with the InstanceNorm buffers the 2018 official code wrote."""
    state = dict(model.state_dict())
    for name, m in model.named_modules():
        if isinstance(m, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.randn(m.num_features)
            state[f"{name}.running_var"] = torch.rand(m.num_features) + 0.5
            state[f"{name}.num_batches_tracked"] = torch.tensor(7)
    return state


def test_defaults_are_the_official_ones():
    p, c = make_config("pix2pix"), make_config("cyclegan")
    assert (p.netG, p.norm, p.no_dropout) == ("unet_256", "batch", False)
    assert (c.netG, c.norm, c.no_dropout) == ("resnet_9blocks", "instance", True)
    assert (p.bn_mode, p.dropout_seed, p.input_nc, p.output_nc, p.ngf) == ("eval", None, 3, 3, 64)


def test_released_manifest_holds_69_stale_buffers_of_23_layers():
    ref = json.loads((KEYS / "cyclegan_resnet_9blocks_released.json").read_text())
    with torch.device("meta"):
        model = build(make_config("cyclegan", **{k: v for k, v in ref["options"].items() if k != "model"}))
        state = {k: torch.empty(v) for k, v in ref["netG"].items()}
    with pytest.warns(UserWarning, match=r"ignored 69 InstanceNorm running-statistics buffers \(23 layers\)"):
        drop_stale_instance_norm_buffers(model, state, "released")
    assert sorted(state) == sorted(model.state_dict())


@pytest.mark.parametrize("prefix", ["", "module."])
def test_released_layout_loads_with_a_warning_and_the_same_image(tmp_path, prefix):
    model = small("cyclegan", netG="resnet_6blocks")
    state = released_state(model)
    assert len(state) - len(model.state_dict()) == 3 * 17  # 3 + 2 per block + 2 instance norms
    torch.save({prefix + k: v for k, v in state.items()}, tmp_path / "latest_net_G.pth")
    torch.save(model.state_dict(), tmp_path / "clean.pth")
    with pytest.warns(UserWarning, match="ignored 51 InstanceNorm"):
        loaded = load_official("cyclegan", tmp_path / "latest_net_G.pth", ngf=4, netG="resnet_6blocks")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = load_official("cyclegan", tmp_path / "clean.pth", ngf=4, netG="resnet_6blocks")
    x = image()
    with torch.no_grad():
        assert torch.equal(loaded(x), clean(x))
        assert torch.equal(loaded(x), model(x))


def test_only_instance_norm_buffers_are_dropped(tmp_path):
    model = small("cyclegan", netG="resnet_6blocks")
    state = released_state(model)
    state["model.2.running_mean"] = torch.zeros(5)  # wrong shape: not a stale buffer of that layer
    state["model.5.extra"] = torch.zeros(8)
    torch.save(state, tmp_path / "g.pth")
    with pytest.warns(UserWarning, match="ignored 50 InstanceNorm"), pytest.raises(CheckpointError) as e:
        load_official("cyclegan", tmp_path / "g.pth", ngf=4, netG="resnet_6blocks")
    assert "model.2.running_mean" in str(e.value) and "model.5.extra" in str(e.value)


def test_dropout_checkpoint_gets_the_no_dropout_hint(tmp_path):
    torch.save(small("cyclegan", netG="resnet_6blocks", no_dropout=False).state_dict(), tmp_path / "g.pth")
    with pytest.raises(CheckpointError, match="trained with dropout.*no_dropout=False"):
        load_official("cyclegan", tmp_path / "g.pth", ngf=4, netG="resnet_6blocks")
    torch.save(small("pix2pix", netG="resnet_6blocks", no_dropout=True).state_dict(), tmp_path / "p.pth")
    with pytest.raises(CheckpointError, match="trained without dropout.*no_dropout=True"):
        load_official("pix2pix", tmp_path / "p.pth", ngf=4, netG="resnet_6blocks", norm="batch", no_dropout=False)


@pytest.mark.parametrize(
    "saved,options,hint",
    [
        (dict(netG="resnet_6blocks", norm="batch"), dict(netG="resnet_6blocks"), "norm='batch'"),
        (dict(netG="resnet_6blocks", norm="none"), dict(netG="resnet_6blocks"), "norm='none'"),
        (dict(netG="unet_128", norm="instance"), dict(netG="unet_128", norm="batch"), "norm='instance'"),
        (dict(netG="unet_128"), dict(netG="resnet_6blocks"), "netG: the checkpoint is a U-Net"),
        (dict(netG="unet_128"), dict(netG="unet_256"), "7 levels"),
        (dict(netG="resnet_9blocks"), dict(netG="resnet_6blocks"), "resnet_9blocks"),
        (dict(netG="resnet_6blocks", ngf=8), dict(netG="resnet_6blocks"), "3 -> 8 channels"),
    ],
)
def test_wrong_options_get_hints(tmp_path, saved, options, hint):
    arch = "cyclegan"
    torch.save(small(arch, **saved).state_dict(), tmp_path / "g.pth")
    with pytest.raises(CheckpointError) as e:
        load_official(arch, tmp_path / "g.pth", **{"ngf": 4, **options})
    assert hint in str(e.value), str(e.value)


@pytest.mark.parametrize(
    "options,size,match",
    [
        (dict(netG="unet_256"), (256, 320), "multiples of 256 for unet_256, got 256x320"),
        (dict(netG="unet_128"), (64, 128), "multiples of 128 for unet_128, got 64x128"),
        (dict(netG="resnet_6blocks"), (64, 66), "multiples of 4 for resnet_6blocks, got 64x66.*next multiple of 4"),
        (dict(netG="resnet_6blocks"), (4, 64), "at least 8 pixels"),
    ],
)
def test_size_policy(options, size, match):
    model = small(**options)
    with pytest.raises(InputError, match=match):
        model(image(1, 3, *size))


def test_input_checks():
    model = small(netG="resnet_6blocks")
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        model(image(1, 1, 32, 32))
    with pytest.raises(InputError, match="float32"):
        model(image(1, 3, 32, 32).double())
    with pytest.raises(InputError, match="uint8 RGB"):
        model.prepare_inputs(torch.zeros(1, 32, 32, 3))
    with pytest.raises(InputError, match="uint8 RGB"):
        model.prepare_inputs(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(netG="unet_512"), "netG must be one of"),
        (dict(norm="group"), "norm must be one of"),
        (dict(bn_mode="train"), "bn_mode must be"),
        (dict(input_nc=2), "input_nc must be 1"),
        (dict(no_dropout=True, dropout_seed=1), "dropout_seed needs"),
        (dict(dropout_seed="1"), "dropout_seed must be int or None"),
        (dict(dropout_seed=-1), "dropout_seed must be >= 0"),
        (dict(no_dropuot=True), "did you mean 'no_dropout'"),
    ],
)
def test_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        make_config("pix2pix", **options)


def test_signature_and_prepared_inputs():
    sig = small(netG="unet_256").signature()
    assert (sig.inputs[0].name, sig.inputs[0].kind, sig.spatial, sig.multiple, sig.size) == (
        "source", "image", "multiple", 256, (256, 256))  # fmt: skip
    assert small("cyclegan", netG="resnet_6blocks", output_nc=1).signature().channels == 1
    assert small("cyclegan", netG="resnet_6blocks").signature().multiple == 4
    rgb = torch.tensor([[[[0, 128, 255], [255, 255, 255]]]], dtype=torch.uint8)  # (1, 1, 2, 3)
    (x,) = small("cyclegan", netG="resnet_6blocks").prepare_inputs(rgb)
    assert x.shape == (1, 3, 1, 2) and x.dtype == torch.float32
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([-1.0, 128 / 127.5 - 1, 1.0]), atol=1e-6)
    (g,) = small("cyclegan", netG="resnet_6blocks", input_nc=1).prepare_inputs(rgb)
    # PIL's convert('L'): (19595 R + 38470 G + 7471 B + 2^15) >> 16 -> 0*.299 + 128*.587 + 255*.114 = 104.2
    luma = (128 * 38470 + 255 * 7471 + 32768) >> 16
    assert g.shape == (1, 1, 1, 2) and torch.allclose(g[0, 0, 0], torch.tensor([luma / 127.5 - 1, 1.0]), atol=1e-6)


def test_per_image_batch_norm_is_train_mode_on_one_image_without_updates():
    model = with_statistics(small(netG="unet_128", bn_mode="per_image"))
    eval_model = small(netG="unet_128", no_dropout=True)  # train mode below: no dropout to compare with
    eval_model.load_state_dict(model.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = image(2, 3, 128, 128)
    with torch.no_grad():
        a = model(x)
        assert (a - eval_model(x)).abs().max() > 0.05  # running vs own statistics
        # the reference: stock BatchNorm2d in training mode, one image at a time, on a copy
        eval_model.train()
        b = torch.cat([eval_model(x[i : i + 1]) for i in range(2)])
    assert (a - b).abs().max() <= 1e-5
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(not m.training for m in model.modules())
    assert sum(isinstance(m, BatchNorm2d) and m.per_image for m in model.modules()) == 11  # 5 middle levels x 2 + 1


def test_dropout_seed_is_deterministic():
    x = image(1, 3, 128, 128)
    base = with_statistics(small(netG="unet_128", bn_mode="per_image"))
    runs = {}
    for seed in (None, 0, 1, "again", "no_dropout"):
        options = {"dropout_seed": seed} if isinstance(seed, int) else {}
        options = {"dropout_seed": 0} if seed == "again" else {"no_dropout": True} if seed == "no_dropout" else options
        runs[seed] = small(netG="unet_128", bn_mode="per_image", **options)
        runs[seed].load_state_dict(base.state_dict())  # U-Net dropout changes no key
    with torch.no_grad():
        out = {seed: m(x) for seed, m in runs.items()}
        assert torch.equal(out[0], runs[0](x)) and torch.equal(out[0], out["again"])  # same seed, same image
        assert (out[0] - out[1]).abs().max() > 1e-3 and (out[0] - out[None]).abs().max() > 1e-3
        assert torch.equal(out[None], out["no_dropout"])  # no seed: no dropout


def test_presets_build_and_round_trip(tmp_path):
    for name in ("cyclegan-style-monet", "pix2pix-edges2shoes"):
        with torch.device("meta"):
            m = get_model(name)
        assert m.config.arch == name.split("-")[0]
    assert get_model("pix2pix-edges2shoes", ngf=4).config.bn_mode == "per_image"
    model = with_statistics(small(netG="resnet_6blocks", dropout_seed=3))
    loaded = load(save(model, tmp_path / "m"))
    assert loaded.config == model.config
    x = image(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_engine_feeds_run_through_prepare_inputs():
    from rtgan.export import model_feeds
    from rtgan.export.rewrite import to_uint8

    model = small("cyclegan", netG="resnet_6blocks")
    feeds = {k: torch.from_numpy(v) for k, v in model_feeds(model, 32, 48, batch=2).items()}
    with torch.no_grad():
        out = to_uint8(model(*model.prepare_inputs(**feeds)))
    assert out.shape == (2, 32, 48, 3) and out.dtype == torch.uint8
    assert np.isfinite(out.numpy()).all()
