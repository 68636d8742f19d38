"""A texture loss that needs no download: per-class statistics of a fixed random filter bank.

Without VGG19 weights, the losses left (hinge GAN, feature matching, L1) teach textures slowly: the
L1 and feature-matching targets are the real image's exact texture, which the generator cannot
predict from labels, so their optimum is a blur, and only the discriminator argues against it.
Texture synthesis needs no such target: a texture is its filter-response statistics, whatever the
phase (Gatys et al. 2015), and random, untrained filters already describe it well (Ustyuzhaninov
et al. 2017). So inside each label region this loss matches the mean and standard deviation of a
random multi-scale filter bank's responses between the generated and the real image: a blurred
region has too little response energy and pays for it, a texture of the right grain and contrast
in any phase does not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (kernel, stride, width) of each layer: 5x5 at full resolution for fine grain, then two 3x3 stride-2
# layers for coarser structure (receptive fields 5, 9, 17 px)
LAYERS = ((5, 1, 32), (3, 2, 64), (3, 2, 64))


class RegionTextureLoss(nn.Module):
    """Mean |Δ mean| + |Δ std| of filter responses per (sample, class present, channel), fake vs real.

    The filters are drawn from `seed` (not trained, not saved): the same seed gives the same loss on
    any machine. A class counts at a layer when it covers at least `min_pixels` of that layer's grid.
    """

    def __init__(self, seed: int = 0, layers=LAYERS, min_pixels: int = 16):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.shapes, self.min_pixels = [(k, s) for k, s, _ in layers], min_pixels
        cin = 3
        for i, (k, _, w) in enumerate(layers):
            # He init keeps the response scale about constant through the ReLUs; zero-mean filters
            # (after the first layer) respond to structure rather than to the local average
            weight = torch.randn(w, cin, k, k, generator=g) * (2.0 / (cin * k * k)) ** 0.5
            if i:
                weight -= weight.mean(dim=(1, 2, 3), keepdim=True)
            self.register_buffer(f"weight{i}", weight)
            cin = w
        self.requires_grad_(False)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        out, x = [], image
        for i, (k, stride) in enumerate(self.shapes):
            x = F.relu(F.conv2d(x, getattr(self, f"weight{i}"), stride=stride, padding=k // 2))
            out.append(x)
        return out

    def forward(self, fake: torch.Tensor, real: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """fake, real: (B, 3, H, W) in [-1, 1]; classes: (B, K, H, W) one-hot class masks."""
        with torch.no_grad():
            real_features = self.features(real)
        loss, masks = fake.new_zeros(()), classes.to(fake.dtype)
        for f, r in zip(self.features(fake), real_features):
            if masks.shape[2:] != f.shape[2:]:
                masks = F.adaptive_avg_pool2d(masks, f.shape[2:])  # area fractions per cell
            loss = loss + stats_distance(f, r, masks, self.min_pixels)
        return loss / len(real_features)


def region_stats(features: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (mean, std, area): (B, K, C), (B, K, C), (B, K); mask-weighted over each class region."""
    area = masks.sum(dim=(2, 3))
    n = area.clamp_min(1e-6).unsqueeze(-1)
    mean = torch.einsum("bkhw,bchw->bkc", masks, features) / n
    square = torch.einsum("bkhw,bchw->bkc", masks, features * features) / n
    # eps inside the root: a flat region's std is 0, where sqrt has no gradient
    std = (square - mean * mean).clamp_min(0).add(1e-6).sqrt()
    return mean, std, area


def stats_distance(fake: torch.Tensor, real: torch.Tensor, masks: torch.Tensor, min_pixels: float) -> torch.Tensor:
    mf, sf, area = region_stats(fake, masks)
    mr, sr, _ = region_stats(real, masks)
    present = (area >= min_pixels).to(fake.dtype)  # (B, K)
    per_region = ((mf - mr).abs() + (sf - sr).abs()).mean(-1)
    return (per_region * present).sum() / present.sum().clamp_min(1)
