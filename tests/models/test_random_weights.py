"""`randomize_like_trained` on image-in models (pix2pix U-Net, CycleGAN ResNet, MUNIT either way):
the image they paint from an image is neither flat nor saturated, and it follows the input."""

from __future__ import annotations

import pytest
import torch

from rtgan.models import get_model
from rtgan.models.init import random_images, randomize_like_trained

TARGET = 0.4  # randomize_like_trained's default target_std

CASES = {
    "cyclegan-resnet": ("cyclegan-style-monet", dict(ngf=8), (64, 64)),
    "pix2pix-unet-batchnorm": ("pix2pix-facades-label2photo", dict(ngf=8), (256, 256)),
    "munit-a2b": ("munit-edges2shoes", dict(dim=8, mlp_dim=16, n_res=1), (64, 64)),
    # the b -> a direction paints with gen_a's decoder: that is the one that must be scaled
    "munit-b2a": ("munit-edges2shoes", dict(dim=8, mlp_dim=16, n_res=1, a2b=False), (64, 64)),
}


@pytest.mark.parametrize("case", list(CASES))
@torch.no_grad()
def test_image_models_paint_a_non_flat_unsaturated_image_that_follows_the_input(case):
    preset, options, (h, w) = CASES[case]
    model = randomize_like_trained(get_model(preset, **options), h, w)
    assert not model.training
    g = torch.Generator().manual_seed(123)  # other images than the ones it was calibrated on
    inputs = [random_images(model, h, w, 1, g) for _ in range(3)]
    outputs = [model(*x) for x in inputs]
    for x, y in zip(inputs, outputs):
        assert x[0].min() >= -1 and x[0].max() <= 1
        assert abs(y.std().item() - TARGET) < 0.08, y.std()
        assert (y.abs() > 0.99).float().mean() < 0.02  # tanh not saturated
    assert (outputs[0] - outputs[1]).abs().mean() > 0.1  # a different image, a different painting
    if "munit" in case:  # ... and a different style, too
        image, style = inputs[0]
        assert (model(image, -style) - outputs[0]).abs().mean() > 0.02


def test_random_images_are_smooth_not_noise():
    model = get_model("cyclegan-style-monet", ngf=8)
    (x,) = random_images(model, 64, 64, 2, torch.Generator().manual_seed(0))
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32
    neighbour = (x[..., 1:] - x[..., :-1]).abs().mean()
    assert neighbour < 0.4 * (x - x.mean()).abs().mean()  # white noise: larger than the spread
    assert x.std() > 0.2  # not flat either


def test_same_seed_same_weights():
    a, b = (randomize_like_trained(get_model("cyclegan-style-monet", ngf=8), 32, 32, iterations=2) for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
