"""Differential test of StyleGAN (rtgan/models/stylegan.py) against rosinality/style-based-gan-pytorch's model.py.

Skipped unless RTGAN_OFFICIAL_DIR holds a `style-based-gan-pytorch/` checkout. model.py imports only
torch, so it is loaded by file path under a private module name (as MUNIT's networks.py). The
official `StyledGenerator(512)` (the released width: its constructor takes no other) gets random
weights, including the noise weights and AdaIN biases its init leaves at 0 / (1, 0); a phase-end
checkpoint as train.py saves it goes through `load_official`, and the official forward is compared
on the plain, fade, truncation and mixing paths, with explicit noise and with the noise both draw.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from torch import nn

from rtgan.models import load_official

from official_import import load_file

TOL = 1e-4
SIZES = {1: 8, 3: 32, 5: 128, 6: 256}  # step -> the preset size the model is loaded at (forward takes any step)


def official_model():
    return load_file("style-based-gan-pytorch/model.py")


@torch.no_grad()
def randomized(gen: nn.Module, seed: int) -> nn.Module:
    """Weights ~ N(0, 1) (the official init of every equalized-lr weight), biases, noise weights and
    the constant input random too, so that a skipped scale, a swapped tensor or a dropped noise shows."""
    g = torch.Generator().manual_seed(seed)
    for name, p in gen.named_parameters():
        p.copy_(torch.randn(p.shape, generator=g) * (0.2 if name.endswith("bias") else 1.0))
    return gen.eval()


def phase_end_checkpoint(module, gen: nn.Module, path: Path) -> Path:
    """What train.py saves at the end of a phase: both nets, both optimizers and the running average."""
    disc = module.Discriminator(from_rgb_activate=True)
    optim = lambda net: torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.0, 0.99)).state_dict()  # noqa: E731
    ckpt = {"generator": gen.state_dict(), "discriminator": disc.state_dict(), "g_optimizer": optim(gen),
            "d_optimizer": optim(disc), "g_running": gen.state_dict()}  # fmt: skip
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(official module, official StyledGenerator, {step: rtgan model loaded from its checkpoint})."""
    module = official_model()
    official = randomized(module.StyledGenerator(512), seed=1)
    path = phase_end_checkpoint(module, official, tmp_path_factory.mktemp("stylegan") / "train_step-7.model")
    ours = {s: load_official("stylegan", path, size=size) for s, size in SIZES.items()}
    return module, official, ours


def codes(batch: int, step: int, seed: int):
    """Three z's and the noise maps for `step`; one sample from 128 px up (the CPU time is in the big maps)."""
    batch = 1 if step >= 5 else batch
    g = torch.Generator().manual_seed(seed)
    z = [torch.randn(batch, 512, generator=g) for _ in range(3)]
    noise = [torch.randn(batch, 1, 4 * 2**i, 4 * 2**i, generator=g) for i in range(step + 1)]
    return z, noise


def compare(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    err = (ours - theirs).abs().max().item()
    print(f"{what}: max abs error {err:.2e}, official std {theirs.std():.3f}")
    assert ours.shape == theirs.shape
    assert err <= TOL, f"{what}: {err:.2e}"
    assert theirs.std() > 0.05, "degenerate outputs prove little"


@pytest.mark.parametrize("step", [0, 1, 3, 5, 6])
def test_plain_path_matches_official(pair, step):
    _, official, ours = pair
    model = ours[step] if step in ours else ours[1]  # step 0 runs on any size's model
    (z, *_), noise = codes(2, step, seed=step)
    with torch.no_grad():
        compare(model(z, noise=noise, step=step), official(z, noise=noise, step=step), f"plain step {step}")
        if step in ours:  # the default step is the loaded size's; generate.py passes alpha=1: no fade
            compare(model(z, noise=noise), official(z, noise=noise, step=step, alpha=1), f"default step {step}")


def test_noise_drawn_inside_matches_official(pair):
    """noise=None: both draw torch.randn maps from the global generator, in the same order."""
    _, official, ours = pair
    (z, *_), _ = codes(3, 3, seed=10)
    with torch.no_grad():
        torch.manual_seed(7)
        theirs = official(z, step=3)
        torch.manual_seed(7)
        compare(ours[3](z, step=3), theirs, "noise drawn inside, step 3")


@pytest.mark.parametrize("step, alpha", [(1, 0.0), (3, 0.3), (5, 0.5), (6, 0.75)])
def test_fade_matches_official(pair, step, alpha):
    """0 <= alpha < 1 blends the previous block's to_rgb, upsampled (at step 5 that block is the last unfused one)."""
    _, official, ours = pair
    (z, *_), noise = codes(2, step, seed=20 + step)
    with torch.no_grad():
        theirs = official(z, noise=noise, step=step, alpha=alpha)
        compare(ours[step](z, noise=noise, step=step, alpha=alpha), theirs, f"fade step {step} alpha {alpha}")
        assert (theirs - official(z, noise=noise, step=step)).abs().max() > 1e-2, "the fade changed nothing"


@pytest.mark.parametrize("step, style_weight", [(3, 0.7), (6, 0.7), (3, 0.0), (3, 1.5)])
def test_truncation_matches_official(pair, step, style_weight):
    """mean_style + style_weight * (w - mean_style) at every layer; mean_style by the official helper."""
    _, official, ours = pair
    (z, w, _), noise = codes(2, step, seed=30 + step)
    with torch.no_grad():
        mean_style = official.mean_style(torch.randn(256, 512, generator=torch.Generator().manual_seed(4)))
        torch.testing.assert_close(ours[step].mean_style(w), official.mean_style(w), atol=1e-6, rtol=0)
        kwargs = dict(noise=noise, step=step, alpha=1, mean_style=mean_style, style_weight=style_weight)
        compare(ours[step](z, **kwargs), official(z, **kwargs), f"truncation step {step} weight {style_weight}")


@pytest.mark.parametrize("step, n_styles", [(3, 2), (6, 2), (6, 3), (1, 2)])
def test_mixing_with_drawn_crossovers_matches_official(pair, step, n_styles):
    """k styles: crossovers from random.sample(range(step), k - 1), the same draw when Python's random is seeded
    alike; `inject_index` given as that draw paints the same."""
    _, official, ours = pair
    z, noise = codes(2, step, seed=40 + step)
    z = z[:n_styles]
    with torch.no_grad():
        for seed in (0, 1) if step < 5 else (0,):
            random.seed(seed)
            theirs = official(z, noise=noise, step=step)
            random.seed(seed)
            compare(ours[step](z, noise=noise, step=step), theirs, f"mixing {n_styles} styles step {step} seed {seed}")
            random.seed(seed)
            cuts = random.sample(list(range(step)), n_styles - 1)
            compare(ours[step](z, noise=noise, step=step, inject_index=cuts), theirs, f"inject_index {cuts}")
        assert (theirs - official(z[0], noise=noise, step=step)).abs().max() > 1e-2, "mixing changed nothing"


@pytest.mark.parametrize("step, mixing_range", [(3, (0, 1)), (6, (0, 1)), (6, (2, 8)), (6, (4, 4))])
def test_mixing_range_matches_official(pair, step, mixing_range):
    """generate.py's style_mixing: [target z repeated, source z], mixing_range (0, 1), truncated at 0.7."""
    _, official, ours = pair
    (target, source, _), noise = codes(3, step, seed=50 + step)
    z = [target[:1].repeat(len(source), 1), source]
    with torch.no_grad():
        mean_style = official.mean_style(torch.randn(256, 512, generator=torch.Generator().manual_seed(5)))
        kwargs = dict(noise=noise, step=step, alpha=1, mean_style=mean_style, style_weight=0.7)
        theirs = official(z, mixing_range=mixing_range, **kwargs)
        compare(ours[step](z, mixing_range=mixing_range, **kwargs), theirs, f"mixing_range {mixing_range}")


def test_unfused_generator_matches_official(tmp_path):
    """The official Generator(code_dim, fused=False): nearest upsampling + conv + blur in every block
    (at step 6, blocks 5 and 6 are the fused ones otherwise)."""
    step = 6
    module = official_model()
    official = module.StyledGenerator(512)
    official.generator = module.Generator(512, fused=False)
    official = randomized(official, seed=2)
    torch.save(official.state_dict(), tmp_path / "000100.model")  # a bare running-average state dict
    ours = load_official("stylegan", tmp_path / "000100.model", fused=False, size=4 * 2**step)
    (z, *_), noise = codes(1, step, seed=60)
    with torch.no_grad():
        compare(ours(z, noise=noise), official(z, noise=noise, step=step), f"unfused step {step}")
        compare(ours(z, noise=noise, alpha=0.4), official(z, noise=noise, step=step, alpha=0.4), "unfused fade")


@pytest.mark.slow
def test_1024_matches_official(pair, tmp_path):
    """The full 1024x1024 generator (step 8), plain and faded."""
    module, official, _ = pair
    torch.save({"g_running": official.state_dict()}, tmp_path / "ckpt.model")
    ours = load_official("stylegan", tmp_path / "ckpt.model", preset="stylegan-ffhq-1024")
    (z, *_), noise = codes(1, 8, seed=70)
    with torch.no_grad():
        compare(ours(z, noise=noise), official(z, noise=noise, step=8), "plain step 8")
        compare(ours(z, noise=noise, alpha=0.5), official(z, noise=noise, step=8, alpha=0.5), "fade step 8")
