"""GAN training losses: adversarial (SPADE's hinge, LSGAN, pix2pix's BCE), discriminator feature
matching, VGG, KLD."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError


def hinge_d(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Discriminator hinge loss, averaged over scales: relu(1 - D(real)) + relu(1 + D(fake))."""
    loss = sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake))
    return loss / len(real)


def hinge_g(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Generator hinge loss: -D(fake), averaged over scales."""
    return -sum(f[-1].mean() for f in fake) / len(fake)


GAN_MODES = ("hinge", "lsgan", "vanilla")


def gan_d(mode: str, real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """The discriminator's loss in `mode`, averaged over scales (the official GANLoss of each)."""
    if mode == "hinge":
        return hinge_d(real, fake)
    loss = 0.0
    for r, f in zip(real, fake):
        r, f = r[-1], f[-1]
        if mode == "lsgan":  # MSE to 1 (real) and 0 (fake), halved as CycleGAN's backward_D
            loss = loss + 0.5 * (F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f)))
        else:
            bce = F.binary_cross_entropy_with_logits
            loss = loss + 0.5 * (bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f)))
    return loss / len(real)


def gan_g(mode: str, fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """The generator's adversarial loss in `mode`: the fakes scored as real."""
    if mode == "hinge":
        return hinge_g(fake)
    if mode == "lsgan":
        return sum(F.mse_loss(f[-1], torch.ones_like(f[-1])) for f in fake) / len(fake)
    bce = F.binary_cross_entropy_with_logits
    return sum(bce(f[-1], torch.ones_like(f[-1])) for f in fake) / len(fake)


def feature_matching(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminator's intermediate features on real and generated images."""
    loss = 0.0
    for r, f in zip(real, fake):
        for rf, ff in zip(r[:-1], f[:-1]):
            loss = loss + F.l1_loss(ff, rf.detach())
    return loss / len(real)


def kld(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)), summed as in SPADE (weighted by lambda_kld there)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


# VGG19 `features` layout, torchvision key names: a number is a 3x3 conv's width, "M" a max-pool.
_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
_TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1


class VGGLoss(nn.Module):
    """Perceptual loss on VGG19 relu{1..5}_1 features, weights 1/32 .. 1 as in pix2pixHD/SPADE.

    The weights come from the user (a torchvision `vgg19` state dict, .pth or .safetensors):
    nothing is downloaded.
    """

    weights = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)
        state = _read_vgg(path)
        ours = self.features.state_dict()
        wanted = {k: state[f"features.{k}"] for k in ours if f"features.{k}" in state}
        missing = sorted(set(ours) - set(wanted))
        if missing:
            raise CheckpointError(f"{path}: not torchvision VGG19 weights (missing features.{missing[0]} and others)")
        for k, v in wanted.items():
            if v.shape != ours[k].shape:
                raise CheckpointError(
                    f"{path}: features.{k} has shape {tuple(v.shape)}, VGG19 has {tuple(ours[k].shape)}"
                )
        self.features.load_state_dict(wanted)
        self.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features[: _TAPS[-1] + 1]):
            x = layer(x)
            if i in _TAPS:
                out.append(x)
        return out

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return sum(w * F.l1_loss(f, r.detach()) for w, f, r in zip(self.weights, self._taps(fake), self._taps(real)))


def _read_vgg(path) -> dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise CheckpointError(f"VGG19 weights not found: {path}")
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which
        raise CheckpointError(f"cannot read VGG19 weights from {path}: {e}") from e
