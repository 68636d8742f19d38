"""Differential tests of rtgan/models/pix2pix.py against the official `models/networks.py`.

Skipped unless RTGAN_OFFICIAL_DIR holds `pytorch-CycleGAN-and-pix2pix/` (see official_import.py).
Every netG x norm x dropout, on the same random weights: the official `define_G` model loads our
state dict with strict=True, so this also checks the key layout of each variant.

`bn_mode='per_image'` is compared with what the default official `test.py` runs: the official model
in training mode (batch norm on each image's own statistics), one image at a time, with its dropout
layers switched off and its buffers restored afterwards.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn

from rtgan.models import build, make_config

from official_import import load

TOL = 1e-4
SIZES = {"resnet_6blocks": (192, 320), "resnet_9blocks": (192, 320), "unet_128": (128, 128), "unet_256": (256, 512)}
NORMS = {"batch-eval": ("batch", "eval"), "batch-per_image": ("batch", "per_image"),
         "instance": ("instance", "eval"), "none": ("none", "eval")}  # fmt: skip
CASES = list(itertools.product(SIZES, NORMS, (False, True)))


@torch.no_grad()
def randomize(model: nn.Module, size: tuple[int, int], seed: int = 0) -> nn.Module:
    """Random batch-norm affines and statistics gathered on random images, then perturbed (a default
    batch norm normalises nothing in eval mode); the output conv scaled so the image is neither flat
    nor saturated."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.weight.normal_(1, 0.2, generator=g)
        m.bias.normal_(0, 0.2, generator=g)
    if bns:
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0  # statistics of the network that eval mode runs
        model.train()(torch.rand(2, model.config.input_nc, *size, generator=g) * 2 - 1)
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.5
    for m in bns:
        m.momentum = 0.1
        m.running_mean.add_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
        m.running_var.mul_(torch.empty(m.running_var.shape).uniform_(0.8, 1.25, generator=g))
    model.eval()
    last = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
    w0, out = last.weight.clone(), {}
    hook = last.register_forward_hook(lambda m, i, y: out.update(y=y))
    x = torch.rand(1, model.config.input_nc, *size, generator=g) * 2 - 1
    lo, hi = -16.0, 16.0
    for _ in range(10):  # bisect the output layer's scale to an image std of ~0.4, centred on 0
        mid = (lo + hi) / 2
        last.weight.copy_(w0 * 2**mid)
        last.bias.zero_()
        model(x)
        last.bias.copy_(-out["y"].mean((0, 2, 3)))
        lo, hi = (mid, hi) if model(x).std().item() < 0.4 else (lo, mid)
    hook.remove()
    return model


def official(config) -> nn.Module:
    networks = load("pytorch-CycleGAN-and-pix2pix", "models.networks")
    return networks.define_G(
        config.input_nc, config.output_nc, config.ngf, config.netG, config.norm, not config.no_dropout
    )


def compare(ours: nn.Module, size: tuple[int, int], batch: int = 2) -> float:
    theirs = official(ours.config)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(batch, ours.config.input_nc, *size) * 2 - 1
    before = copy.deepcopy(ours.state_dict())
    with torch.no_grad():
        a = ours.eval()(x)
        if ours.config.bn_mode == "per_image":
            saved = copy.deepcopy(theirs.state_dict())
            theirs.train()
            for m in theirs.modules():
                if isinstance(m, nn.Dropout):
                    m.eval()
            b = torch.cat([theirs(x[i : i + 1]) for i in range(batch)])
            theirs.load_state_dict(saved)
        else:
            b = theirs.eval()(x)
    assert all(torch.equal(v, ours.state_dict()[k]) for k, v in before.items()), "buffers changed"
    assert a.shape == b.shape == (batch, ours.config.output_nc, *size)
    assert 0.05 < b.std() and (b.abs() > 0.99).float().mean() < 0.5, "degenerate outputs prove little"
    return (a - b).abs().max().item()


@pytest.mark.parametrize("net,norm,dropout", CASES, ids=[f"{n}-{m}-{'drop' if d else 'nodrop'}" for n, m, d in CASES])
def test_generator_matches_official(net, norm, dropout, capsys):
    norm_name, bn_mode = NORMS[norm]
    config = make_config("pix2pix", netG=net, norm=norm_name, bn_mode=bn_mode, no_dropout=not dropout, ngf=8)
    ours = randomize(build(config), SIZES[net])
    err = compare(ours, SIZES[net])
    with capsys.disabled():
        print(f"\n{net} {norm} dropout={dropout} {SIZES[net]}: max abs error {err:.2e}", end="")
    assert err <= TOL


@pytest.mark.parametrize("arch,options", [("cyclegan", dict(input_nc=1)), ("pix2pix", dict(output_nc=1))])
def test_gray_variants_match_official(arch, options):
    ours = randomize(build(make_config(arch, ngf=8, netG="resnet_6blocks", **options)), (64, 96))
    assert compare(ours, (64, 96)) <= TOL


def test_full_width_cyclegan_matches_official(capsys):
    """The released CycleGAN layout at full width: resnet_9blocks, ngf 64, instance norm, 256x256."""
    from rtgan.models import get_model

    ours = randomize(get_model("cyclegan-style-monet"), (256, 256))
    err = compare(ours, (256, 256), batch=1)
    with capsys.disabled():
        print(f"\ncyclegan-style-monet ngf=64 256x256: max abs error {err:.2e}", end="")
    assert err <= TOL
