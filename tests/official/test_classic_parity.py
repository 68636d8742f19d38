"""Differential tests of the classic families (rtgan/models/classic.py) against the reference scripts.

Skipped unless RTGAN_OFFICIAL_DIR holds `examples/` (pytorch/examples) and `PyTorch-GAN/`
(eriklindernoren/PyTorch-GAN). Those are training scripts that parse arguments and train at import,
so nothing is imported: the file is parsed and only the `Generator` class (plus the module-level
names it reads: `img_shape`, `to_categorical`) is executed, with the options it reads from `opt`
(and pytorch/examples' globals `nz`, `ngf`, `nc`) taken from our config. The reference modules
load our state dict with strict=True, so this also checks the key layout of each variant.
"""

from __future__ import annotations

import ast
import os
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rtgan.models import build, get_model, make_config

TOL = 1e-5
ROOT = os.environ.get("RTGAN_OFFICIAL_DIR")
SCRIPTS = {
    "dcgan": "examples/dcgan/main.py",
    "dcgan-pytorch-gan": "PyTorch-GAN/implementations/dcgan/dcgan.py",
    "cgan": "PyTorch-GAN/implementations/cgan/cgan.py",
    "infogan": "PyTorch-GAN/implementations/infogan/infogan.py",
}
_KEEP = {"Generator", "img_shape", "to_categorical"}

# the presets at the scripts' defaults, and a non-default variant of each family
CASES = {
    "dcgan-pytorch-examples": ("preset", {}),
    "dcgan-pytorch-gan": ("preset", {}),
    "cgan-pytorch-gan": ("preset", {}),
    "infogan-pytorch-gan": ("preset", {}),
    "dcgan-nz16-ngf8-gray": ("dcgan", dict(nz=16, ngf=8, nc=1)),
    "dcgan-pytorch-gan-28-rgb": ("dcgan-pytorch-gan", dict(latent_dim=20, img_size=28, channels=3)),
    "cgan-7cls-28-rgb": ("cgan", dict(latent_dim=12, n_classes=7, img_size=28, channels=3)),
    "infogan-5cls-3codes-16": ("infogan", dict(latent_dim=10, code_dim=3, n_classes=5, img_size=16, channels=3)),
}


def reference(arch: str, config) -> dict:
    """The names `_KEEP` defined by the reference script, executed without the rest of the script."""
    path = Path(ROOT or "") / SCRIPTS[arch]
    if not ROOT or not path.is_file():
        pytest.skip(f"reference script not found: set RTGAN_OFFICIAL_DIR to a folder with {SCRIPTS[arch]}")
    tree = ast.parse(path.read_text(), str(path))
    named = lambda n: (
        n.name if isinstance(n, (ast.ClassDef, ast.FunctionDef)) else
        next((t.id for t in getattr(n, "targets", []) if isinstance(t, ast.Name)), None)
    )  # fmt: skip
    keep = [n for n in tree.body if named(n) in _KEEP]
    assert any(named(n) == "Generator" for n in keep), f"{path} defines no Generator class"
    opt = Namespace(**config.to_dict())
    ns = dict(__name__=f"reference_{arch}", torch=torch, nn=nn, F=F, np=np, opt=opt)
    ns.update(FloatTensor=torch.FloatTensor, Variable=torch.autograd.Variable)  # to_categorical's
    if arch == "dcgan":  # read as module globals there (nc is set by the dataset branch)
        ns.update(nz=config.nz, ngf=config.ngf, nc=config.nc)
    exec(compile(ast.Module(keep, type_ignores=[]), str(path), "exec"), ns)
    return ns


def make(case: str) -> nn.Module:
    kind, options = CASES[case]
    return get_model(case) if kind == "preset" else build(make_config(kind, **options))


@torch.no_grad()
def randomize(model: nn.Module, feeds: dict, seed: int = 0) -> nn.Module:
    """Random affines and batch-norm statistics gathered on random inputs, then perturbed (so eval
    mode normalises with statistics that differ from the batch's: a default BN is the identity)."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.weight.normal_(1, 0.2, generator=g)
        m.bias.normal_(0, 0.2, generator=g)
    model.train()(*model.prepare_inputs(**feeds))
    for m in bns:
        m.momentum = 0.1
        m.running_mean.add_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
        m.running_var.mul_(torch.empty(m.running_var.shape).uniform_(0.8, 1.25, generator=g))
    return model.eval()


def feeds_for(model: nn.Module, batch: int, seed: int) -> dict:
    from rtgan.export import model_feeds

    feeds = model_feeds(model, *model.signature().size, batch=batch, seed=seed)
    return {k: torch.from_numpy(v) for k, v in feeds.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_generator_matches_reference(case):
    ours = make(case)
    c = ours.config
    ns = reference(c.arch, c)
    theirs = ns["Generator"](1) if c.arch == "dcgan" else ns["Generator"]()  # pytorch/examples takes ngpu
    randomize(ours, feeds_for(ours, 64, seed=1))
    theirs.load_state_dict(ours.state_dict(), strict=True)
    theirs.eval()

    feeds = feeds_for(ours, 5, seed=2)
    z = feeds["z"]
    with torch.no_grad():
        a = ours(*ours.prepare_inputs(**feeds))  # engine inputs, as the exported graph runs them
        if c.arch == "dcgan":
            b = theirs(z.view(-1, c.nz, 1, 1))
            assert torch.equal(ours(z.view(-1, c.nz, 1, 1)), a)
        elif c.arch == "dcgan-pytorch-gan":
            b = theirs(z)
        elif c.arch == "cgan":
            b = theirs(z, feeds["label"].long())
        else:
            onehot = ns["to_categorical"](feeds["label"].numpy(), num_columns=c.n_classes)
            assert torch.equal(ours.prepare_inputs(**feeds)[1], onehot)
            b = theirs(z, onehot, feeds["code"])
    err = (a - b).abs().max().item()
    print(f"{case}: max abs error {err:.2e}, output std {b.std():.3f}")
    assert a.shape == b.shape == (5, c.image_channels, c.image_size, c.image_size)
    assert err <= TOL
    assert 0.05 < b.std() and (b.abs() > 0.99).float().mean() < 0.5, "degenerate outputs prove little"
