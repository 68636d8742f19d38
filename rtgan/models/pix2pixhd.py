"""pix2pixHD generators (Wang et al., CVPR 2018): the global generator and the local enhancer.

Parameter names match NVIDIA/pix2pixHD checkpoints (`model.N`, `model1_1.N`, `model1_2.N`).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError
from .config import GeneratorConfig
from .labels import check_divisible, check_semantics, label_map_signature, prepare_semantics, with_noise

UPSAMPLING = ("transpose", "nearest", "bilinear")


@dataclasses.dataclass(frozen=True)
class Pix2PixHDConfig(GeneratorConfig):
    arch = "pix2pixhd"
    # `input_nc` is the image-channel count of label_nc=0 mode in the official code; with labels it
    # has no effect there and none here.
    derived = ("semantic_nc",)
    fixed = {"output_nc": 3}

    label_nc: int = 35
    no_instance: bool = False
    instance_feat: bool = False
    label_feat: bool = False
    feat_num: int = 3
    ngf: int = 64
    netG: str = "global"
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    norm: str = "instance"
    input_nc: int = 3
    noise_nc: int = 0  # per-pixel noise channels after the semantic map (not official; see with_noise)
    # also add the noise, through a learned 1x1 conv, to every upsampling stage (not official; as
    # StyleGAN's noise inputs): the global generator's strided encoder averages input noise away,
    # so without this its decoder can only paint textures that repeat with the upsampling stride
    noise_decoder: bool = False
    # "transpose": the official stride-2 transposed convs; "nearest" or "bilinear" (not official):
    # 2x resizing then a 3x3 conv, whose output pixels all see the same taps, so it has no
    # stride-periodic checkerboard to unlearn (Odena et al., Distill 2016); bilinear also leaves
    # no blocks of the coarse grid. Both have the same weights: a run may switch between them.
    upsample: str = "transpose"

    def __post_init__(self):
        self._check_label_ids()
        self._require(self.label_nc > 0, "label_nc must be positive (label_nc=0, image input, is not supported)")
        self._require(self.noise_nc >= 0, f"noise_nc must be >= 0, got {self.noise_nc}")
        self._require(self.netG in ("global", "local"), f"netG must be 'global' or 'local', got {self.netG!r}")
        self._require(self.norm in ("instance", "batch"), f"norm must be 'instance' or 'batch', got {self.norm!r}")
        self._require(
            self.upsample in UPSAMPLING,
            f"upsample must be one of {', '.join(map(repr, UPSAMPLING))}, got {self.upsample!r}",
        )
        self._require(
            not self.noise_decoder or (self.noise_nc > 0 and self.netG == "global"),
            "noise_decoder needs noise_nc > 0 and netG='global'",
        )

    @property
    def num_classes(self) -> int:
        return self.label_nc

    @property
    def extra_nc(self) -> int:
        """Channels of encoded instance/label features appended after the label channels."""
        return self.feat_num if (self.instance_feat or self.label_feat) else 0

    @property
    def semantic_nc(self) -> int:
        return self.label_nc + int(not self.no_instance) + self.extra_nc

    def check_size(self, h: int, w: int) -> None:
        """Raise InputError unless this architecture can paint an h x w image."""
        check_divisible(h, w, self.size_factor, "each downsampling stage halves the size exactly")
        if min(h, w) < 2 * self.size_factor:
            raise InputError(
                f"spatial size {h}x{w} is too small: reflection padding at the bottleneck "
                f"needs at least {2 * self.size_factor} pixels per side"
            )

    @property
    def size_factor(self) -> int:
        n_local = self.n_local_enhancers if self.netG == "local" else 0
        return 2 ** (self.n_downsample_global + n_local)


def _norm_layer(norm: str):
    return (lambda c: nn.InstanceNorm2d(c, affine=False)) if norm == "instance" else (lambda c: nn.BatchNorm2d(c))


class ResizeConv(nn.Module):
    """2x `mode` ('nearest' or 'bilinear') upsampling, then a 3x3 conv (zero padding, as the
    transposed conv it replaces)."""

    def __init__(self, in_channels: int, out_channels: int, mode: str = "nearest"):
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        align = False if self.mode == "bilinear" else None
        return self.conv(F.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=align))


def _upsample_layer(kind: str, in_channels: int, out_channels: int) -> nn.Module:
    if kind != "transpose":
        return ResizeConv(in_channels, out_channels, kind)
    return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: str = "instance"):
        super().__init__()
        norm_layer = _norm_layer(norm)
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            norm_layer(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            norm_layer(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def global_generator_layers(
    input_nc: int,
    ngf: int,
    n_downsample: int,
    n_blocks: int,
    norm: str,
    final: bool = True,
    upsample: str = "transpose",
) -> list[nn.Module]:
    """c7s1-ngf, n strided downsamples, n_blocks residual blocks, n upsamples[, c7s1-3, tanh]."""
    norm_layer = _norm_layer(norm)
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), norm_layer(ngf), nn.ReLU(True)]
    for i in range(n_downsample):
        m = 2**i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1), norm_layer(ngf * m * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 2**n_downsample, norm) for _ in range(n_blocks)]
    for i in range(n_downsample):
        m = 2 ** (n_downsample - i)
        layers += [_upsample_layer(upsample, ngf * m, ngf * m // 2), norm_layer(ngf * m // 2), nn.ReLU(True)]
    if final:
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    return layers


class Pix2PixHDGenerator(nn.Module):
    """Label map (one-hot, instance edges, optional feature channels) -> image in [-1, 1].

    `netG='global'` is the global generator alone; `'local'` wraps a global generator of width
    ngf * 2^n_local_enhancers (without its output layers) in n local enhancers, each adding a
    2x finer branch whose input is the label map at that scale.
    """

    def __init__(self, config: Pix2PixHDConfig):
        super().__init__()
        self.config = config
        c = config
        nc = c.semantic_nc + c.noise_nc
        if c.netG == "global":
            self.model = nn.Sequential(
                *global_generator_layers(
                    nc, c.ngf, c.n_downsample_global, c.n_blocks_global, c.norm, upsample=c.upsample
                )
            )
            self._noise_at: dict[int, tuple[int, int]] = {}  # layer index -> (noise stage, stride)
            if c.noise_decoder:
                n = c.n_downsample_global
                widths = [c.ngf * 2 ** (n - 1 - i) for i in range(n)]
                self.noise_decoder = nn.ModuleList(nn.Conv2d(c.noise_nc, w, 1, bias=False) for w in widths)
                # upsampling stage i ends with its ReLU; the noise goes in just before it, at the
                # stage's resolution (every 2**(n-1-i)-th pixel of the full-resolution map)
                relu0 = 4 + 3 * n + c.n_blocks_global + 2
                self._noise_at = {relu0 + 3 * i: (i, 2 ** (n - 1 - i)) for i in range(n)}
            return
        norm_layer = _norm_layer(c.norm)
        ngf_global = c.ngf * 2**c.n_local_enhancers
        self.model = nn.Sequential(
            *global_generator_layers(
                nc, ngf_global, c.n_downsample_global, c.n_blocks_global, c.norm, final=False, upsample=c.upsample
            )
        )
        for n in range(1, c.n_local_enhancers + 1):
            f = c.ngf * 2 ** (c.n_local_enhancers - n)
            down = [
                nn.ReflectionPad2d(3),
                nn.Conv2d(nc, f, 7),
                norm_layer(f),
                nn.ReLU(True),
                nn.Conv2d(f, f * 2, 3, stride=2, padding=1),
                norm_layer(f * 2),
                nn.ReLU(True),
            ]
            up = [ResnetBlock(f * 2, c.norm) for _ in range(c.n_blocks_local)]
            up += [_upsample_layer(c.upsample, f * 2, f), norm_layer(f), nn.ReLU(True)]
            if n == c.n_local_enhancers:
                up += [nn.ReflectionPad2d(3), nn.Conv2d(c.ngf, 3, 7), nn.Tanh()]
            setattr(self, f"model{n}_1", nn.Sequential(*down))
            setattr(self, f"model{n}_2", nn.Sequential(*up))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    def signature(self):
        if self.config.extra_nc:
            raise ConfigError(
                "pix2pixHD with instance/label feature channels has no engine signature: its features "
                "come from a separate encoder and clustering step"
            )
        return label_map_signature(self.config, not self.config.no_instance, self.config.size_factor)

    def _weight(self) -> torch.Tensor:
        """A weight whose dtype and device are the model's (any: an inference rewrite may replace a layer)."""
        return next(self.parameters())

    def label_convs(self) -> list[str]:
        """The convs whose input starts with the one-hot label map: the first conv at full resolution
        (the coarser branches read an average-pooled map)."""
        c = self.config
        return ["model.1"] if c.netG == "global" else [f"model{c.n_local_enhancers}_1.1"]

    def prepare_inputs(self, labels, instance=None) -> tuple:
        """The signature's inputs -> `forward`'s arguments: `model(*model.prepare_inputs(**inputs))`."""
        return (self.prepare(labels, instance),)

    def prepare(
        self, labels: torch.Tensor, instance: torch.Tensor | None = None, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Label ids, instance ids and (when the model takes them) (B, feat_num, H, W) features -> semantic map."""
        c = self.config
        semantics = prepare_semantics(
            labels, instance, c.num_classes, not c.no_instance, self._weight().dtype, c.label_ids
        )
        if c.extra_nc == 0:
            if features is not None:
                raise InputError("features were given but this model takes none (instance_feat/label_feat off)")
            return semantics
        if (
            features is None
            or features.dim() != 4
            or features.shape[1] != c.extra_nc
            or features.shape[2:] != semantics.shape[2:]
            or not features.is_floating_point()
        ):
            got = None if features is None else (tuple(features.shape), features.dtype)
            raise InputError(f"this model needs float features of shape (B, {c.extra_nc}, H, W), got {got}")
        return torch.cat([semantics, features], 1)

    def forward(
        self, semantics: torch.Tensor, z: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`noise`: (B, noise_nc, H, W) for a `noise_nc` model; None paints with the fixed map."""
        c = self.config
        if z is not None:
            raise InputError("z was given but pix2pixHD has no latent input")
        check_semantics(semantics, c.semantic_nc, self._weight())
        c.check_size(*semantics.shape[2:])
        semantics = with_noise(semantics, noise, c.noise_nc)
        if c.netG == "global":
            return self.global_layers(semantics, semantics[:, -c.noise_nc :] if c.noise_nc else None)
        pyramid = [semantics]
        for _ in range(c.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(1, c.n_local_enhancers + 1):
            x = pyramid[c.n_local_enhancers - n]
            out = getattr(self, f"model{n}_2")(getattr(self, f"model{n}_1")(x) + out)
        return out

    def global_layers(self, x: torch.Tensor, noise: torch.Tensor | None, start: int = 0) -> torch.Tensor:
        """The global generator's layers from `start` on; with `noise_decoder`, each upsampling
        stage gets its share of `noise` (B, noise_nc, H, W) before its ReLU."""
        for i in range(start, len(self.model)):
            if i in self._noise_at:
                stage, stride = self._noise_at[i]
                x = x + self.noise_decoder[stage](noise[:, :, ::stride, ::stride])
            x = self.model[i](x)
        return x
