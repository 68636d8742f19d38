"""StyleGAN (rtgan/models/stylegan.py): official key layout, the forward's paths, errors, strict and safe loading.

Parity with rosinality/style-based-gan-pytorch's model.py is tests/official/test_stylegan_parity.py.
"""

import dataclasses
import json
import math
import pickle
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rtgan.errors import CheckpointError, ConfigError, InputError
from rtgan.models import get_model, load_official
from rtgan.models.stylegan import (
    MEAN_STYLE_SEED,
    RELEASED_CHANNELS,
    AdaptiveInstanceNorm,
    StyleGANConfig,
    StyleGANGenerator,
    split_noise,
    use_adain_kernel,
)

MANIFEST = "stylegan_rosinality_1024.json"
# tests/data/official-keys (the copy CI reads), else ../shared/reference/official-keys
_COPIES = (
    Path(__file__).parents[1] / "data" / "official-keys",
    Path(__file__).parents[3] / "shared" / "reference" / "official-keys",
)
# six blocks (4 to 128 px), so that block 5 is a fused one
TINY = dict(code_dim=8, n_mlp=2, channels=(8, 8, 6, 4, 4, 4), size=32)


def tiny(**options) -> StyleGANGenerator:
    torch.manual_seed(0)
    model = StyleGANGenerator(StyleGANConfig(**{**TINY, **options})).eval()
    with torch.no_grad():  # random noise weights and biases: a zero hides a skipped tensor
        for name, p in model.named_parameters():
            if name.endswith(("bias", "noise1.weight_orig", "noise2.weight_orig")):
                p.normal_(0, 0.5)
    return model


def inputs(batch=2, step=3, seed=1, n=2):
    g = torch.Generator().manual_seed(seed)
    z = [torch.randn(batch, TINY["code_dim"], generator=g) for _ in range(n)]
    return z, [torch.randn(batch, 1, 4 * 2**i, 4 * 2**i, generator=g) for i in range(step + 1)]


def test_key_layout_matches_official_manifest():
    path = next((d / MANIFEST for d in _COPIES if (d / MANIFEST).is_file()), None)
    if path is None:
        pytest.skip(f"{MANIFEST} not found in {', '.join(map(str, _COPIES))}")
    ref = json.loads(path.read_text())
    assert StyleGANConfig.from_options(**ref["options"]) == StyleGANConfig()  # the defaults are the release's
    for size in (256, 512, 1024):  # the same keys at every released size: the resolution is `step`
        with torch.device("meta"):
            model = get_model(f"stylegan-ffhq-{size}")
        # the same order too: a state dict saved from rtgan reads like an official one
        assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == list(ref["netG"].items())
        assert sum(p.numel() for p in model.parameters()) == ref["netG_params"]
        assert model.config.step == int(math.log2(size)) - 2


def test_config_checks_and_official_names():
    c = StyleGANConfig.from_options(code_dim=16, style_dim=16, channels=[8, 8, 4], size=16)  # a list from JSON
    assert (c.channels, c.style_dim, c.max_step, c.step, c.noise_size) == ((8, 8, 4), 16, 2, 2, 16 + 64 + 256)
    assert StyleGANConfig().channels == RELEASED_CHANNELS and StyleGANConfig().style_dim == 512
    for bad, match in [
        (dict(size=48), r"size must be one of \[4, 8, 16, .*1024\]"),
        (dict(size=2048), "size must be one of"),
        (dict(channels=(8, 0)), "channels must be one or more positive widths"),
        (dict(channels=()), "channels must be one or more"),
        (dict(n_mlp=0), "n_mlp must be positive"),
    ]:
        with pytest.raises(ConfigError, match=match):
            StyleGANConfig(**bad)
    with pytest.raises(ConfigError, match="style_dim=256 disagrees with the other options, which give style_dim=512"):
        StyleGANConfig.from_options(style_dim=256)
    with pytest.raises(ConfigError, match="did you mean 'code_dim'"):
        StyleGANConfig.from_options(code_size=512)
    with pytest.raises(ConfigError, match="channels must be tuple"):
        StyleGANConfig.from_options(channels=512)


def test_equalized_lr_scales_every_weight_noise_included():
    """weight_orig * sqrt(2 / fan_in), fan_in = size(1) * numel of one [i][j] slice: the noise weights'
    (1, C, 1, 1) give sqrt(2 / C); the fused upsampling conv scales by in * k * k."""
    model = tiny()
    block = model.generator.progression[3]
    cases = [
        (block.conv2.conv, 4 * 9),
        (block.noise1, 4),
        (block.adain1.style.linear, TINY["code_dim"]),
        (model.style[1].linear, TINY["code_dim"]),
        (model.generator.to_rgb[2].conv, 6),
    ]
    for module, fan_in in cases:
        assert module.scale == math.sqrt(2 / fan_in)
        assert torch.equal(module.weight(), module.weight_orig * math.sqrt(2 / fan_in))
    fused = model.generator.progression[5].conv1[0]
    assert fused.multiplier == math.sqrt(2 / (4 * 9)) and fused.weight.shape == (4, 4, 3, 3)
    # the fused conv: its 3x3 kernel padded, the four shifts averaged into 4x4, stride 2 -> twice the size
    assert fused(torch.randn(1, 4, 5, 5)).shape == (1, 4, 10, 10)


def test_blur_kernels_are_buffers_and_mapping_is_pixelnorm_then_lrelu_layers():
    model = tiny()
    keys = model.state_dict()
    blur = keys["generator.progression.1.conv1.2.weight"]
    assert blur.shape == (8, 1, 3, 3) and "generator.progression.1.conv1.2.weight_flip" in keys
    torch.testing.assert_close(blur[0, 0], torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0)
    assert "generator.progression.5.conv1.0.weight" in keys and "generator.progression.5.conv1.1.weight" in keys
    assert "generator.progression.4.conv1.1.conv.weight_orig" in keys  # below 128 px: upsample, conv, blur
    names = [type(m).__name__ for m in model.style]
    assert names == ["PixelNorm", "EqualLinear", "LeakyReLU", "EqualLinear", "LeakyReLU"]
    z = torch.randn(3, 8) * 5
    torch.testing.assert_close(model.style[0](z), z / torch.sqrt((z**2).mean(1, keepdim=True) + 1e-8))


def test_adain_and_its_fused_kernel_form():
    """gamma * instance_norm(x) + beta, gamma then beta from one linear map; the CUDA kernel computes
    (x - mean) * rstd * (1 + g) + b, so it is handed g = gamma - 1 and no activation."""
    from rtgan.kernels.spade_norm import norm_denorm_reference

    adain = AdaptiveInstanceNorm(5, 8)
    with torch.no_grad():
        adain.style.linear.bias.normal_()
    x, w = torch.randn(2, 5, 6, 7) * 3 + 1, torch.randn(2, 8)
    gamma, beta = adain.style(w).chunk(2, 1)
    mu, var = x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True)
    ref = gamma[:, :, None, None] * (x - mu) / torch.sqrt(var + 1e-5) + beta[:, :, None, None]
    with torch.no_grad():
        torch.testing.assert_close(adain(x, w), ref, atol=1e-5, rtol=1e-5)
        kernel_form = norm_denorm_reference(x, gamma - 1, beta, slope=None)
        torch.testing.assert_close(kernel_form, ref, atol=1e-5, rtol=1e-5)
        assert not use_adain_kernel(x, gamma)  # CPU tensors: the plain form
    fresh = AdaptiveInstanceNorm(3, 4)
    assert fresh.style.linear.bias.tolist() == [1, 1, 1, 0, 0, 0]  # the official init: gamma 1, beta 0


def test_adain_takes_the_kernel_where_it_applies(monkeypatch):
    from rtgan.kernels import spade_norm
    from rtgan.models import stylegan

    calls = []

    def fake(x, gamma, beta, slope):
        calls.append(slope)
        return spade_norm.norm_denorm_reference(x, gamma, beta, slope=slope)

    monkeypatch.setattr(spade_norm, "norm_denorm", fake)
    monkeypatch.setattr(stylegan, "use_adain_kernel", lambda x, gamma: True)
    model = tiny()
    z, noise = inputs()
    with torch.no_grad():
        fused = model(z[0], noise=noise, step=3)
    monkeypatch.undo()
    with torch.no_grad():
        torch.testing.assert_close(fused, model(z[0], noise=noise, step=3), atol=1e-5, rtol=1e-5)
    assert calls == [None] * 8  # two AdaINs per block, blocks 0..3


def test_both_noise_injections_of_a_block_add_the_same_map():
    model = tiny()
    seen = {}
    hooks = [
        getattr(block, name).register_forward_hook(lambda m, args, out, key=(i, name): seen.update({key: args[1]}))
        for i, block in enumerate(model.generator.progression)
        for name in ("noise1", "noise2")
    ]
    z, noise = inputs(step=3)
    with torch.no_grad():
        model(z[0], noise=noise, step=3)
    for h in hooks:
        h.remove()
    assert sorted(seen) == [(i, n) for i in range(4) for n in ("noise1", "noise2")]
    for i in range(4):
        assert seen[(i, "noise1")] is noise[i] and seen[(i, "noise2")] is noise[i]


def test_noise_none_draws_from_the_global_generator_in_order():
    model = tiny()
    z, _ = inputs(batch=3)
    with torch.no_grad():
        torch.manual_seed(5)
        drawn = model(z[0], step=4)
        torch.manual_seed(5)
        maps = [torch.randn(3, 1, 4 * 2**i, 4 * 2**i) for i in range(5)]
        assert torch.equal(drawn, model(z[0], noise=maps, step=4))
        shared = [m[:1] for m in maps]  # one map for the whole batch broadcasts
        assert torch.equal(
            model(z[0], noise=shared, step=4), model(z[0], noise=[m.repeat(3, 1, 1, 1) for m in shared], step=4)
        )


def test_step_default_and_fade():
    model = tiny()
    z, noise = inputs(step=5)
    with torch.no_grad():
        assert model(z[0], noise=noise).shape == (2, 3, 32, 32)  # step None: the config's size (32 px, step 3)
        assert torch.equal(model(z[0], noise=noise), model(z[0], noise=noise, step=3))
        for step in (0, 4, 5):
            assert model(z[0], noise=noise, step=step).shape == (2, 3, 4 * 2**step, 4 * 2**step)
        for step in (1, 3, 5):
            full = model(z[0], noise=noise, step=step)
            assert torch.equal(model(z[0], noise=noise, step=step, alpha=1), full)  # alpha 1 and -1: no fade
            skip = F.interpolate(model(z[0], noise=noise, step=step - 1), scale_factor=2, mode="nearest")
            torch.testing.assert_close(model(z[0], noise=noise, step=step, alpha=0), skip, atol=1e-6, rtol=0)
            half = model(z[0], noise=noise, step=step, alpha=0.25)
            torch.testing.assert_close(half, 0.75 * skip + 0.25 * full, atol=1e-5, rtol=1e-5)
        assert torch.equal(model(z[0], noise=noise, step=0, alpha=0.5), model(z[0], noise=noise, step=0))


def test_truncation_applies_to_all_layers():
    model = tiny()
    (z, z2, z3), noise = inputs(n=3)
    with torch.no_grad():
        mean = model.mean_style(torch.randn(64, 8))
        assert mean.shape == (1, 8)
        at_mean = model(z, noise=noise, mean_style=mean, style_weight=0)
        # style_weight 0: every layer takes mean_style, whatever z, and whatever the mixing
        assert torch.equal(model(z2, noise=noise, mean_style=mean, style_weight=0), at_mean)
        assert torch.equal(model([z2, z3], noise=noise, mean_style=mean, style_weight=0, inject_index=[1]), at_mean)
        torch.testing.assert_close(model(z, noise=noise, mean_style=mean, style_weight=1), model(z, noise=noise))
        assert not torch.allclose(model(z, noise=noise, mean_style=mean, style_weight=0.7), model(z, noise=noise))


def test_mixing_crossovers_and_ranges():
    model = tiny()
    (z, z2, z3), noise = inputs(step=4, n=3)
    run = lambda zs, **kw: model(zs, noise=noise, step=4, **kw)  # noqa: E731
    with torch.no_grad():
        plain, other = run(z), run(z2)
        assert torch.equal(run([z]), plain)  # a list of one z is no mixing
        # inject_index [k]: blocks 0..k take z, the later ones z2; the same as mixing_range (k + 1, ...)
        for k in range(4):
            assert torch.equal(run([z, z2], inject_index=[k]), run([z, z2], mixing_range=(k + 1, 8)))
        assert torch.equal(run([z, z2], mixing_range=(0, 4)), other)
        assert torch.equal(run([z, z2], mixing_range=(5, 8)), plain)  # a range past the last block: no mixing
        assert torch.equal(run([z, z2, z3], inject_index=[2, 0]), run([z, z2, z3], inject_index=[0, 2]))  # sorted
        mixed = run([z, z2, z3], inject_index=[0, 2])
        assert not torch.equal(mixed, run([z, z2], inject_index=[0])) and not torch.equal(mixed, plain)
        # no inject_index: the official draw from Python's global random
        random.seed(3)
        drawn = run([z, z2, z3])
        random.seed(3)
        assert torch.equal(drawn, run([z, z2, z3], inject_index=random.sample(range(4), 2)))


def test_input_errors_name_the_problem():
    model = tiny()
    (z, z2), noise = inputs(step=3)
    cases = [
        (dict(input=z[:, :5]), r"z must be a float tensor of shape \(B, 8\), got \(2, 5\)"),
        (dict(input=z.long()), "z must be a float tensor"),
        (dict(input=[z, z2[:1]]), "z number 1 has batch 1, the first z 2"),
        (dict(input=[]), "non-empty list"),
        (dict(step=6), r"step must be an int in 0..5 \(4 to 128 px\), got 6"),
        (dict(step=-1), "step must be an int"),
        (dict(step=2.0), "step must be an int"),
        (dict(step=True), "step must be an int"),
        (dict(alpha=1.5), r"alpha must be in \[0, 1\] \(or -1, the official default: no fade\), got 1.5"),
        (dict(alpha=-0.5), "alpha must be in"),
        (dict(noise=noise[:2]), "at least step \\+ 1 = 4 maps"),
        (dict(noise=noise[0]), "noise must be a list"),
        (dict(noise=[noise[0], noise[2], *noise[2:]]), r"noise\[1\] must be a float tensor \(2 or 1, 1, 8, 8\)"),
        (dict(mixing_range=(0, 1)), "mixing_range mixes two styles: give \\[z, z2\\]"),
        (dict(mixing_range=(0,)), "mixing_range must be two ints"),
        (dict(input=[z, z2], mixing_range=(0, 1), inject_index=[0]), "and no inject_index"),
        (dict(input=[z, z2], step=0, noise=noise), r"crossovers drawn from range\(step\) = range\(0\)"),
        (dict(input=[z, z2], inject_index=[3]), r"inject_index must be 1 distinct block indices in range\(step\)"),
        (dict(input=[z, z2], inject_index=[0, 1]), "inject_index must be 1 distinct"),
        (dict(input=[z, z2, z], inject_index=[1, 1]), "inject_index must be 2 distinct"),
        (dict(input=[z, z2], inject_index=0), "inject_index must be"),
        (dict(style_weight=0.7), "style_weight truncates towards mean_style: pass mean_style"),
        (dict(mean_style=torch.zeros(8), style_weight=0.7), r"mean_style must be a tensor \(1, 8\)"),
    ]
    for kwargs, match in cases:
        kwargs = {"input": z, "noise": noise, "step": 3, **kwargs}
        with pytest.raises(InputError, match=match):
            model(**kwargs)
    with pytest.raises(InputError, match=r"z must be a float tensor of shape \(B, 8\)"):
        model.mean_style(torch.zeros(4, 3))


def test_signature_and_engine_inputs():
    model = tiny()
    sig = model.signature()
    n = 16 + 64 + 256 + 1024
    assert [(i.name, i.kind, i.size) for i in sig.inputs] == [
        ("z", "latent", 8),
        ("noise", "latent", n),
        ("truncation", "scalar", None),
    ]
    psi = sig.input("truncation")
    assert (psi.default, psi.low, psi.high, psi.shape(32, 32)) == (1.0, 0.0, 1.0, ["batch"])
    assert (sig.channels, sig.spatial, tuple(sig.size)) == (3, "fixed", (32, 32))
    with pytest.raises(InputError, match="paints 32x32 only"):
        model.config.check_size(64, 64)
    z, flat = torch.randn(2, 8), torch.randn(2, n)
    z_, maps, step = model.prepare_inputs(z=z, noise=flat)
    assert z_ is z and step == 3 and [m.shape[2] for m in maps] == [4, 8, 16, 32]
    assert torch.equal(maps[0].flatten(1), flat[:, :16]) and torch.equal(maps[3].flatten(1), flat[:, n - 1024 :])
    assert torch.equal(maps[2][1, 0, 3, 5], flat[1, 16 + 64 + 3 * 16 + 5])  # row-major, 4x4 first
    assert split_noise(flat, 1)[1].shape == (2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(*model.prepare_inputs(z, flat)), model(z, noise=maps))
    with pytest.raises(InputError, match=r"noise must be a float tensor \(2, 1360\)"):
        model.prepare_inputs(z, flat[:, :-1])


def phase_end(model: StyleGANGenerator) -> dict:
    """What train.py saves at the end of a phase (the discriminator and optimizers as stand-ins)."""
    state = model.state_dict()
    optim = {"state": {}, "param_groups": [{"lr": 0.001, "betas": (0.0, 0.99), "params": [0, 1]}]}
    disc = {"progression.0.conv1.0.conv.weight_orig": torch.zeros(1), "from_rgb.0.conv.bias": torch.zeros(16)}
    return {"generator": state, "discriminator": disc, "g_optimizer": optim, "d_optimizer": optim, "g_running": state}


def test_official_checkpoints_load_strictly_and_safely(tmp_path):
    model = tiny()
    z, noise = inputs(step=3)
    with torch.no_grad():
        ref = model(z[0], noise=noise)
    options = dict(TINY)
    files = {
        "train_step-4.model": phase_end(model),  # phase-end: the g_running entry
        "000100.model": model.state_dict(),  # a bare running-average state dict
        "dataparallel.model": {f"module.{k}": v for k, v in model.state_dict().items()},
    }
    for name, content in files.items():
        torch.save(content, tmp_path / name)
        loaded = load_official("stylegan", tmp_path / name, **options)
        with torch.no_grad():
            assert torch.equal(loaded(z[0], noise=noise), ref), name
        assert not loaded.training
    # only g_running is read: a training file's raw generator differs and is not used
    torch.save(phase_end(model) | {"generator": {"x": torch.zeros(1)}}, tmp_path / "odd.model")
    with torch.no_grad():
        assert torch.equal(load_official("stylegan", tmp_path / "odd.model", **options)(z[0], noise=noise), ref)

    (tmp_path / "network-snapshot.pkl").write_bytes(pickle.dumps({"G": 1}))
    with pytest.raises(CheckpointError, match="NVlabs StyleGAN pickle: loading it runs the Python code"):
        load_official("stylegan", tmp_path / "network-snapshot.pkl", **options)
    torch.save({"g_running": model.state_dict(), "opt": Path("x")}, tmp_path / "code.model")  # a pickled object
    with pytest.raises(CheckpointError, match="refused to load: the file holds pickled objects other than tensors"):
        load_official("stylegan", tmp_path / "code.model", **options)


def test_checkpoint_mismatches_are_explained(tmp_path):
    model = tiny()
    state = model.state_dict()
    c = model.config

    def load(raw, config=c):
        torch.save(raw, tmp_path / "G.model")
        return load_official("stylegan", tmp_path / "G.model", **dataclasses.asdict(config))

    def broken(edit):
        s = dict(state)
        edit(s)
        return s

    cases = [
        (broken(lambda s: s.pop("generator.progression.2.noise1.weight_orig")), "missing.*progression.2.noise1"),
        (broken(lambda s: s.update(extra=torch.zeros(1))), "unexpected.*extra"),
        (broken(lambda s: s.update({"style.1.bias": [1]})), "entry 'style.1.bias' holds a list"),
        (broken(lambda s: s.update({"style.1.linear.bias": torch.zeros(8, dtype=torch.int64)})), "wrong dtype"),
        ({"generator": state, "discriminator": {}}, "without a 'g_running' entry.*'discriminator', 'generator'"),
        ({"g_running": [1, 2]}, "expected a state dict .* got a list"),
        (
            {"progression.0.conv1.0.conv.weight_orig": torch.zeros(1), "from_rgb.0.conv.bias": torch.zeros(1)},
            "discriminator state dict",
        ),  # fmt: skip
    ]
    for raw, match in cases:
        with pytest.raises(CheckpointError, match=f"(?s){match}"):
            load(raw)
    hints = [
        (c.replace(fused=False), "fused: the checkpoint upsamples with the fused conv in blocks \\[5\\]"),
        (c.replace(channels=(8, 8, 8, 4, 4, 4)), r"channels: the checkpoint's blocks are \(8, 8, 6, 4, 4, 4\) wide"),
        (c.replace(channels=(8, 8, 6, 4)), "channels: the checkpoint's blocks are"),
        (c.replace(code_dim=16), "code_dim: the checkpoint's z has 8 values"),
        (c.replace(n_mlp=3), "n_mlp: the checkpoint's mapping has 2 layers"),
    ]
    for config, match in hints:
        with pytest.raises(CheckpointError, match=f"(?s)Probably differing.*{match}"):
            load(state, config)


def test_save_load_round_trip(tmp_path):
    from rtgan.models import load, save

    model = tiny()
    back = load(save(model, tmp_path / "m"))
    assert back.config == model.config and type(back) is StyleGANGenerator
    z, noise = inputs(step=3)
    with torch.no_grad():
        assert torch.equal(back(z[0], noise=noise), model(z[0], noise=noise))


def test_truncation_inputs_and_the_mean_style_constant():
    """prepare_inputs(z, noise, truncation) is the official forward with get_mean_style() and a per-sample
    style_weight; the mean style is generate.py's (10 batches of 1024 z), seeded, cached, and no state-dict key."""
    model = tiny()
    z, flat = torch.randn(2, 8), torch.randn(2, 1360)
    with torch.no_grad():
        mean = model.get_mean_style()
        g = torch.Generator().manual_seed(MEAN_STYLE_SEED)
        want = sum(model.mean_style(torch.randn(1024, 8, generator=g)) for _ in range(10)) / 10
        assert mean.shape == (1, 8) and torch.equal(mean, want)
        assert model.get_mean_style() is mean  # cached
        assert set(model.state_dict()) == set(tiny().state_dict())  # official checkpoints still load strictly
        maps = split_noise(flat, 3)
        psi = torch.tensor([0.5, 0.2])
        got = model(*model.prepare_inputs(z, flat, psi))
        for i, w in enumerate((0.5, 0.2)):
            one = model(z[i : i + 1], noise=[m[i : i + 1] for m in maps], mean_style=mean, style_weight=w)
            torch.testing.assert_close(got[i : i + 1], one)
        torch.testing.assert_close(model(*model.prepare_inputs(z, flat, torch.ones(2))), model(z, noise=maps))
        model.style[1].linear.weight_orig.mul_(2)  # new mapping weights: a new mean
        assert not torch.equal(model.get_mean_style(), mean)
    with pytest.raises(InputError, match=r"truncation must be a tensor \(2,\)"):
        model.prepare_inputs(z, flat, torch.ones(3))
    with pytest.raises(InputError, match=r"must be in \[0, 1\]"):
        model.prepare_inputs(z, flat, torch.full((2,), 1.5))
