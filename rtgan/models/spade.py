"""SPADE / GauGAN generator (Park et al., CVPR 2019) and its VAE style encoder.

Module and parameter names follow the official NVlabs/SPADE checkpoints (`head_0.norm_0.mlp_shared.0`,
`conv_0.weight_orig`, ...) so `latest_net_G.pth` / `latest_net_E.pth` load with strict checking.
"""

from __future__ import annotations

import dataclasses
import re

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ..errors import ConfigError, InputError
from .config import GeneratorConfig
from .labels import check_divisible, check_semantics, label_map_signature, prepare_semantics, validating, with_noise
from .layers import conv_norm

_UP_LAYERS = {"normal": 5, "more": 6, "most": 7}


@dataclasses.dataclass(frozen=True)
class SPADEConfig(GeneratorConfig):
    arch = "spade"
    derived = ("semantic_nc",)

    label_nc: int = 182
    contain_dontcare_label: bool = False
    no_instance: bool = False
    crop_size: int = 256
    aspect_ratio: float = 1.0
    ngf: int = 64
    norm_G: str = "spectralspadesyncbatch3x3"
    norm_E: str = "spectralinstance"
    num_upsampling_layers: str = "normal"
    use_vae: bool = False
    z_dim: int = 256
    spade_hidden: int = 128  # hard-coded `nhidden` in the official code; smaller for slim models
    noise_nc: int = 0  # per-pixel noise channels after the semantic map (not official; see with_noise)

    def __post_init__(self):
        self._check_label_ids()
        self._require(self.label_nc > 0, f"label_nc must be positive, got {self.label_nc}")
        self._require(self.noise_nc >= 0, f"noise_nc must be >= 0, got {self.noise_nc}")
        self._require(
            self.num_upsampling_layers in _UP_LAYERS,
            f"num_upsampling_layers must be one of {list(_UP_LAYERS)}, got {self.num_upsampling_layers!r}",
        )
        _ = self.spade_norm  # parse now so a bad norm_G fails at construction
        if self.use_vae:
            self._require(self.crop_size // 2**self.num_up_layers >= 1, "crop_size too small for the VAE latent grid")

    @property
    def num_classes(self) -> int:
        return self.label_nc + int(self.contain_dontcare_label)

    @property
    def semantic_nc(self) -> int:
        return self.num_classes + int(not self.no_instance)

    @property
    def num_up_layers(self) -> int:
        return _UP_LAYERS[self.num_upsampling_layers]

    @property
    def spade_norm(self) -> tuple[bool, str, int]:
        """norm_G -> (spectral convs, parameter-free norm 'batch'|'instance', SPADE kernel size)."""
        m = re.fullmatch(r"(spectral)?spade(syncbatch|batch|instance)(\d)x\d", self.norm_G)
        if not m:
            raise ConfigError(
                f"spade: norm_G {self.norm_G!r} is not [spectral]spade{{syncbatch,batch,instance}}{{3x3,5x5}}"
            )
        return bool(m.group(1)), "instance" if m.group(2) == "instance" else "batch", int(m.group(3))

    def check_size(self, h: int, w: int) -> None:
        """Raise InputError unless this architecture can paint an h x w image."""
        factor = 2**self.num_up_layers
        if self.use_vae:
            sh, sw = self.latent_size
            if (h, w) != (sh * factor, sw * factor):
                raise InputError(
                    f"spatial size {h}x{w} is not supported: this VAE model's latent grid "
                    f"is fixed at {sh}x{sw}, so it takes {sh * factor}x{sw * factor} only"
                )
            return
        check_divisible(h, w, factor, f"{self.num_upsampling_layers!r} upsampling has {self.num_up_layers} 2x stages")
        if self.spade_norm[1] == "instance" and h * w == factor * factor:
            raise InputError(
                f"spatial size {h}x{w} is too small: instance norm needs more than one "
                f"pixel at the {h // factor}x{w // factor} latent grid"
            )

    @property
    def latent_size(self) -> tuple[int, int]:
        """(sh, sw) of the VAE latent grid, as the official `compute_latent_vector_size`."""
        sw = self.crop_size // 2**self.num_up_layers
        return round(sw / self.aspect_ratio), sw


class SPADE(nn.Module):
    """Parameter-free norm, then a per-pixel scale and shift predicted from the label map."""

    def __init__(self, norm_nc: int, label_nc: int, norm: str = "batch", kernel_size: int = 3, hidden: int = 128):
        super().__init__()
        # Batch norm without affine terms: at inference its running statistics are what matter.
        self.param_free_norm = (
            nn.InstanceNorm2d(norm_nc, affine=False) if norm == "instance" else nn.BatchNorm2d(norm_nc, affine=False)
        )
        pad = kernel_size // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResBlock(nn.Module):
    """Pre-activation residual block with SPADE norms; a learned 1x1 shortcut when widths differ."""

    def __init__(
        self,
        fin: int,
        fout: int,
        label_nc: int,
        norm: str = "batch",
        kernel_size: int = 3,
        spectral: bool = False,
        hidden: int = 128,
    ):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmid = min(fin, fout)
        sn = spectral_norm if spectral else (lambda m: m)
        self.conv_0 = sn(nn.Conv2d(fin, fmid, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fmid, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
        self.norm_0 = SPADE(fin, label_nc, norm, kernel_size, hidden)
        self.norm_1 = SPADE(fmid, label_nc, norm, kernel_size, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc, norm, kernel_size, hidden)
        # a module (no weights) rather than a call, so a fused norm-plus-activation can replace the pair
        self.actvn = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(self.actvn(self.norm_0(x, seg)))
        dx = self.conv_1(self.actvn(self.norm_1(dx, seg)))
        return x_s + dx


class ConvEncoder(nn.Module):
    """VAE style encoder: image -> (mu, logvar) of the latent that drives SPADE's `fc`."""

    def __init__(self, ndf: int = 64, norm: str = "spectralinstance", crop_size: int = 256, z_dim: int = 256):
        super().__init__()
        widths = [3, ndf, ndf * 2, ndf * 4, ndf * 8, ndf * 8] + ([ndf * 8] if crop_size >= 256 else [])
        for i, (cin, cout) in enumerate(zip(widths, widths[1:]), start=1):
            setattr(self, f"layer{i}", conv_norm(nn.Conv2d(cin, cout, 3, stride=2, padding=1), norm))
        self.num_layers = len(widths) - 1
        self.fc_mu = nn.Linear(ndf * 8 * 4 * 4, z_dim)
        self.fc_var = nn.Linear(ndf * 8 * 4 * 4, z_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image
        if x.shape[2] != 256 or x.shape[3] != 256:
            x = F.interpolate(x, size=(256, 256), mode="bilinear")
        for i in range(1, self.num_layers + 1):
            x = getattr(self, f"layer{i}")(F.leaky_relu(x, 0.2) if i > 1 else x)
        x = F.leaky_relu(x, 0.2).flatten(1)
        return self.fc_mu(x), self.fc_var(x)


class SPADEGenerator(nn.Module):
    """Label map (one-hot, plus instance edges) -> image in [-1, 1].

    Deterministic mode starts from the label map downsampled to 1/2^n of the input; VAE mode
    (`use_vae`) starts from `fc(z)` on the fixed grid of the training crop. Unlike the official
    code, which always produces the training crop size, deterministic mode follows the input size
    (any multiple of 2^n); at the training crop size both give the same image.
    """

    def __init__(self, config: SPADEConfig):
        super().__init__()
        self.config = config
        nf, nc = config.ngf, config.semantic_nc + config.noise_nc
        spectral, norm, ks = config.spade_norm

        def block(fin, fout):
            return SPADEResBlock(fin, fout, nc, norm, ks, spectral, config.spade_hidden)

        if config.use_vae:
            sh, sw = config.latent_size
            self.fc = nn.Linear(config.z_dim, 16 * nf * sh * sw)
        else:
            self.fc = nn.Conv2d(nc, 16 * nf, 3, padding=1)
        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if config.num_upsampling_layers == "most":
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)
        self.encoder = ConvEncoder(nf, config.norm_E, config.crop_size, config.z_dim) if config.use_vae else None

    def signature(self):
        c = self.config
        return label_map_signature(c, not c.no_instance, 2**c.num_up_layers, c.z_dim if c.use_vae else None)

    def label_convs(self) -> list[str]:
        """The convs whose input starts with the one-hot label map (at some scale)."""
        spades = [f"{name}.mlp_shared.0" for name, m in self.named_modules() if isinstance(m, SPADE)]
        return spades + ([] if self.config.use_vae else ["fc"])

    def prepare(self, labels: torch.Tensor, instance: torch.Tensor | None = None) -> torch.Tensor:
        """Integer label ids (B, [1,] H, W) and instance ids -> float semantic map (B, semantic_nc, H, W)."""
        c, dtype = self.config, self.conv_img.weight.dtype
        return prepare_semantics(labels, instance, c.num_classes, not c.no_instance, dtype, c.label_ids)

    def prepare_inputs(self, labels, instance=None, z=None) -> tuple:
        """The signature's inputs -> `forward`'s arguments: `model(*model.prepare_inputs(**inputs))`."""
        return self.prepare(labels, instance), z

    def forward(
        self, semantics: torch.Tensor, z: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`noise`: (B, noise_nc, H, W) for a `noise_nc` model; None paints with the fixed map."""
        c = self.config
        check_semantics(semantics, c.semantic_nc, self.conv_img.weight)
        b, _, h, w = semantics.shape
        c.check_size(h, w)
        semantics = with_noise(semantics, noise, c.noise_nc)
        if c.use_vae:
            sh, sw = c.latent_size
            if z is None:
                z = torch.randn(b, c.z_dim, device=semantics.device, dtype=semantics.dtype)
            elif validating() and (
                z.shape != (b, c.z_dim) or not z.is_floating_point() or not bool(torch.isfinite(z).all())
            ):
                raise InputError(
                    f"z must be a finite float tensor of shape ({b}, {c.z_dim}), got {tuple(z.shape)} {z.dtype}"
                )
            x = self.fc(z).view(-1, 16 * c.ngf, sh, sw)
        else:
            if z is not None:
                raise InputError("z was given but this SPADE model has no VAE (use_vae=False)")
            factor = 2**c.num_up_layers
            x = self.fc(F.interpolate(semantics, size=(h // factor, w // factor)))

        seg = semantics
        x = self.head_0(x, seg)
        x = F.interpolate(x, scale_factor=2)
        x = self.G_middle_0(x, seg)
        if c.num_upsampling_layers in ("more", "most"):
            x = F.interpolate(x, scale_factor=2)
        x = self.G_middle_1(x, seg)
        for name in ("up_0", "up_1", "up_2", "up_3") + (("up_4",) if c.num_upsampling_layers == "most" else ()):
            x = F.interpolate(x, scale_factor=2)
            x = getattr(self, name)(x, seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Style image (B, 3, H, W) in [-1, 1] -> (mu, logvar), each (B, z_dim)."""
        if self.encoder is None:
            raise InputError("this SPADE model has no style encoder (use_vae=False)")
        check_semantics(image, 3, self.conv_img.weight, "image")
        return self.encoder(image)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return eps * torch.exp(0.5 * logvar) + mu
