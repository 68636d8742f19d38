"""The random-filter texture loss: its region statistics against a per-region loop, and the property
it exists for (another sample of a texture costs less than its blur, where L1 says the opposite)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rtgan.train.texture import RegionTextureLoss, region_stats, stats_distance


def _loop_stats(features: torch.Tensor, labels: torch.Tensor, k: int):
    """Reference: mean and population std of each channel over each class's pixels, by indexing."""
    b, c = features.shape[:2]
    mean, std = torch.zeros(b, k, c, dtype=torch.float64), torch.zeros(b, k, c, dtype=torch.float64)
    for i in range(b):
        for cls in range(k):
            pixels = features[i][:, labels[i] == cls].double()  # (C, n)
            if pixels.shape[1]:
                mean[i, cls] = pixels.mean(1)
                std[i, cls] = pixels.std(1, unbiased=False)
    return mean, std


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_region_stats_match_a_loop_over_regions(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (2, 9, 11), generator=g)
    labels[1][labels[1] == 3] = 2  # a class absent from one sample
    features = torch.randn(2, 5, 9, 11, generator=g) * 3 + 1
    masks = F.one_hot(labels, 4).permute(0, 3, 1, 2).float()
    mean, std, area = region_stats(features, masks)
    ref_mean, ref_std = _loop_stats(features, labels, 4)
    assert torch.allclose(mean.double(), ref_mean, atol=1e-5)
    assert torch.allclose(std.double(), ref_std, atol=2e-3)  # eps 1e-6 inside the root: sqrt(eps) = 1e-3
    assert area[1, 3] == 0 and torch.equal(area.sum(1), torch.full((2,), 99.0))


def test_regions_below_min_pixels_do_not_count():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, :2, :2] = 1  # 4 pixels of class 1
    masks = F.one_hot(labels, 2).permute(0, 3, 1, 2).float()
    real = torch.randn(1, 3, 8, 8)
    fake = real.clone()
    fake[0, :, :2, :2] += 5.0  # wrong only inside the small region
    assert float(stats_distance(fake, real, masks, min_pixels=4)) > 1.0
    assert float(stats_distance(fake, real, masks, min_pixels=5)) == 0.0


def _textures(seed: int, masks: torch.Tensor) -> torch.Tensor:
    """Two stationary textures, one per region: fine grey grain on top, coarse green blotches below."""
    g = torch.Generator().manual_seed(seed)
    fine = 0.3 * torch.randn(1, 1, 64, 64, generator=g).expand(1, 3, 64, 64)
    coarse = F.interpolate(torch.randn(1, 1, 8, 8, generator=g), size=(64, 64), mode="bilinear")
    coarse = coarse * 0.4 + torch.tensor([-0.5, 0.2, -0.5]).view(1, 3, 1, 1)
    return masks[:, :1] * fine + masks[:, 1:] * coarse


def _two_regions() -> torch.Tensor:
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    labels[:, 32:] = 1
    return F.one_hot(labels, 2).permute(0, 3, 1, 2).float()


def test_another_sample_of_a_texture_costs_less_than_its_blur():
    masks = _two_regions()
    real, other = _textures(0, masks), _textures(1, masks)
    blurred = F.avg_pool2d(F.pad(real, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    loss = RegionTextureLoss()
    assert float(loss(real, real, masks)) == 0.0
    assert float(loss(other, real, masks)) * 2 < float(loss(blurred, real, masks))
    # the reason for the loss: per-pixel L1 prefers the blur
    assert (other - real).abs().mean() > (blurred - real).abs().mean()


def test_filters_are_fixed_by_the_seed_and_only_the_fake_gets_gradients():
    a, b, c = RegionTextureLoss(seed=0), RegionTextureLoss(seed=0), RegionTextureLoss(seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.buffers(), b.buffers()))
    assert not torch.equal(a.weight0, c.weight0)
    assert list(a.parameters()) == []  # nothing for an optimizer to train
    masks = _two_regions()
    real = _textures(0, masks)
    fake = (real * 0.5).requires_grad_(True)
    a(fake, real, masks).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
