"""Multi-scale PatchGAN discriminator (pix2pixHD / SPADE), returning every layer's features.

The features of all layers feed the feature-matching loss; the last one is the patch score map.
Input is the semantic map concatenated with an image, so the discriminator judges the pairing.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..models.layers import conv_norm


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    ndf: int = 64
    n_layers_D: int = 4
    num_D: int = 2
    norm_D: str = "spectralinstance"


class PatchDiscriminator(nn.Module):
    """n_layers_D 4x4 convs (stride 2 but the last), then a 1-channel score map."""

    def __init__(self, input_nc: int, ndf: int, n_layers: int, norm: str):
        super().__init__()
        pad = math.ceil((4 - 1) / 2)
        layers = [nn.Sequential(nn.Conv2d(input_nc, ndf, 4, 2, pad), nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            layers.append(nn.Sequential(conv_norm(nn.Conv2d(prev, nf, 4, stride, pad), norm), nn.LeakyReLU(0.2)))
        layers.append(nn.Conv2d(nf, 1, 4, 1, pad))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """num_D patch discriminators on the input at full, 1/2, 1/4... resolution."""

    def __init__(self, input_nc: int, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.config = config
        c = config
        self.scales = nn.ModuleList(PatchDiscriminator(input_nc, c.ndf, c.n_layers_D, c.norm_D) for _ in range(c.num_D))

    def forward(self, semantics: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([semantics, image], dim=1)
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out
