"""Tiny configurations covering every architecture variant, and a randomizer for their weights."""

from __future__ import annotations

import copy
import functools

import torch

from rtgan.models import build, make_config
from rtgan.models.init import random_inputs, randomize_like_trained

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
    # instance norm over a latent of a few pixels is ill-conditioned: keep it at 4x4
    "spade-most-batch5": (
        "spade",
        dict(
            _SPADE,
            label_nc=4,
            num_upsampling_layers="most",
            norm_G="spectralspadebatch5x5",
            crop_size=256,
            aspect_ratio=2.0,
        ),
        (128, 256),
    ),
    "spade-normal-instance3": (
        "spade",
        dict(_SPADE, label_nc=4, num_upsampling_layers="normal", norm_G="spectralspadeinstance3x3", crop_size=128),
        (128, 128),
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
    # rtgan's noise inputs (not official): noise channels after the instance edges
    "spade-noise": ("spade", dict(_SPADE, label_nc=4, noise_nc=2, crop_size=64), (64, 64)),
    "p2phd-local-noise": ("pix2pixhd", dict(_P2P, label_nc=4, netG="local", noise_nc=3), (32, 64)),
    "p2phd-noise-decoder": ("pix2pixhd", dict(_P2P, label_nc=4, noise_nc=2, noise_decoder=True), (32, 48)),
    # resize-conv upsampling (not official): bilinear with decoder noise as the bundled
    # landscape-pix2pixhd, nearest (which export folds into transposed convs) in the local enhancer
    "p2phd-bilinear-noise-decoder": (
        "pix2pixhd",
        dict(_P2P, label_nc=4, noise_nc=2, noise_decoder=True, upsample="bilinear"),
        (32, 48),
    ),
    "p2phd-local-nearest": ("pix2pixhd", dict(_P2P, label_nc=4, netG="local", upsample="nearest"), (32, 64)),
    "asap-noise-edges-in-mlp": (
        "asapnet",
        dict(_ASAP, label_nc=4, lr_instance=False, crop_size=256, noise_nc=3),
        (32, 64),
    ),
}
NOT_OFFICIAL = (
    "spade-noise",
    "p2phd-local-noise",
    "p2phd-noise-decoder",
    "p2phd-bilinear-noise-decoder",
    "p2phd-local-nearest",
    "asap-noise-edges-in-mlp",
)


@functools.lru_cache(maxsize=None)
def _made(variant: str) -> torch.nn.Module:
    arch, options, size = VARIANTS[variant]
    return randomize_like_trained(build(make_config(arch, **options)), *size)


def make(variant: str) -> tuple[torch.nn.Module, tuple[int, int]]:
    """A randomized, calibrated model of `variant` (a private copy: tests may modify it)."""
    return copy.deepcopy(_made(variant)), VARIANTS[variant][2]


def inputs(model, size, batch: int = 2, generator: torch.Generator | None = None):
    """(labels, instance, semantics) for a random blocky label map of `size`."""
    return random_inputs(model, *size, batch=batch, generator=generator)
