"""The exact conditioning rewrites (rtgan/export/conditioning.py) paint what the models' own forwards paint:
OASIS with its z part once per sample, SEAN with its style convolutions as per-region kernels."""

import dataclasses

import pytest
import torch

from rtgan.export import model_feeds
from rtgan.export.conditioning import NoiseLabelConv, TabledACE
from rtgan.export.rewrite import Rewrites, apply_rewrites, frozen_copy
from rtgan.models.init import randomize_like_trained
from rtgan.models.oasis import OASISConfig, OASISGenerator
from rtgan.models.sean import SEANConfig, SEANGenerator

OFF = Rewrites(split_noise_conv=False, style_tables=False)


def outputs(model, h, w, rewrites, seed=1):
    """(reference, rewritten) images of a batch of 2 different samples: per-sample z, codes and noise."""
    feeds = {k: torch.from_numpy(v) for k, v in model_feeds(model, h, w, 2, seed=seed).items()}
    fast = apply_rewrites(frozen_copy(model), rewrites)
    with torch.no_grad():
        return model(*model.prepare_inputs(**feeds)), fast(*fast.prepare_inputs(**feeds)), fast


@pytest.mark.parametrize("regions", [1, 3])
def test_oasis_noise_split_equals_the_forward(regions):
    """z broadcast (the noise read once per sample) and a per-pixel region noise map (its part convolved)."""
    config = OASISConfig(label_nc=6, channels_G=2, z_dim=8, crop_size=64, noise_regions=regions)
    model = randomize_like_trained(OASISGenerator(config), 64, 64, iterations=2)
    ref, out, fast = outputs(model, 64, 64, Rewrites())
    convs = [m for m in fast.modules() if isinstance(m, NoiseLabelConv)]
    assert len(convs) == 1 + 6 * 2 + 4 and all(c.constant_noise == (regions == 1) for c in convs)
    assert ref.std() > 0.1 and (out - ref).abs().max() < 1e-5


@pytest.mark.parametrize("no_instance", [True, False])
def test_sean_style_tables_equal_the_forward(no_instance):
    """Per-sample codes (each sample its own kernels), with instance edges overriding the class style."""
    config = SEANConfig(label_nc=5, no_instance=no_instance, crop_size=32, ngf=4, style_length=16)
    model = randomize_like_trained(SEANGenerator(config), 32, 32, iterations=2)
    with torch.no_grad():  # blending weights start at 0 (sigmoid 0.5): make the style branch weigh differently
        for m in model.modules():
            if hasattr(m, "blending_gamma"):
                m.blending_gamma.normal_(0, 1), m.blending_beta.normal_(0, 1)
    ref, out, fast = outputs(model, 32, 32, Rewrites())
    assert sum(isinstance(m, TabledACE) for m in fast.modules()) == 18
    assert not any(hasattr(m, "fc_mu0") for m in fast.modules())
    assert ref.std() > 0.1 and (out - ref).abs().max() < 1e-4  # the sums reassociated: 19 * 9 terms, not 16 * 9
    _, plain, _ = outputs(model, 32, 32, dataclasses.replace(Rewrites(), style_tables=False))
    assert (plain - ref).abs().max() < 1e-5
