"""OASIS (rtgan/models/oasis.py): official key layout, noise and labels, norms, errors, strict and safe loading.

Parity with boschresearch/OASIS's models/generator.py is tests/official/test_oasis_parity.py.
"""

import copy
import functools
import json
from pathlib import Path

import pytest
import torch

from rtgan.errors import CheckpointError, ConfigError, InputError
from rtgan.models import get_model, get_preset, load_official
from rtgan.models.oasis import OASISConfig, OASISGenerator, dataset_labels

# tests/data/official-keys (the copy CI reads), else ../shared/reference/official-keys
_COPIES = (
    Path(__file__).parents[1] / "data" / "official-keys",
    Path(__file__).parents[3] / "shared" / "reference" / "official-keys",
)
# Cityscapes' label channels, slim and small: 32x64 (latent grid 1x2), 8 noise channels
TINY = dict(label_nc=34, crop_size=64, aspect_ratio=2.0, channels_G=2, z_dim=8)


def manifest(mode: str) -> dict:
    name = f"oasis_{mode}.json"
    path = next((d / name for d in _COPIES if (d / name).is_file()), None)
    if path is None:
        pytest.skip(f"{name} not found in {', '.join(map(str, _COPIES))}")
    return json.loads(path.read_text())


def tiny(**options) -> OASISGenerator:
    """Random weights and running statistics: a zero or a unit variance would hide a skipped tensor."""
    return copy.deepcopy(_tiny(tuple(sorted(options.items()))))


@functools.cache
@torch.no_grad()
def _tiny(options: tuple) -> OASISGenerator:
    options = dict(options)
    torch.manual_seed(0)
    model = OASISGenerator(OASISConfig(**{**TINY, **options})).eval()
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.normal_(0, 0.5)
        elif name.endswith("running_var"):
            b.uniform_(0.3, 2)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.normal_(0, 0.1)
    pre = []
    hook = model.conv_img.register_forward_hook(lambda m, i, out: pre.append(out.std()))
    model(model.prepare(ids(n=model.config.semantic_nc)))
    hook.remove()
    model.conv_img.weight.mul_(0.6 / pre[0])  # an unsaturated image: tanh's pre-activation std 0.6
    return model


def ids(batch=2, h=32, w=64, n=35, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (batch, h // 8, w // 8), generator=g).repeat_interleave(8, 1).repeat_interleave(8, 2)


def z(batch=2, dim=8, seed=2) -> torch.Tensor:
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mode", ["ade20k", "cityscapes", "coco"])
def test_presets_are_the_dataset_modes_and_match_the_manifests(mode):
    ref = manifest(mode)
    config = get_preset(f"oasis-{mode}").config()
    assert OASISConfig.from_options(**ref["options"]) == config  # semantic_nc checked, not stored
    with torch.device("meta"):
        model = get_model(f"oasis-{mode}")
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == ref["netG"]
    assert list(model.state_dict()) == list(ref["netG"])  # the official registration order, too
    assert sum(p.numel() for p in model.parameters()) == ref["netG_params"]
    assert model.signature().size == (round(config.crop_size / config.aspect_ratio), config.crop_size)


def test_config_checks_and_official_names():
    assert OASISConfig().semantic_nc == 183 and OASISConfig(label_nc=34).num_classes == 35
    assert OASISConfig(label_nc=34, crop_size=512, aspect_ratio=2.0).latent_size == (8, 16)
    with pytest.raises(ConfigError, match="semantic_nc=150 disagrees"):
        OASISConfig.from_options(label_nc=150, semantic_nc=150)
    with pytest.raises(ConfigError, match="num_res_blocks must be 6: the official generator always builds 6"):
        OASISConfig(num_res_blocks=5)
    with pytest.raises(ConfigError, match=r"param_free_norm must be one of \('syncbatch', 'batch', 'instance'\)"):
        OASISConfig(param_free_norm="group")
    with pytest.raises(ConfigError, match="did you mean 'no_3dnoise'"):
        OASISConfig.from_options(no_3d_noise=True)
    with pytest.raises(ConfigError, match="spade_ks must be odd"):
        OASISConfig(spade_ks=4)


def test_spectral_norm_and_first_norm_where_the_official_code_puts_them():
    model = tiny()
    keys = model.state_dict().keys()
    assert {k.rsplit(".", 2)[-2] for k in keys if k.endswith("weight_orig")} == {"conv_0", "conv_1", "conv_s"}
    assert "fc.weight" in keys and "conv_img.weight" in keys and not any("param_free_norm" in k for k in keys)
    assert all(".first_norm." in k for k in keys if "running" in k)
    assert not any(k.endswith("weight_orig") for k in tiny(no_spectral_norm=True).state_dict())
    assert not any("running" in k for k in tiny(param_free_norm="instance").state_dict())


def test_noise_comes_before_the_labels_in_fc_and_every_spade():
    """Zeroing the first z_dim input channels of fc and of every mlp_shared.0 removes z's effect; zeroing
    the label channels instead leaves an image that still depends on z."""
    model, d = tiny(), TINY["z_dim"]
    first = [model.fc] + [m.mlp_shared[0] for m in model.modules() if hasattr(m, "mlp_shared")]
    assert all(conv.in_channels == d + 35 for conv in first)
    sem = model.prepare(ids())
    with torch.no_grad():
        for conv in first:
            conv.weight[:, :d] = 0
        assert torch.equal(model(sem, z=z(seed=3)), model(sem, z=z(seed=4)))
        model = tiny()
        first = [model.fc] + [m.mlp_shared[0] for m in model.modules() if hasattr(m, "mlp_shared")]
        for conv in first:
            conv.weight[:, d:] = 0
        assert not torch.equal(model(sem, z=z(seed=3)), model(sem, z=z(seed=4)))
        assert torch.equal(model(sem, z=z(seed=3)), model(model.prepare(ids(seed=9)), z=z(seed=3)))


def test_z_noise_map_and_the_official_draw():
    model = tiny()
    sem = model.prepare(ids())
    with torch.no_grad():
        torch.manual_seed(7)
        drawn = model(sem)
        torch.manual_seed(7)
        assert torch.equal(drawn, model(sem, z=torch.randn(2, 8)))  # the official draw: randn(B, z_dim)
        assert torch.equal(model(sem, z=z()), model(sem, z=z()))  # given z: deterministic
        broadcast = z()[:, :, None, None].expand(-1, -1, 32, 64)
        assert torch.equal(model(sem, noise=broadcast), model(sem, z=z()))
        pixels = torch.randn(2, 8, 32, 64, generator=torch.Generator().manual_seed(5))
        assert (model(sem, noise=pixels) - model(sem, z=z())).abs().max() > 1e-3
        assert model(sem[:1], z=z()[:1]).shape == (1, 3, 32, 64)
        assert model(model.prepare(ids(h=64, w=64)), z=z()).shape == (2, 3, 64, 64)  # follows the label map
        one = model(sem[1:], z=z()[1:])
        assert (one - model(sem, z=z())[1:]).abs().max() < 1e-5  # eval: running statistics, not the batch's
    plain = tiny(no_3dnoise=True)
    assert plain.fc.in_channels == 35 and [i.name for i in plain.signature().inputs] == ["labels"]
    with torch.no_grad():
        assert plain(sem).shape == (2, 3, 32, 64)


def test_stored_spectral_vectors_and_running_statistics_are_used():
    model = tiny()
    sem, code = model.prepare(ids()), z()
    u = model.body[2].conv_s.weight_u.clone()
    with torch.no_grad():
        ref = model(sem, z=code)
        assert torch.equal(model.body[2].conv_s.weight_u, u)  # no power iteration at eval
        model.body[2].conv_s.weight_u.copy_(torch.nn.functional.normalize(torch.randn_like(u), dim=0))
        assert (model(sem, z=code) - ref).abs().max() > 1e-4  # sigma comes from the stored u, v
        model = tiny()
        model.body[3].norm_0.first_norm.running_var.mul_(100)  # eval: the running statistics normalise
        assert (model(sem, z=code) - ref).abs().max() > 1e-4


def test_dataset_labels_follow_the_official_dataloaders():
    raw = torch.tensor([[[0, 1, 150, 181, 255]]], dtype=torch.uint8)
    # CocoStuffDataset.__getitem__: label * 255 + 1 on to_tensor's [0, 1] floats, then 256 -> 0
    official = raw.float() / 255 * 255 + 1
    official[official == 256] = 0
    assert torch.equal(dataset_labels(raw, "coco")[:, 0], official.round().long())
    for mode in ("ade20k", "cityscapes"):  # the annotation ids as they are (ADE20K: 0 = unknown)
        assert torch.equal(dataset_labels(raw[..., :3], mode)[:, 0], raw[..., :3].long())
    with pytest.raises(InputError, match=r"dataset_mode must be one of \('ade20k', 'cityscapes', 'coco'\)"):
        dataset_labels(raw, "ade")
    model = tiny(label_nc=182)
    assert model.prepare(dataset_labels(raw, "coco")).argmax(1).tolist() == [[[1, 2, 151, 182, 0]]]


def test_input_errors_name_the_problem():
    model = tiny()
    sem = model.prepare(ids())
    cases = [
        (lambda: model(sem, z=torch.zeros(2, 7)), r"z must be a float tensor \(2, 8\), got \(2, 7\)"),
        (lambda: model(sem, z=torch.zeros(2, 8, dtype=torch.int64)), "z must be a float tensor"),
        (lambda: model(sem, z=torch.full((2, 8), float("nan"))), "z contains NaN"),
        (lambda: model(sem, noise=torch.zeros(2, 8, 16, 32)), r"noise must be a torch.float32 tensor \(2, 8, 32, 64\)"),
        (lambda: model(sem, z=z(), noise=torch.zeros(2, 8, 32, 64)), "not both"),
        (lambda: tiny(no_3dnoise=True)(sem, z=z()), "no 3D noise"),
        (lambda: model(sem[:, :34], z=z()), r"shape \(B, 35, H, W\)"),
        (lambda: model(model.prepare(ids(h=40, w=64)), z=z()), "multiples of 32"),
        (lambda: model.prepare(ids(n=36) + 1), "label id 3[56] is out of range"),
        (lambda: model.prepare(ids().float()), "must hold integer ids"),
        (lambda: tiny(param_free_norm="instance")(model.prepare(ids(h=32, w=32)), z=z()), "instance norm"),
    ]
    for call, match in cases:
        with pytest.raises(InputError, match=match):
            call()


def test_signature_and_engine_inputs():
    model = tiny()
    sig = model.signature()
    assert [(i.name, i.kind, i.classes or i.size) for i in sig.inputs] == [("labels", "labels", 35), ("z", "latent", 8)]
    assert sig.spatial == "multiple" and sig.multiple == 32 and sig.size == (32, 64)
    labels, code = ids().int(), z()
    sem, z_ = model.prepare_inputs(labels=labels, z=code)
    assert z_ is code and torch.equal(sem, model.prepare(labels))


def test_official_checkpoints_load_strictly_and_safely(tmp_path):
    model = tiny()
    sem, code = model.prepare(ids()), z()
    with torch.no_grad():
        ref = model(sem, z=code)
    torch.save(model.state_dict(), tmp_path / "best_EMA.pth")
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "dp_EMA.pth")
    for name in ("best_EMA.pth", "dp_EMA.pth"):
        loaded = load_official("oasis", tmp_path / name, **TINY)
        assert not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(sem, z=code), ref), name
    preset = load_official("oasis", tmp_path / "best_EMA.pth", preset="oasis-cityscapes", **TINY)
    assert preset.config == loaded.config
    torch.save({"state": model.state_dict(), "opt": Path("x")}, tmp_path / "code.pth")  # a pickled object
    with pytest.raises(CheckpointError, match="refused to load: the file holds pickled objects other than tensors"):
        load_official("oasis", tmp_path / "code.pth", **TINY)


def test_checkpoint_mismatches_are_explained(tmp_path):
    state = tiny().state_dict()
    path = tmp_path / "best_EMA.pth"
    torch.save(state, path)
    cases = [
        (dict(label_nc=150), "takes 43 channels, these options give 159.*ADE20K 151"),
        (dict(z_dim=64), "takes 43 channels, these options give 99"),
        (dict(no_3dnoise=True), "takes 43 channels, these options give 35"),
        (dict(channels_G=4), "channels_G: the checkpoint's fc is 32 wide, i.e. channels_G=2"),
        (dict(spade_ks=5), "spade_ks: the checkpoint's SPADE convs are 3x3"),
        (dict(no_spectral_norm=True), "no_spectral_norm=False: the checkpoint has spectral norm"),
        (dict(param_free_norm="instance"), r"param_free_norm: the checkpoint has running statistics \(syncbatch"),
    ]
    for change, match in cases:
        with pytest.raises(CheckpointError, match=f"(?s)Probably differing.*{match}"):
            load_official("oasis", path, **{**TINY, **change})
    spade = {k.replace("first_norm", "param_free_norm"): v for k, v in state.items()}
    torch.save(spade, tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match="a SPADE checkpoint"):
        load_official("oasis", tmp_path / "latest_net_G.pth", **TINY)
    torch.save({"body_down.0.conv1.weight_orig": torch.zeros(1), "layer_up_last.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="an OASIS discriminator"):
        load_official("oasis", path, **TINY)


def test_save_load_round_trip(tmp_path):
    from rtgan.models import load, save

    model = tiny()
    back = load(save(model, tmp_path / "m"))
    assert back.config == model.config and type(back) is OASISGenerator
    sem = model.prepare(ids())
    with torch.no_grad():
        assert torch.equal(back(sem, z=z()), model(sem, z=z()))


def test_noise_regions_signature_and_the_per_pixel_noise_map():
    """noise_regions=M (rtgan's): labels, z, region ids and M - 1 latents; the noise map is z where the region is 0
    and z_regions[:, r - 1] where it is r, fed to the forward's noise= path."""
    assert OASISConfig().noise_regions == 1 and [i.name for i in tiny().signature().inputs] == ["labels", "z"]
    with pytest.raises(ConfigError, match="noise_regions must be at least 1"):
        OASISConfig(noise_regions=0)
    with pytest.raises(ConfigError, match="no_3dnoise=True removes"):
        OASISConfig(noise_regions=2, no_3dnoise=True)
    model = tiny(noise_regions=3)
    sig = model.signature()
    assert [(i.name, i.kind, i.classes, i.size) for i in sig.inputs] == [
        ("labels", "labels", 35, None),
        ("z", "latent", None, 8),
        ("noise_regions", "regions", 3, None),
        ("z_regions", "latents", 2, 8),
    ]
    labels, code, others = ids(), z(), torch.randn(2, 2, 8)
    regions = torch.zeros(2, 32, 64, dtype=torch.int32)
    regions[:, 8:16, 16:48], regions[1, 20:, :8] = 1, 2
    sem, none, noise = model.prepare_inputs(labels, code, regions, others)
    want = code[:, :, None, None].expand(2, 8, 32, 64).clone()
    want[:, :, 8:16, 16:48] = others[:, 0, :, None, None]
    want[1, :, 20:, :8] = others[1, 1, :, None, None]
    assert none is None and torch.equal(noise, want) and torch.equal(sem, model.prepare(labels))
    with torch.no_grad():
        flat = model(*model.prepare_inputs(labels, code, torch.zeros_like(regions), others))
        assert torch.equal(flat, model(model.prepare(labels), z=code))  # all region 0: the broadcast z
    with pytest.raises(InputError, match=r"noise_regions ids must be in 0..2"):
        model.prepare_inputs(labels, code, regions + 1, others)
    with pytest.raises(InputError, match=r"z_regions must be a float tensor \(2, 2, 8\)"):
        model.prepare_inputs(labels, code, regions, others[:, :1])
