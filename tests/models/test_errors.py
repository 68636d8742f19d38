"""Bad input, wrong options and bad files raise typed errors that name the problem."""

import collections
import warnings

import pytest
import torch

from rtgan import CheckpointError, ConfigError, InputError
from rtgan.models import get_model, get_preset, load_official, make_config

from helpers import VARIANTS, inputs, make


@pytest.fixture(scope="module")
def spade():
    return make("spade-normal-syncbatch3")


def test_label_range_dtype_and_shape(spade):
    model, (h, w) = spade
    n = model.config.num_classes
    inst = torch.zeros(1, h, w, dtype=torch.long)
    with pytest.raises(InputError, match=f"label id {n} is out of range.*0..{n - 1}"):
        model.prepare(torch.full((1, h, w), n), inst)
    with pytest.raises(InputError, match="label id -1"):
        model.prepare(torch.full((1, h, w), -1), inst)
    with pytest.raises(InputError, match="integer ids.*float32"):
        model.prepare(torch.zeros(1, h, w), inst)
    with pytest.raises(InputError, match=r"shape \(B, H, W\) or \(B, 1, H, W\)"):
        model.prepare(torch.zeros(1, 3, h, w, dtype=torch.long), inst)
    with pytest.raises(InputError, match="needs an instance map"):
        model.prepare(torch.zeros(1, h, w, dtype=torch.long))
    with pytest.raises(InputError, match="does not match labels"):
        model.prepare(torch.zeros(1, h, w, dtype=torch.long), torch.zeros(1, h, w + 1, dtype=torch.long))
    with pytest.raises(InputError, match="instance.*integer"):
        model.prepare(torch.zeros(1, h, w, dtype=torch.long), torch.zeros(1, h, w))


def test_semantics_checks(spade):
    model, (h, w) = spade
    c = model.config.semantic_nc
    with pytest.raises(InputError, match=rf"\(B, {c}, H, W\).*\(1, {c + 1}, {h}, {w}\)"):
        model(torch.zeros(1, c + 1, h, w))
    with pytest.raises(InputError, match="float tensor"):
        model(torch.zeros(1, c, h, w, dtype=torch.long))
    bad = torch.zeros(1, c, h, w)
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        model(bad)
    with pytest.raises(InputError, match="multiples of 32"):
        model(torch.zeros(1, c, h + 8, w))
    with pytest.raises(InputError, match="no VAE"):
        model(torch.zeros(1, c, h, w), z=torch.zeros(1, 256))


@pytest.mark.parametrize(
    "variant,size,match",
    [
        ("asap-tile16", (40, 64), "multiples of 16"),
        ("asap-tile32-tent-reflect", (32, 64), "at least 2 tiles"),
        ("p2phd-local", (36, 64), "multiples of 8"),
        ("p2phd-global", (4, 8), "too small"),
        ("spade-vae", (64, 128), "latent grid is fixed at 4x8"),
        ("spade-normal-instance3", (32, 32), "instance norm needs more than one pixel"),
    ],
)
def test_sizes_the_architecture_cannot_take(variant, size, match):
    model, _ = make(variant)
    sem = torch.zeros(1, model.config.semantic_nc, *size)
    with pytest.raises(InputError, match=match):
        model(sem)


def test_vae_z_and_encoder_checks():
    model, size = make("spade-vae")
    _, _, sem = inputs(model, size, batch=1)
    with pytest.raises(InputError, match=r"z must be .*\(1, 256\)"):
        model(sem, z=torch.zeros(1, 8))
    with pytest.raises(InputError, match="image must have shape"):
        model.encode(torch.zeros(1, 1, 64, 64))
    plain, _ = make("p2phd-global")
    with pytest.raises(InputError, match="no latent"):
        plain(torch.zeros(1, plain.config.semantic_nc, 32, 32), z=torch.zeros(1, 4))


def test_config_errors():
    with pytest.raises(ConfigError, match="'lable_nc' \\(did you mean 'label_nc'\\?\\)"):
        make_config("spade", lable_nc=3)
    with pytest.raises(ConfigError, match="norm_G 'spadefancy3x3'"):
        make_config("spade", norm_G="spadefancy3x3")
    with pytest.raises(ConfigError, match="semantic_nc=40 disagrees.*semantic_nc=36"):
        make_config("spade", label_nc=35, semantic_nc=40)
    with pytest.raises(ConfigError, match="unknown architecture 'spad' \\(did you mean 'spade'\\?\\)"):
        make_config("spad")
    with pytest.raises(ConfigError, match="power of two"):
        make_config("asapnet", crop_size=768)
    with pytest.raises(ConfigError, match="no_instance_dist=False"):
        make_config("asapnet", no_instance_dist=False)
    with pytest.raises(ConfigError, match="no_one_hot=True is not supported"):
        make_config("asapnet", no_one_hot=True)
    with pytest.raises(ConfigError, match="did you mean 'spade-coco'"):
        get_preset("spade-cocoo")
    for bad in (dict(noise_decoder=True), dict(noise_decoder=True, noise_nc=2, netG="local")):
        with pytest.raises(ConfigError, match="noise_decoder needs noise_nc > 0 and netG='global'"):
            make_config("pix2pixhd", **bad)
    with pytest.raises(ConfigError, match="upsample must be one of 'transpose', 'nearest', 'bilinear', got 'cubic'"):
        make_config("pix2pixhd", upsample="cubic")


def _save_official(model, path):
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}, path)
    return path


def _load_error(arch, path, **options) -> str:
    with pytest.raises(CheckpointError) as e:
        load_official(arch, path, **options)
    return str(e.value)


def test_wrong_option_hints(tmp_path):
    tiny = dict(ngf=4, spade_hidden=8)
    ckpt = _save_official(get_model("spade-cityscapes", **tiny, num_upsampling_layers="most"), tmp_path / "most.pth")
    msg = _load_error("spade", ckpt, preset="spade-cityscapes", **tiny)
    assert "missing" not in msg and "unexpected in the checkpoint" in msg and "up_4" in msg
    assert "num_upsampling_layers" in msg

    msg = _load_error("spade", ckpt, preset="spade-cityscapes", **tiny, num_upsampling_layers="most", label_nc=34)
    assert "label count" in msg and "takes 36 channels" in msg and "give 35" in msg

    msg = _load_error(
        "spade", ckpt, preset="spade-cityscapes", **tiny, num_upsampling_layers="most", norm_G="spadesyncbatch3x3"
    )
    assert "spectral" in msg

    msg = _load_error("spade", ckpt, preset="spade-cityscapes", ngf=8, spade_hidden=8, num_upsampling_layers="most")
    assert "ngf=4" in msg

    asap = dict(lr_width=8, lr_max_width=16, lr_depth=2, hr_width=8)
    ckpt = _save_official(get_model("asapnet-facades512", **asap), tmp_path / "facades.pth")
    msg = _load_error("asapnet", ckpt, preset="asapnet-facades512", **asap, reflection_pad=False)
    assert "reflection_pad=True" in msg
    msg = _load_error("asapnet", ckpt, preset="asapnet-facades512", **{**asap, "hr_width": 16})
    assert "MLP size" in msg and "hr_width" in msg
    msg = _load_error("asapnet", ckpt, preset="asapnet-facades512", **{**asap, "lr_depth": 3})
    assert "lr_depth: the checkpoint has 2" in msg

    p2p = dict(ngf=4, n_blocks_global=2, n_blocks_local=1)
    ckpt = _save_official(get_model("pix2pixhd-label2city-1024p", **p2p), tmp_path / "local.pth")
    msg = _load_error("pix2pixhd", ckpt, preset="pix2pixhd-label2city-512p", **p2p)
    assert "netG=local" in msg
    msg = _load_error("pix2pixhd", ckpt, preset="pix2pixhd-label2city-1024p", **p2p, no_instance=True)
    assert "takes 36 channels" in msg

    vae = _save_official(get_model("spade-coco-vae", ngf=4, spade_hidden=8), tmp_path / "vae.pth")
    msg = _load_error("spade", vae, preset="spade-coco", ngf=4, spade_hidden=8)
    assert "use_vae" in msg


def test_normal_more_ambiguity_warns(tmp_path):
    ckpt = _save_official(get_model("spade-cityscapes", ngf=4, spade_hidden=8), tmp_path / "g.pth")
    with pytest.warns(UserWarning, match="'normal' and 'more'"):
        load_official("spade", ckpt, label_nc=35, crop_size=512, aspect_ratio=2.0, ngf=4, spade_hidden=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_official("spade", ckpt, preset="spade-cityscapes", ngf=4, spade_hidden=8)


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_unsafe_and_corrupted_files(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    torch.save({"x": _Evil()}, evil)
    msg = _load_error("pix2pixhd", evil)
    assert "refused" in msg and "weights-only" in msg
    assert "pickled code ran" not in capsys.readouterr().out

    good = _save_official(get_model("pix2pixhd-label2city-512p", ngf=4, n_blocks_global=1), tmp_path / "g.pth")
    truncated = tmp_path / "t.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "truncated or corrupted" in _load_error("pix2pixhd", truncated)
    assert "not found" in _load_error("pix2pixhd", tmp_path / "nope.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    assert "state dict of tensors" in _load_error("pix2pixhd", tmp_path / "list.pth")


def test_module_prefix_is_stripped(tmp_path):
    model = get_model("pix2pixhd-label2city-512p", ngf=4, n_blocks_global=1)
    torch.save(collections.OrderedDict((f"module.{k}", v) for k, v in model.state_dict().items()), tmp_path / "dp.pth")
    load_official("pix2pixhd", tmp_path / "dp.pth", preset="pix2pixhd-label2city-512p", ngf=4, n_blocks_global=1)


def test_variants_cover_every_architecture():
    assert {a for a, _, _ in VARIANTS.values()} == {"spade", "asapnet", "pix2pixhd"}


def test_option_types_are_checked():
    with pytest.raises(ConfigError, match="use_vae must be bool, got 'True' \\(str\\)"):
        make_config("spade", use_vae="True")
    with pytest.raises(ConfigError, match="ngf must be int"):
        make_config("spade", ngf=4.5)
    make_config("asapnet", hr_coor=None, aspect_ratio=2)  # None where allowed; an int where a float is


def test_dtype_mismatch_and_half_models():
    model, size = make("p2phd-global")
    labels, instance, sem = inputs(model, size)
    with pytest.raises(InputError, match="float64 on cpu but the model is torch.float32"):
        model(sem.double())
    model.double()
    sem64 = model.prepare(labels, instance)  # prepare follows the model's dtype
    assert sem64.dtype == torch.float64 and model(sem64).dtype == torch.float64
