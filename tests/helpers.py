"""Tiny configurations covering every architecture variant, and a randomizer for their weights."""

from __future__ import annotations

import copy
import functools

import torch

from rtgan.models import build, init_weights, make_config

_SPADE = dict(ngf=4)  # the official code hard-codes spade_hidden=128
_ASAP = dict(lr_width=8, lr_max_width=16, lr_depth=2, hr_width=8, hr_depth=3)
_P2P = dict(ngf=4, n_blocks_global=2, n_blocks_local=1, n_downsample_global=2)

# id -> (arch, options, (H, W)); options use the official names.
VARIANTS: dict[str, tuple[str, dict, tuple[int, int]]] = {
    "spade-normal-syncbatch3": (
        "spade",
        dict(_SPADE, label_nc=5, num_upsampling_layers="normal", crop_size=96, aspect_ratio=1.5),
        (64, 96),
    ),
    "spade-more-batch3-dontcare": (
        "spade",
        dict(
            _SPADE,
            label_nc=5,
            contain_dontcare_label=True,
            no_instance=True,
            num_upsampling_layers="more",
            norm_G="spectralspadebatch3x3",
            crop_size=128,
            aspect_ratio=2.0,
        ),
        (64, 128),
    ),
    "spade-most-instance5": (
        "spade",
        dict(
            _SPADE,
            label_nc=4,
            num_upsampling_layers="most",
            norm_G="spectralspadeinstance5x5",
            crop_size=256,
            aspect_ratio=2.0,
        ),
        (128, 256),
    ),
    "spade-nospectral-batch5": (
        "spade",
        dict(_SPADE, label_nc=3, norm_G="spadebatch5x5", crop_size=64, aspect_ratio=2.0),
        (32, 64),
    ),
    "spade-vae": (
        "spade",
        dict(
            _SPADE,
            label_nc=6,
            contain_dontcare_label=True,
            use_vae=True,
            num_upsampling_layers="normal",
            crop_size=256,
            aspect_ratio=2.0,
        ),
        (128, 256),
    ),
    "asap-tile16": ("asapnet", dict(_ASAP, label_nc=5, crop_size=512, aspect_ratio=2.0), (32, 64)),
    "asap-tile32-tent-reflect": (
        "asapnet",
        dict(_ASAP, label_nc=4, no_instance_edge=True, lr_instance=False, crop_size=512, reflection_pad=True),
        (64, 96),
    ),
    "asap-tile64-tent4-edges-in-mlp": (
        "asapnet",
        dict(_ASAP, label_nc=3, contain_dontcare_label=True, lr_instance=False, crop_size=1024),
        (128, 128),
    ),
    "asap-batchnorm-nocoords": (
        "asapnet",
        dict(_ASAP, label_nc=4, norm_G="spectralbatch", hr_coor=None, crop_size=256, learned_ds_factor=8),
        (32, 48),
    ),
    "asap-instance": ("asapnet", dict(_ASAP, label_nc=4, norm_G="instance", crop_size=256), (32, 64)),
    "p2phd-global": ("pix2pixhd", dict(_P2P, label_nc=5), (32, 48)),
    "p2phd-global-batch-feat": (
        "pix2pixhd",
        dict(_P2P, label_nc=5, no_instance=True, norm="batch", instance_feat=True, feat_num=3),
        (32, 32),
    ),
    "p2phd-local": ("pix2pixhd", dict(_P2P, label_nc=4, netG="local"), (32, 64)),
    "p2phd-local2": ("pix2pixhd", dict(_P2P, label_nc=4, netG="local", n_local_enhancers=2), (64, 64)),
}


def randomize_(model: torch.nn.Module, size) -> torch.nn.Module:
    """Official-style init, batch-norm statistics gathered on random inputs (then perturbed, so
    running and batch statistics differ), random instance-norm affines: every eval-mode path matters."""
    init_weights(model, gain=1.0)  # the official 0.02 leaves the label path almost without effect
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        if bns:
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batches
            model.train()
            for _ in range(2):
                _, _, sem = inputs(model, size)
                z = torch.randn(sem.shape[0], model.config.z_dim) if getattr(model.config, "use_vae", False) else None
                model(sem, z=z)
            for m in bns:
                m.momentum = 0.1
                m.running_mean.add_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.25))
        for m in model.modules():
            if isinstance(m, torch.nn.InstanceNorm2d) and m.affine:
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    return model.eval()


def _output_layer(model: torch.nn.Module) -> torch.nn.Module:
    convs = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and not n.startswith("encoder")]
    return convs[-1] if model.config.arch != "spade" else model.conv_img


@torch.no_grad()
def calibrate_(model: torch.nn.Module, size, target: float = 0.4, iterations: int = 12) -> torch.nn.Module:
    """Scale the output layer so random-weight images have std ~target: neither flat nor saturated.

    Random deep generators otherwise give all-±1 or near-constant images, on which a comparison
    between implementations proves little.
    """
    layer = _output_layer(model)
    w0, b0 = layer.weight.clone(), layer.bias.clone()
    _, _, sem = inputs(model, size, batch=1, generator=torch.Generator().manual_seed(1))
    z = torch.zeros(sem.shape[0], model.config.z_dim) if getattr(model.config, "use_vae", False) else None
    lo, hi = -24.0, 8.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        layer.weight.copy_(w0 * 2**mid)
        layer.bias.copy_(b0 * 2**mid)
        std = model(sem, z=z).std().item()
        lo, hi = (mid, hi) if std < target else (lo, mid)
    return model


@functools.lru_cache(maxsize=None)
def _made(variant: str) -> torch.nn.Module:
    arch, options, size = VARIANTS[variant]
    return calibrate_(randomize_(build(make_config(arch, **options)), size), size)


def make(variant: str) -> tuple[torch.nn.Module, tuple[int, int]]:
    """A randomized, calibrated model of `variant` (a private copy: tests may modify it)."""
    return copy.deepcopy(_made(variant)), VARIANTS[variant][2]


def inputs(model, size, batch: int = 2, generator: torch.Generator | None = None):
    """Random label ids (with blocky regions so instance edges are sparse) -> semantics."""
    c = model.config
    h, w = size
    coarse = torch.randint(0, c.num_classes, (batch, 1, h // 8, w // 8), generator=generator)
    labels = torch.nn.functional.interpolate(coarse.float(), size=(h, w)).long()
    instance = None
    if c.semantic_nc > c.num_classes + getattr(c, "extra_nc", 0):
        instance = labels * 10 + torch.randint(0, 2, (batch, 1, h, w), generator=generator) * (labels == 1)
    kwargs = {}
    if getattr(c, "extra_nc", 0):
        kwargs["features"] = torch.randn(batch, c.extra_nc, h, w, generator=generator)
    return labels, instance, model.prepare(labels, instance, **kwargs)
