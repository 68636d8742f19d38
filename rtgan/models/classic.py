"""Classic noise-to-image GANs exactly as two reference codebases build them: DCGAN, CGAN, InfoGAN.

| arch                | reference `Generator`                               | options (config fields)          |
|---------------------|-----------------------------------------------------|----------------------------------|
| `dcgan`             | pytorch/examples `dcgan/main.py`                    | nz, ngf, nc, imageSize           |
| `dcgan-pytorch-gan` | eriklindernoren/PyTorch-GAN `implementations/dcgan` | latent_dim, img_size, channels   |
| `cgan`              | PyTorch-GAN `implementations/cgan`                  | the same + n_classes             |
| `infogan`           | PyTorch-GAN `implementations/infogan`               | the same + n_classes, code_dim   |

forward takes what the reference's forward takes: `dcgan` z (B, nz, 1, 1); `dcgan-pytorch-gan`
z (B, latent_dim); `cgan` z and int64 class ids (B,); `infogan` z, a float one-hot (B, n_classes)
and a code (B, code_dim).

The two DCGANs share a paper and nothing else. pytorch/examples' is Radford et al.'s five transposed
convs from a 1x1 z; PyTorch-GAN's is a Linear onto a 128-channel grid of 1/4 size, then nearest
upsampling and 3x3 convs. Keys, options and sizes differ, so they are two architectures; `dcgan` is
the pytorch/examples one, the DCGAN most checkpoints come from.

Details of the reference code kept because they change the image:
- PyTorch-GAN's `nn.BatchNorm2d(128, 0.8)` and `nn.BatchNorm1d(n, 0.8)` pass 0.8 as *eps* (the
  second positional argument), not as momentum; the first BatchNorm2d keeps the default eps.
- CGAN concatenates (label embedding, z); InfoGAN concatenates (z, one-hot class, code).
- pytorch/examples' `--imageSize` only resizes the data: its generator always paints 64x64 (and
  its discriminator needs 64), so `imageSize` is accepted as 64 only. PyTorch-GAN's DCGAN and
  InfoGAN start at `img_size // 4` and paint 4 * (img_size // 4), so img_size must be a multiple of 4.
- Checkpoints: pytorch/examples saves `netG.state_dict()` as `netG_epoch_N.pth`; the PyTorch-GAN
  scripts save nothing, so their checkpoint is `torch.save(generator.state_dict(), path)`.

Each module also declares `signature()` (its engine inputs: `z`, `class`, `codes`) and
`prepare_inputs(**inputs)`, which maps engine inputs (z float (B, size), class int (B,), codes float
(B, code_dim)) to the tuple its forward takes: `model(*model.prepare_inputs(**inputs))`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from ..errors import InputError
from ..signature import Input, Signature
from .config import GeneratorConfig
from .labels import validating


@dataclasses.dataclass(frozen=True)
class _FixedSizeConfig(GeneratorConfig):
    size_option: ClassVar[str] = "img_size"  # the option that sets the one size it paints

    @property
    def image_size(self) -> int:
        return getattr(self, self.size_option)

    @property
    def image_channels(self) -> int:
        return self.nc if hasattr(self, "nc") else self.channels

    def check_size(self, h: int, w: int) -> None:
        s = self.image_size
        if (h, w) != (s, s):
            raise InputError(f"{self.arch} paints {s}x{s} only ({self.size_option}={s}), not {h}x{w}")

    def __post_init__(self):
        for k in ("nz", "ngf", "latent_dim", "n_classes", "code_dim", "img_size"):
            v = getattr(self, k, 1)
            self._require(v > 0, f"{k} must be positive, got {v}")
        c = self.image_channels
        self._require(c in (1, 3), f"{'nc' if hasattr(self, 'nc') else 'channels'} must be 1 or 3, got {c}")
        self._require(self.label_ids is None, "label_ids is for label-map generators; class ids are 0..n_classes-1")


@dataclasses.dataclass(frozen=True)
class DCGANConfig(_FixedSizeConfig):
    """pytorch/examples DCGAN options (nc: 3 for folder/lsun/cifar10/fake data, 1 for mnist)."""

    arch = "dcgan"
    size_option = "imageSize"

    nz: int = 100
    ngf: int = 64
    nc: int = 3
    imageSize: int = 64

    def __post_init__(self):
        super().__post_init__()
        self._require(
            self.imageSize == 64,
            f"imageSize must be 64, got {self.imageSize}: the pytorch/examples generator always paints 64x64 "
            "(--imageSize only resizes the training data)",
        )


@dataclasses.dataclass(frozen=True)
class PyTorchGANDCGANConfig(_FixedSizeConfig):
    """PyTorch-GAN implementations/dcgan options."""

    arch = "dcgan-pytorch-gan"

    latent_dim: int = 100
    img_size: int = 32
    channels: int = 1

    def __post_init__(self):
        super().__post_init__()
        self._require(
            self.img_size % 4 == 0,
            f"img_size must be a multiple of 4, got {self.img_size}: the reference starts at img_size // 4 "
            f"and would paint {4 * (self.img_size // 4)}x{4 * (self.img_size // 4)}",
        )

    @property
    def input_dim(self) -> int:
        return self.latent_dim


@dataclasses.dataclass(frozen=True)
class CGANConfig(_FixedSizeConfig):
    """PyTorch-GAN implementations/cgan options."""

    arch = "cgan"

    latent_dim: int = 100
    n_classes: int = 10
    img_size: int = 32
    channels: int = 1

    @property
    def num_classes(self) -> int:
        return self.n_classes


@dataclasses.dataclass(frozen=True)
class InfoGANConfig(PyTorchGANDCGANConfig):
    """PyTorch-GAN implementations/infogan options."""

    arch = "infogan"

    latent_dim: int = 62
    code_dim: int = 2
    n_classes: int = 10

    @property
    def input_dim(self) -> int:
        return self.latent_dim + self.n_classes + self.code_dim

    @property
    def num_classes(self) -> int:
        return self.n_classes


def _check_vector(x: torch.Tensor, size: int, what: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 2 or x.shape[1] != size:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{what} must be a float tensor of shape (B, {size}), got {got}")


def _check_classes(labels: torch.Tensor, n: int, what: str = "class") -> None:
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.dim() != 1:
        got = f"{tuple(labels.shape)} {labels.dtype}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise InputError(f"{what} must be an integer tensor of shape (B,), got {got}")
    if validating() and len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n):
        bad = int(labels.max()) if int(labels.max()) >= n else int(labels.min())
        raise InputError(f"{what} id {bad} is out of range: this model takes class ids 0..{n - 1}")


class _EngineInputs:
    """`prepare_inputs` checks the names against `signature()` and hands the tensors over in its order."""

    def _take(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        names = [i.name for i in self.signature().inputs]
        if sorted(inputs) != sorted(names):
            raise InputError(f"{self.config.arch} takes the inputs {names}, got {sorted(inputs)}")
        return [inputs[n] for n in names]

    def _signature(self, *inputs: Input) -> Signature:
        c = self.config
        return Signature(inputs, channels=c.image_channels, spatial="fixed", size=(c.image_size, c.image_size))


class DCGANGenerator(_EngineInputs, nn.Module):
    """pytorch/examples DCGAN: z -> five 4x4 transposed convs (BN + ReLU between) -> tanh, 64x64."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        nz, ngf, nc = config.nz, config.ngf, config.nc
        layers = [nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True)]
        for fin, fout in ((ngf * 8, ngf * 4), (ngf * 4, ngf * 2), (ngf * 2, ngf)):
            layers += [nn.ConvTranspose2d(fin, fout, 4, 2, 1, bias=False), nn.BatchNorm2d(fout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, nz, 1, 1) as the reference takes it -> image (B, nc, 64, 64) in [-1, 1].

        A (B, nz) z is also accepted and viewed as (B, nz, 1, 1) (the reference takes the 4-D form only).
        """
        if isinstance(z, torch.Tensor) and z.dim() == 4 and z.shape[2:] == (1, 1):
            z = z[:, :, 0, 0]
        _check_vector(z, self.config.nz, "z")
        return self.main(z[:, :, None, None])

    def signature(self) -> Signature:
        return self._signature(Input("z", "latent", size=self.config.nz))

    def prepare_inputs(self, **inputs: torch.Tensor) -> tuple[torch.Tensor]:
        (z,) = self._take(inputs)
        _check_vector(z, self.config.nz, "z")
        return (z[:, :, None, None],)


def _upsample_conv_blocks(channels: int) -> nn.Sequential:
    """PyTorch-GAN's DCGAN/InfoGAN `conv_blocks`, on a 128-channel grid of img_size // 4."""
    return nn.Sequential(
        nn.BatchNorm2d(128),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(128, 128, 3, stride=1, padding=1),
        nn.BatchNorm2d(128, eps=0.8),  # the reference's BatchNorm2d(128, 0.8): 0.8 is eps
        nn.LeakyReLU(0.2, inplace=True),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(128, 64, 3, stride=1, padding=1),
        nn.BatchNorm2d(64, eps=0.8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(64, channels, 3, stride=1, padding=1),
        nn.Tanh(),
    )


class PyTorchGANDCGANGenerator(_EngineInputs, nn.Module):
    """PyTorch-GAN DCGAN: Linear -> (128, s/4, s/4) -> 2x (upsample, 3x3 conv, BN, LeakyReLU) -> conv -> tanh."""

    def __init__(self, config: PyTorchGANDCGANConfig):
        super().__init__()
        self.config = config
        self.init_size = config.img_size // 4
        self.l1 = nn.Sequential(nn.Linear(config.input_dim, 128 * self.init_size**2))
        self.conv_blocks = _upsample_conv_blocks(config.channels)

    def _paint(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_blocks(self.l1(x).unflatten(1, (128, self.init_size, self.init_size)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> image (B, channels, img_size, img_size) in [-1, 1]."""
        _check_vector(z, self.config.latent_dim, "z")
        return self._paint(z)

    def signature(self) -> Signature:
        return self._signature(Input("z", "latent", size=self.config.latent_dim))

    def prepare_inputs(self, **inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self._take(inputs))


class InfoGANGenerator(PyTorchGANDCGANGenerator):
    """PyTorch-GAN InfoGAN: the PyTorch-GAN DCGAN on cat(z, one-hot class, code)."""

    def forward(self, z: torch.Tensor, label_onehot: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        c = self.config
        _check_vector(z, c.latent_dim, "z")
        _check_vector(label_onehot, c.n_classes, "label_onehot")
        _check_vector(code, c.code_dim, "code")
        return self._paint(torch.cat((z, label_onehot, code), -1))

    def signature(self) -> Signature:
        c = self.config
        return self._signature(
            Input("z", "latent", size=c.latent_dim),
            Input("label", "class", classes=c.n_classes),
            Input("code", "codes", size=c.code_dim),
        )

    def prepare_inputs(self, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z, labels, code = self._take(inputs)
        _check_vector(z, self.config.latent_dim, "z")
        _check_classes(labels, self.config.n_classes)
        # the reference's to_categorical, as a comparison (traces to plain ONNX ops)
        onehot = (labels.long()[:, None] == torch.arange(self.config.n_classes, device=labels.device)).to(z.dtype)
        return z, onehot, code


class CGANGenerator(_EngineInputs, nn.Module):
    """PyTorch-GAN CGAN: cat(label embedding, z) -> MLP 128-256-512-1024 -> channels*img_size^2 -> tanh."""

    def __init__(self, config: CGANConfig):
        super().__init__()
        self.config = config
        n = config.n_classes
        self.label_emb = nn.Embedding(n, n)

        def block(fin: int, fout: int, normalize: bool = True) -> list[nn.Module]:
            norm = [nn.BatchNorm1d(fout, eps=0.8)] if normalize else []  # the reference's BatchNorm1d(n, 0.8)
            return [nn.Linear(fin, fout), *norm, nn.LeakyReLU(0.2, inplace=True)]

        out = config.channels * config.img_size**2
        self.model = nn.Sequential(
            *block(config.latent_dim + n, 128, normalize=False),
            *block(128, 256),
            *block(256, 512),
            *block(512, 1024),
            nn.Linear(1024, out),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim), labels int64 (B,) class ids -> image (B, channels, img_size, img_size)."""
        c = self.config
        _check_vector(z, c.latent_dim, "z")
        _check_classes(labels, c.n_classes, "labels")
        img = self.model(torch.cat((self.label_emb(labels), z), -1))
        return img.unflatten(1, (c.channels, c.img_size, c.img_size))

    def signature(self) -> Signature:
        c = self.config
        return self._signature(Input("z", "latent", size=c.latent_dim), Input("label", "class", classes=c.n_classes))

    def prepare_inputs(self, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, labels = self._take(inputs)
        _check_classes(labels, self.config.n_classes)
        return z, labels.long()
