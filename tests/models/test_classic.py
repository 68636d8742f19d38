"""The classic noise -> image families (rtgan/models/classic.py): presets, engine contract, strict loading.

Parity with the reference scripts is tests/official/test_classic_parity.py; the official key
layout is tests/models/test_official_keys.py.
"""

import numpy as np
import pytest
import torch
from torch import nn

from rtgan.errors import CheckpointError, ConfigError, InputError
from rtgan.models import get_model, load, load_official, make_config, save
from rtgan.presets import get_preset

# preset -> (arch, signature inputs as (name, kind, size or classes), channels, size)
PRESETS = {
    "dcgan-pytorch-examples": ("dcgan", [("z", "latent", 100)], 3, 64),
    "dcgan-pytorch-gan": ("dcgan-pytorch-gan", [("z", "latent", 100)], 1, 32),
    "cgan-pytorch-gan": ("cgan", [("z", "latent", 100), ("label", "class", 10)], 1, 32),
    "infogan-pytorch-gan": ("infogan", [("z", "latent", 62), ("label", "class", 10), ("code", "codes", 2)], 1, 32),
}


def engine_feeds(model, batch=3, seed=0):
    """What the engine hands over: float32 latents/codes, int32 class ids (export's own sampler)."""
    from rtgan.export import model_feeds

    feeds = model_feeds(model, *model.signature().size, batch=batch, seed=seed)
    return {k: torch.from_numpy(v) for k, v in feeds.items()}


@torch.no_grad()
def randomized(model):
    """Non-trivial batch-norm statistics, so a wrong load or a skipped buffer shows in the image."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.normal_(1, 0.2)
            m.bias.normal_(0, 0.2)
    return model.eval()


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_forward_signature_and_size(preset):
    arch, inputs, channels, size = PRESETS[preset]
    assert get_preset(preset).arch == arch
    model = get_model(preset)
    assert model.config.arch == arch and not model.training
    sig = model.signature()
    got = [(i.name, i.kind, i.size if i.kind != "class" else i.classes) for i in sig.inputs]
    assert got == inputs
    assert (sig.channels, sig.spatial, tuple(sig.size)) == (channels, "fixed", (size, size))
    model.config.check_size(size, size)
    sig.check_size(size, size)
    for bad in ((size, 2 * size), (2 * size, 2 * size)):
        with pytest.raises(InputError, match=f"{size}x{size} only"):
            model.config.check_size(*bad)
    with torch.no_grad():
        out = model(*model.prepare_inputs(**engine_feeds(model)))
    assert out.shape == (3, channels, size, size) and out.dtype == torch.float32
    assert out.abs().max() <= 1 and out.std() > 0  # tanh output


def test_prepare_inputs_gives_the_reference_tensors():
    """Engine inputs through prepare_inputs == forward on the tensors the reference scripts build."""
    dcgan, cgan, info = (
        randomized(get_model(p)) for p in ("dcgan-pytorch-examples", "cgan-pytorch-gan", "infogan-pytorch-gan")
    )
    with torch.no_grad():
        f = engine_feeds(dcgan)
        ref = dcgan(f["z"].view(3, 100, 1, 1))  # main.py: torch.randn(batch_size, nz, 1, 1)
        assert torch.equal(dcgan(*dcgan.prepare_inputs(**f)), ref)
        assert torch.equal(dcgan(f["z"]), ref)  # (B, nz) is viewed as (B, nz, 1, 1)

        f = engine_feeds(cgan)
        ref = cgan(f["z"], f["label"].long())  # cgan.py: LongTensor(np.random.randint(0, n_classes, batch))
        assert torch.equal(cgan(*cgan.prepare_inputs(**f)), ref)

        f = engine_feeds(info)
        y = f["label"].numpy()
        y_cat = np.zeros((y.shape[0], 10))  # infogan.py to_categorical
        y_cat[range(y.shape[0]), y] = 1.0
        ref = info(f["z"], torch.FloatTensor(y_cat), f["code"])
        z, onehot, code = info.prepare_inputs(**f)
        assert onehot.dtype == torch.float32 and torch.equal(onehot, torch.FloatTensor(y_cat))
        assert torch.equal(info(z, onehot, code), ref)


def test_engine_inputs_are_checked():
    cgan, info = get_model("cgan-pytorch-gan"), get_model("infogan-pytorch-gan")
    f = engine_feeds(info)
    with pytest.raises(InputError, match=r"takes the inputs \['z', 'label', 'code'\]"):
        info.prepare_inputs(z=f["z"], code=f["code"])
    with pytest.raises(InputError, match="class id 10 is out of range: .*0..9"):
        info.prepare_inputs(**{**f, "label": torch.tensor([0, 10, 2], dtype=torch.int32)})
    with pytest.raises(InputError, match=r"z must be a float tensor of shape \(B, 62\)"):
        info.prepare_inputs(**{**f, "z": torch.randn(3, 100)})
    with pytest.raises(InputError, match="labels must be an integer tensor"):
        cgan(torch.randn(3, 100), torch.zeros(3))
    with pytest.raises(InputError, match=r"z must be a float tensor of shape \(B, 100\)"):
        get_model("dcgan-pytorch-examples")(torch.randn(2, 100, 2, 2))


@pytest.mark.parametrize(
    "arch,options,match",
    [
        ("dcgan", dict(imageSize=32), "imageSize must be 64.*always paints 64x64"),
        ("dcgan", dict(nc=4), "nc must be 1 or 3"),
        ("dcgan-pytorch-gan", dict(img_size=30), "img_size must be a multiple of 4.*paint 28x28"),
        ("infogan", dict(code_dim=0), "code_dim must be positive"),
        ("cgan", dict(n_class=10), "did you mean 'n_classes'"),
        ("cgan", dict(label_ids=(3, 4)), "label_ids is for label-map generators"),
    ],
)
def test_config_errors_name_the_option(arch, options, match):
    with pytest.raises(ConfigError, match=match):
        make_config(arch, **options)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_save_load_round_trip(preset, tmp_path):
    model = randomized(get_model(preset))
    back = load(save(model, tmp_path / "m"))
    assert back.config == model.config and type(back) is type(model)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))
    f = engine_feeds(model)
    with torch.no_grad():
        assert torch.equal(back(*back.prepare_inputs(**f)), model(*model.prepare_inputs(**f)))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_official_checkpoint_loads_strictly(preset, tmp_path):
    """A `torch.save(netG.state_dict())` file (as the scripts' generators write it) loads and paints the same."""
    model = randomized(get_model(preset))
    path = tmp_path / "netG.pth"
    torch.save(model.state_dict(), path)
    arch = get_preset(preset).arch
    back = load_official(arch, path, **get_preset(preset).options)
    assert load_official(arch, path, preset=preset).config == back.config
    f = engine_feeds(model)
    with torch.no_grad():
        assert torch.equal(back(*back.prepare_inputs(**f)), model(*model.prepare_inputs(**f)))
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)  # DataParallel-wrapped
    load_official(arch, path, preset=preset)


def _saved(tmp_path, preset, **overrides):
    path = tmp_path / "netG.pth"
    torch.save(get_model(preset, **overrides).state_dict(), path)
    return path


# (preset the file is written from, options changed there, arch loaded as (None: the preset's), message)
WRONG = [
    ("cgan-pytorch-gan", dict(n_classes=12), None, r"label_emb.weight checkpoint \[12, 12\].*n_classes: .* 12 classes"),
    ("cgan-pytorch-gan", dict(latent_dim=64), None, r"model.0.weight checkpoint \[128, 74\].*latent_dim: .* takes 64"),
    ("cgan-pytorch-gan", dict(img_size=28), None, r"channels/img_size: the checkpoint paints 784 values"),
    ("infogan-pytorch-gan", dict(n_classes=12), None, r"l1.0.weight checkpoint \[8192, 76\].*n_classes=10 \+ code_dim"),
    ("infogan-pytorch-gan", dict(img_size=64), None, r"img_size: .* 16\^2 grid, i.e. img_size=64"),
    ("dcgan-pytorch-examples", dict(nz=128), None, r"nz: the checkpoint's z has 128 channels, these options 100"),
    ("dcgan-pytorch-examples", dict(ngf=32), None, r"ngf: .* 256 wide, i.e. ngf=32"),
    ("dcgan-pytorch-examples", dict(nc=1), None, r"nc: the checkpoint paints 1 channels"),
    ("dcgan-pytorch-gan", dict(channels=3), None, r"channels: the checkpoint paints 3 channels"),
    ("dcgan-pytorch-gan", {}, "dcgan", r"arch: .* keys are those of dcgan-pytorch-gan/infogan, not dcgan"),
    ("dcgan-pytorch-examples", {}, "cgan", r"arch: .* keys are those of dcgan, not cgan"),
]


@pytest.mark.parametrize("preset,written,arch,match", WRONG)
def test_wrong_options_name_the_option(tmp_path, preset, written, arch, match):
    path = tmp_path / "netG.pth"
    torch.save(get_model(preset, **written).state_dict(), path)
    options = {} if arch else get_preset(preset).options
    with pytest.raises(CheckpointError, match=f"(?s){match}"):
        load_official(arch or get_preset(preset).arch, path, **options)


def test_missing_key_is_named(tmp_path):
    state = get_model("dcgan-pytorch-examples").state_dict()
    del state["main.4.running_var"]
    torch.save(state, tmp_path / "netG.pth")
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint \(1\): main.4.running_var"):
        load_official("dcgan", tmp_path / "netG.pth", preset="dcgan-pytorch-examples")
