"""SEAN (rtgan/models/sean.py): options, the ACE style map and the Zencoder's pooling, noise, errors, strict and
safe loading, the engine signature.

Parity with ZPdesu/SEAN's generator is tests/official/test_sean_parity.py; the released key manifests are
checked on the meta device in tests/models/test_official_keys.py.
"""

import dataclasses
from pathlib import Path

import pytest
import torch

from rtgan.errors import CheckpointError, ConfigError, InputError
from rtgan.models import get_model, load_official, make_config
from rtgan.models.sean import ACE, SEANConfig, SEANGenerator

TINY = dict(label_nc=5, no_instance=False, crop_size=32, ngf=4, style_length=8)


def tiny(**options) -> SEANGenerator:
    torch.manual_seed(0)
    model = SEANGenerator(SEANConfig(**{**TINY, **options})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


def inputs(model: SEANGenerator, batch: int = 2, seed: int = 0):
    """(semantics with instance edges, a style image, codes, noise maps) at the model's size."""
    g = torch.Generator().manual_seed(seed)
    h, w = model.config.size
    labels = torch.randint(0, model.config.num_classes, (batch, h // 8, w // 8), generator=g)
    labels = labels.repeat_interleave(8, 1).repeat_interleave(8, 2)
    semantics = model.prepare(labels, None if model.config.no_instance else labels)
    image = torch.rand(batch, 3, h, w, generator=g) * 2 - 1
    codes = torch.rand(batch, model.config.semantic_nc, model.config.style_length, generator=g) * 2 - 1
    return semantics, image, codes, model.draw_noise(batch, generator=g)


def test_config_checks_and_official_names():
    c = make_config("sean", label_nc=19, no_instance=True, semantic_nc=19)
    assert (c.semantic_nc, c.size, c.latent_size, c.style_length) == (19, (256, 256), (8, 8), 512)
    assert make_config("sean", crop_size=512, aspect_ratio=2.0, num_upsampling_layers="more").size == (256, 512)
    with pytest.raises(ConfigError, match="semantic_nc=20 disagrees"):
        make_config("sean", label_nc=19, semantic_nc=20)
    with pytest.raises(ConfigError, match=r"at most 19 semantic channels \(the official fc_mu0..fc_mu18\), got 20"):
        make_config("sean", label_nc=19, no_instance=False)
    with pytest.raises(ConfigError, match="'most' builds an up_4 the official forward never runs"):
        make_config("sean", num_upsampling_layers="most")
    with pytest.raises(ConfigError, match="norm_G 'spectralspadegroup3x3' is not"):
        make_config("sean", norm_G="spectralspadegroup3x3")
    with pytest.raises(ConfigError, match="style_input must be 'codes' or 'image'"):
        make_config("sean", style_input="both")
    with pytest.raises(ConfigError, match="did you mean 'style_length'"):
        make_config("sean", style_lenght=64)


def test_noise_layout_is_the_official_call_order():
    with torch.device("meta"):
        model = get_model("sean-celebahq")
    layout = model.config.noise_layout
    assert len(layout) == 18 and layout[0] == ("head_0.ace_0", 8, 8) and layout[-1] == ("up_3.ace_1", 256, 256)
    names = [n for n, _, _ in layout]
    assert names[6:9] == ["up_0.ace_s", "up_0.ace_0", "up_0.ace_1"]  # the shortcut runs first
    assert {n for n, m in model.named_modules() if isinstance(m, ACE)} == set(names)
    assert dict((n, (h, w)) for n, h, w in layout)["up_0.ace_s"] == (32, 32)
    more = SEANConfig(crop_size=128, aspect_ratio=2.0, num_upsampling_layers="more", ngf=4)
    assert [(h, w) for n, h, w in more.noise_layout if n.endswith("ace_0")][:3] == [(1, 2), (2, 4), (4, 8)]


def test_noise_none_draws_as_the_official_layers():
    model = tiny()
    semantics, _, codes, _ = inputs(model)
    with torch.no_grad():
        torch.manual_seed(3)
        drawn = model(semantics, style=codes)
        torch.manual_seed(3)
        maps = {}
        for name, h, w in model.config.noise_layout:  # the official draw: randn(B, W, H, 1), transposed
            maps[name] = torch.randn(2, w, h, 1).transpose(1, 3)
        assert torch.equal(model(semantics, style=codes, noise=maps), drawn)
        assert not torch.equal(model(semantics, style=codes), drawn)  # a fresh draw per call
        zero = {k: torch.zeros(1, *v.shape[1:]) for k, v in maps.items()}  # one map for the batch
        assert model(semantics, style=codes, noise=zero).shape == (2, 3, 32, 32)


def reference_style_map(ace: ACE, seg: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The official loop, written plainly: channel after channel, each region's pixels get its mu."""
    b, c, h, w = seg.shape
    out = torch.zeros(b, style.shape[2], h, w)
    for i in range(b):
        for j in range(c):
            mask = seg[i, j] != 0
            if mask.any():
                out[i][:, mask] = torch.relu(getattr(ace, f"fc_mu{j}")(style[i, j]))[:, None]
    return out


def test_style_map_is_the_official_scatter_and_the_edge_style_wins():
    model = tiny()
    semantics, _, codes, _ = inputs(model)
    ace = model.up_1.ace_0
    with torch.no_grad():
        got = ace.style_map(semantics, codes)
        assert torch.allclose(got, reference_style_map(ace, semantics, codes), atol=1e-6)
        edge = semantics[:, -1] != 0
        assert edge.any() and (~edge).any()
        mu_edge = torch.relu(getattr(ace, f"fc_mu{model.config.semantic_nc - 1}")(codes[:, -1]))
        assert torch.equal(got[0][:, edge[0]], mu_edge[0][:, None].expand(-1, int(edge[0].sum())))
        blank = torch.zeros_like(semantics)  # a pixel of no channel (a don't-care class without a channel) is 0
        assert torch.equal(ace.style_map(blank, codes), torch.zeros_like(got))


def test_zencoder_pools_each_region_and_leaves_absent_ones_zero():
    model = tiny()
    semantics, image, _, _ = inputs(model)
    semantics[:, 2] = 0  # class 2 absent
    with torch.no_grad():
        got = model.encode(image, semantics)
        feature = model.Zencoder.model(image)
        seg = torch.nn.functional.interpolate(semantics, size=feature.shape[2:], mode="nearest")
    assert got.shape == (2, model.config.semantic_nc, 8) and feature.shape[2:] == (16, 16)
    for i in range(2):
        for j in range(model.config.semantic_nc):
            mask = seg[i, j] != 0
            want = feature[i][:, mask].mean(1) if mask.any() else torch.zeros(8)
            assert torch.allclose(got[i, j], want, atol=1e-6), (i, j)
    assert torch.equal(got[:, 2], torch.zeros(2, 8))


def test_forward_is_deterministic_given_its_inputs_and_each_input_matters():
    model = tiny()
    semantics, image, codes, noise = inputs(model)
    with torch.no_grad():
        out = model(semantics, style=codes, noise=noise)
        assert torch.equal(model(semantics, style=codes, noise=noise), out)
        assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
        assert not torch.equal(model(semantics, style=codes.flip(0), noise=noise), out)
        assert not torch.equal(model(semantics, style=codes, noise={k: v.flip(0) for k, v in noise.items()}), out)
        small = model(semantics[:, :, ::2, ::2], style=codes, noise=noise)  # the official: any label size
        assert small.shape == out.shape


def test_input_errors_name_the_problem():
    model = tiny()
    semantics, image, codes, noise = inputs(model)
    cases = [
        (lambda: model(semantics, style=codes[:, :3]), r"style must be torch.float32 codes of shape \(2, 6, 8\)"),
        (lambda: model(semantics, style=codes.double()), "style must be torch.float32 codes"),
        (lambda: model(semantics, style=codes * float("nan")), "style contains NaN"),
        (lambda: model(semantics, style=codes, noise={"head_0.ace_0": noise["head_0.ace_0"]}), "every ACE layer"),
        (lambda: model(semantics, style=codes, noise=noise | {"up_3.ace_1": torch.zeros(2, 1, 8, 8)}),
         r"noise\['up_3.ace_1'\] must be a float tensor \(2 or 1, 1, 32, 32\)"),
        (lambda: model(semantics[:, :5], style=codes), r"semantics must have shape \(B, 6, H, W\)"),
        (lambda: model.encode(image[:1], semantics), "style_image has batch 1, semantics 2"),
        (lambda: model.prepare_inputs(torch.zeros(2, 32, 32, dtype=torch.int64), torch.zeros(2, 32, 32,
         dtype=torch.int64), codes, torch.zeros(2, 7)), r"noise must be a float tensor \(B, 4098\)"),
    ]  # fmt: skip
    for call, match in cases:
        with pytest.raises(InputError, match=match):
            call()


def test_signature_and_engine_inputs():
    model = tiny()
    sig = model.signature()
    assert [(i.name, i.kind) for i in sig.inputs] == [
        ("labels", "labels"),
        ("instance", "instance"),
        ("style", "styles"),
        ("noise", "latent"),
    ]
    assert sig.input("style").shape(32, 32) == ["batch", 6, 8] and sig.input("noise").size == 4098
    assert (sig.spatial, sig.size) == ("fixed", (32, 32))
    assert sig.describe() == "labels (5) + instance + style (6×8) + noise (4098) → RGB 32×32"
    labels = torch.randint(0, 5, (2, 32, 32))
    _, _, codes, _ = inputs(model)
    flat = torch.randn(2, 4098)
    semantics, style, maps = model.prepare_inputs(labels, labels, codes, flat)
    assert torch.equal(style, codes) and torch.equal(maps["head_0.ace_0"], flat[:, :1].reshape(2, 1, 1, 1))
    assert list(maps) == [n for n, _, _ in model.config.noise_layout]
    # style_input='image': the Zencoder runs in the graph on a uint8 image, as the test mode's loader
    image_model = tiny(style_input="image")
    assert image_model.signature().input("style").kind == "image"
    rgb = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    _, style, _ = image_model.prepare_inputs(labels, labels, rgb, flat)
    with torch.no_grad():
        want = image_model.encode(rgb.permute(0, 3, 1, 2).float() / 127.5 - 1, semantics)
    assert torch.allclose(style, want, atol=1e-6)
    with pytest.raises(InputError, match=r"style must be a uint8 RGB image tensor \(B, H, W, 3\)"):
        image_model.prepare_inputs(labels, labels, codes, flat)


def test_official_checkpoints_load_strictly_and_safely(tmp_path):
    model = tiny()
    semantics, _, codes, noise = inputs(model)
    with torch.no_grad():
        ref = model(semantics, style=codes, noise=noise)
    for name, content in {
        "latest_net_G.pth": model.state_dict(),
        "dataparallel.pth": {f"module.{k}": v for k, v in model.state_dict().items()},
    }.items():
        torch.save(content, tmp_path / name)
        loaded = load_official("sean", tmp_path / name, **TINY)
        with torch.no_grad():
            assert torch.equal(loaded(semantics, style=codes, noise=noise), ref), name
        assert not loaded.training
    torch.save({**model.state_dict(), "opt": Path("x")}, tmp_path / "code.pth")  # a pickled object
    with pytest.raises(CheckpointError, match="refused to load: the file holds pickled objects other than tensors"):
        load_official("sean", tmp_path / "code.pth", **TINY)
    torch.save({"fc.weight": [1, 2]}, tmp_path / "lists.pth")
    with pytest.raises(CheckpointError, match="expected a state dict of tensors, but entry 'fc.weight' holds a list"):
        load_official("sean", tmp_path / "lists.pth", **TINY)


def test_checkpoint_mismatches_are_explained(tmp_path):
    model = tiny()
    state = model.state_dict()
    c = model.config

    def load(sd, config=c):
        torch.save(sd, tmp_path / "G.pth")
        return load_official("sean", tmp_path / "G.pth", **dataclasses.asdict(config))

    broken = dict(state)
    broken.pop("up_2.ace_0.fc_mu4.weight")
    with pytest.raises(CheckpointError, match="(?s)missing.*up_2.ace_0.fc_mu4.weight"):
        load(broken)
    with pytest.raises(CheckpointError, match="wrong dtype: fc.bias checkpoint torch.int64"):
        load(state | {"fc.bias": state["fc.bias"].long()})
    with pytest.raises(CheckpointError, match="conv_img.weight holds NaN"):
        load(state | {"conv_img.weight": torch.full_like(state["conv_img.weight"], float("nan"))})
    hints = [
        (c.replace(ngf=8), "ngf: the checkpoint's head is 64 wide, i.e. ngf=4"),
        (c.replace(style_length=16), "style_length: the checkpoint's codes are 8 wide"),
        (c.replace(no_instance=True), "label count: the checkpoint's fc takes 6 channels, these options give 5"),
        (c.replace(norm_G="spectralspadeinstance3x3"), r"SPADE branches have running statistics \(spadesyncbatch\)"),
        (c.replace(norm_G="spadesyncbatch3x3"), "the checkpoint has spectral norm"),
        (c.replace(norm_G="spectralspadesyncbatch5x5"), "norm_G kernel size: the checkpoint's SPADE convs are 3x3"),
    ]
    for config, match in hints:
        with pytest.raises(CheckpointError, match=f"(?s)Probably differing.*{match}"):
            load(state, config)
    spade = {k.replace("ace_", "norm_"): v for k, v in state.items() if not k.startswith("Zencoder.")}
    with pytest.raises(CheckpointError, match="not a SEAN generator .* use arch='spade'"):
        load(spade)


def test_save_load_round_trip(tmp_path):
    from rtgan.models import load, save

    model = tiny(style_input="image")
    back = load(save(model, tmp_path / "m"))
    assert back.config == model.config and type(back) is SEANGenerator
    semantics, _, codes, noise = inputs(model)
    with torch.no_grad():
        assert torch.equal(back(semantics, style=codes, noise=noise), model(semantics, style=codes, noise=noise))


def test_style_encoder_inputs_of_codes_engines():
    """A codes model's style encoder (exported beside its engine): uint8 image + label ids -> encode(image,
    prepare(...)), the image normalized as the style_input='image' graph normalizes it."""
    model = tiny()
    assert model.style_encoder_inputs() == ("style", "labels", "instance")
    assert tiny(no_instance=True).style_encoder_inputs() == ("style", "labels")
    assert tiny(style_input="image").style_encoder_inputs() is None
    labels = torch.randint(0, 5, (2, 32, 32))
    rgb = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        codes = model.encode_inputs(rgb, labels, labels)
        want = model.encode(rgb.permute(0, 3, 1, 2).float() / 127.5 - 1, model.prepare(labels, labels))
    assert codes.shape == (2, 6, 8) and torch.allclose(codes, want, atol=1e-6)
