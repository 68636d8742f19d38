"""Differential test of OASIS (rtgan/models/oasis.py) against boschresearch/OASIS's models/generator.py.

Skipped unless RTGAN_OFFICIAL_DIR holds an `OASIS/` checkout (its `models/` with `sync_batchnorm/`).
test.py needs CUDA (and on the CPU, `put_on_multi_gpus` makes the model its own child, so `eval()`
recurses), so the generator is run directly, as test.py runs netEMA: eval mode, no grad, on the
one-hot map of `preprocess_input`. Its forward draws z itself: after the same `torch.manual_seed`,
`torch.randn(B, z_dim)` is that draw. Random weights, running statistics and spectral-norm u, v
(moved by training-mode passes) go through `load_official` as a saved `best_EMA.pth`.
"""

from __future__ import annotations

import copy
import types

import pytest
import torch
from torch import nn

from rtgan.models import load_official

from official_import import load

TOL = 1e-4
# two dataset modes, slim (channels_G 4) and at 1/8 of the crop size (latent grids 1x2 and 1x1), for CPU time
CITYSCAPES = dict(label_nc=34, crop_size=64, aspect_ratio=2.0)
ADE20K = dict(label_nc=150, crop_size=32, aspect_ratio=1.0)
BASE = dict(contain_dontcare_label=True, channels_G=4, num_res_blocks=6, z_dim=64, no_3dnoise=False,
            param_free_norm="syncbatch", spade_ks=3, no_spectral_norm=False)  # fmt: skip


def official_generator(**options) -> nn.Module:
    """The official OASIS_Generator for rtgan-style options (semantic_nc as the dataloaders set it)."""
    module = load("OASIS", "models.generator")
    if options.get("no_spectral_norm"):  # norms.get_spectral_norm names torch, which norms.py never imports
        module.norms.torch = torch
    o = {**BASE, **options}
    opt = types.SimpleNamespace(gpu_ids="-1", semantic_nc=o["label_nc"] + int(o["contain_dontcare_label"]), **o)
    return module.OASIS_Generator(opt)


@torch.no_grad()
def randomized(gen: nn.Module, sem: torch.Tensor, seed: int) -> nn.Module:
    """Random weights and running statistics, a training-mode pass (a power iteration moves u, v; the
    statistics move too), then conv_img scaled so that tanh mostly stays unsaturated."""
    g = torch.Generator().manual_seed(seed)
    for name, p in gen.named_parameters():
        p.copy_(torch.randn(p.shape, generator=g) * (0.05 if name.endswith("bias") else 0.15))
    for name, b in gen.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(torch.randn(b.shape, generator=g) * 0.5)
        elif name.endswith("running_var"):
            b.copy_(torch.rand(b.shape, generator=g) * 2 + 0.3)
    gen.train()(sem)
    gen.eval()
    pre = []
    hook = gen.conv_img.register_forward_hook(lambda m, i, out: pre.append(out.std()))
    torch.manual_seed(0)
    gen(sem)
    hook.remove()
    gen.conv_img.weight.mul_(0.6 / pre[0])  # pre-tanh std 0.6
    return gen


def labels(options: dict, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Blocky random ids at the crop size (B, 1, H, W), every channel index of the mode possible."""
    h, w = round(options["crop_size"] / options["aspect_ratio"]), options["crop_size"]
    n = options["label_nc"] + 1
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (batch, 1, h // 8, w // 8), generator=g).repeat_interleave(8, 2).repeat_interleave(8, 3)


def one_hot(ids: torch.Tensor, n: int) -> torch.Tensor:
    """preprocess_input: a zero map scattered with 1.0 at the ids."""
    b, _, h, w = ids.shape
    return torch.zeros(b, n, h, w).scatter_(1, ids, 1.0)


_PAIRS: dict = {}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """pairs(**options) -> `pair` for those options, built once per module."""

    def get(**options):
        key = tuple(sorted(options.items()))
        if key not in _PAIRS:
            _PAIRS[key] = pair(tmp_path_factory.mktemp("oasis"), **options)
        return _PAIRS[key]

    yield get
    _PAIRS.clear()


def pair(tmp_path, **options):
    """(official generator in eval mode, rtgan's loaded from its saved state dict, label ids, one-hot map)."""
    o = {**BASE, **options}
    ids = labels(o)
    sem = one_hot(ids, o["label_nc"] + 1)
    official = randomized(official_generator(**options), sem, seed=o["label_nc"])
    torch.save(official.state_dict(), tmp_path / "best_EMA.pth")
    ours = load_official("oasis", tmp_path / "best_EMA.pth", **o)
    return official, ours, ids, sem


def compare(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    err = (ours - theirs).abs().max().item()
    print(f"{what}: max abs error {err:.2e}, official std {theirs.std():.3f}")
    assert ours.shape == theirs.shape
    assert err <= TOL, f"{what}: {err:.2e}"
    assert 0.1 < theirs.std() and (theirs.abs() > 0.99).float().mean() < 0.2, "a degenerate image proves little"


@pytest.mark.parametrize("mode", [CITYSCAPES, ADE20K], ids=["cityscapes", "ade20k"])
def test_generator_matches_official(pairs, mode):
    """z drawn inside (both from the global generator), the same z given, and as a broadcast noise map."""
    official, ours, ids, sem = pairs(**mode)
    b, z_dim = sem.shape[0], BASE["z_dim"]
    with torch.no_grad():
        torch.manual_seed(5)
        theirs = official(sem)
        torch.manual_seed(5)
        compare(ours(ours.prepare(ids)), theirs, "z drawn inside")
        torch.manual_seed(5)
        z = torch.randn(b, z_dim)  # the official forward's draw
        compare(ours(ours.prepare(ids), z=z), theirs, "z given")
        noise = z[:, :, None, None].expand(-1, -1, *sem.shape[2:])
        compare(ours(ours.prepare(ids), noise=noise), theirs, "noise map of a broadcast z")
        torch.manual_seed(6)
        assert (official(sem) - theirs).abs().max() > 1e-2, "z changed nothing"


@torch.no_grad()
def official_with_noise_map(official: nn.Module, sem: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The official forward's steps with its broadcast z replaced by a per-pixel map (no official path takes one)."""
    opt = official.opt
    seg = torch.cat((noise, sem), dim=1)
    x = official.fc(nn.functional.interpolate(seg, size=(official.init_W, official.init_H)))
    for i in range(opt.num_res_blocks):
        x = official.body[i](x, seg)
        if i < opt.num_res_blocks - 1:
            x = official.up(x)
    return torch.tanh(official.conv_img(nn.functional.leaky_relu(x, 2e-1)))


def test_per_pixel_noise_map_matches_official_layers(pairs):
    official, ours, ids, sem = pairs(**CITYSCAPES)
    noise = torch.randn(sem.shape[0], BASE["z_dim"], *sem.shape[2:], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = official_with_noise_map(official, sem, noise)
        compare(ours(ours.prepare(ids), noise=noise), theirs, "per-pixel noise map")
        torch.manual_seed(2)
        assert (ours(ours.prepare(ids)) - theirs).abs().max() > 1e-2


@pytest.mark.parametrize(
    "options",
    [
        dict(param_free_norm="instance"),
        dict(param_free_norm="batch", spade_ks=5),
        dict(no_3dnoise=True),
        dict(no_spectral_norm=True, channels_G=2),
    ],
    ids=["instance", "batch-ks5", "no_3dnoise", "no_spectral_norm"],
)
def test_options_match_official(pairs, options):
    official, ours, ids, sem = pairs(**CITYSCAPES, **options)
    with torch.no_grad():
        torch.manual_seed(8)
        theirs = official(sem)
        torch.manual_seed(8)
        z = None if options.get("no_3dnoise") else torch.randn(sem.shape[0], BASE["z_dim"])
        compare(ours(ours.prepare(ids), z=z), theirs, f"{options}")


def test_stored_spectral_norm_vectors_are_used(pairs):
    """Eval mode divides by sigma = u . W v from the stored u, v; a power iteration (training mode) moves them
    and changes the image, so the loaded u, v are what reproduces test.py."""
    official, ours, ids, sem = pairs(**ADE20K)
    official, ours = copy.deepcopy(official), copy.deepcopy(ours)  # the shared pair stays as loaded
    z = torch.randn(sem.shape[0], BASE["z_dim"], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        before = ours(ours.prepare(ids), z=z)
        u = official.body[0].conv_0.weight_u.clone()
        torch.manual_seed(0)
        official(sem)  # eval: no power iteration
        assert torch.equal(official.body[0].conv_0.weight_u, u)
        for m in official.modules():  # a power iteration on the spectral-normed convs only
            if hasattr(m, "weight_u"):
                m.train()
        official(sem)
        official.eval()
        ours.load_state_dict(official.state_dict())
        moved = ours(ours.prepare(ids), z=z)
    assert (moved - before).abs().max() > 1e-3
