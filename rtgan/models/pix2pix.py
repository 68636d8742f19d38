"""pix2pix (Isola et al., CVPR 2017) and CycleGAN (Zhu et al., ICCV 2017) generators: image -> image.

Both papers use the same two generators of junyanz/pytorch-CycleGAN-and-pix2pix, with the same
state-dict keys (`model.N`, `model.N.conv_block.M` for the ResNet, `model.model.1.model...` for the
nested U-Net), so official `latest_net_G.pth` / `latest_net_G_A.pth` files load strictly:

| netG           | generator                                                               | sizes              |
|----------------|-------------------------------------------------------------------------|--------------------|
| resnet_9blocks | c7s1, two stride-2 convs, 9 residual blocks, two transposed convs, c7s1 | multiples of 4 (*) |
| resnet_6blocks | the same with 6 residual blocks                                         | multiples of 4 (*) |
| unet_256       | U-Net of 8 stride-2 levels (1x1 bottleneck at 256)                      | multiples of 256   |
| unet_128       | U-Net of 7 levels                                                       | multiples of 128   |

(*) rtgan's policy, see below.

The two archs differ only in their defaults: `pix2pix` is unet_256 + batch norm + dropout,
`cyclegan` resnet_9blocks + instance norm without dropout (every released CycleGAN model).

Details of the official code kept because they change the image or the keys:
- Convs followed by a batch norm, or by no norm (`norm='none'`), have no bias; with instance norm
  (no affine terms, no running statistics) they have one. The output conv always has one.
- ResNet dropout sits between a block's two convs and shifts the second from `conv_block.5` to
  `conv_block.6`; U-Net dropout follows the up norm of the num_downs - 5 innermost ngf*8 levels
  and changes no key.

Inference modes (not official options; the official test script has two behaviours):
- `bn_mode='eval'`: batch norm uses the running statistics (`test.py --eval`).
- `bn_mode='per_image'`: batch norm normalises each image with its own statistics, as the default
  `test.py` (batch norm left in training mode, one image per batch) does; buffers are never updated.
- `dropout_seed=None`: dropout is off. An int turns Dropout(0.5) on with masks drawn from that seed
  (seed, seed + 1, ... per layer; see `Dropout`): the official default test is random, this is the
  same computation, repeatable.

Size policy: U-Nets need sides that are multiples of 2**num_downs (the official code fails on others).
The official ResNet returns the next multiple of 4 for any other size; rtgan refuses sizes that are
not multiples of 4 (an InputError), so output and input always have the same size.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..signature import Input, Signature
from .config import GeneratorConfig

NET_G = {"resnet_9blocks": 9, "resnet_6blocks": 6, "unet_256": 8, "unet_128": 7}  # blocks / num_downs
NORMS = ("batch", "instance", "none")
BN_MODES = ("eval", "per_image")


@dataclasses.dataclass(frozen=True)
class Pix2PixConfig(GeneratorConfig):
    arch = "pix2pix"

    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    netG: str = "unet_256"
    norm: str = "batch"
    no_dropout: bool = False
    bn_mode: str = "eval"  # see the module docstring: 'eval' (test.py --eval) or 'per_image' (test.py)
    dropout_seed: int | None = None  # None: no dropout at inference; an int: seeded Dropout(0.5)

    def __post_init__(self):
        self._require(self.netG in NET_G, f"netG must be one of {', '.join(map(repr, NET_G))}, got {self.netG!r}")
        self._require(self.norm in NORMS, f"norm must be one of {', '.join(map(repr, NORMS))}, got {self.norm!r}")
        self._require(self.bn_mode in BN_MODES, f"bn_mode must be 'eval' or 'per_image', got {self.bn_mode!r}")
        self._require(self.ngf > 0, f"ngf must be positive, got {self.ngf}")
        for k in ("input_nc", "output_nc"):
            v = getattr(self, k)
            self._require(v in (1, 3), f"{k} must be 1 (gray) or 3 (RGB), got {v}: images go in and out")
        if self.dropout_seed is not None:
            self._require(not self.no_dropout, "dropout_seed needs a model with dropout (no_dropout=False)")
            self._require(self.dropout_seed >= 0, f"dropout_seed must be >= 0, got {self.dropout_seed}")
        self._require(self.label_ids is None, "label_ids is for label-map generators; this one takes images")

    @property
    def unet(self) -> bool:
        return self.netG.startswith("unet")

    @property
    def size_factor(self) -> int:
        return 2 ** NET_G[self.netG] if self.unet else 4

    def check_size(self, h: int, w: int) -> None:
        """Raise InputError unless this generator paints an h x w image from an h x w one."""
        f = self.size_factor
        if h % f or w % f:
            why = (
                f"{self.netG} halves the size {NET_G[self.netG]} times"
                if self.unet
                else "the official ResNet would return the next multiple of 4; rtgan refuses instead"
            )
            raise InputError(f"height and width must be multiples of {f} for {self.netG}, got {h}x{w} ({why})")
        if not self.unet and min(h, w) < 8:
            raise InputError(f"{self.netG} needs at least 8 pixels per side (reflection padding), got {h}x{w}")


@dataclasses.dataclass(frozen=True)
class CycleGANConfig(Pix2PixConfig):
    arch = "cyclegan"

    netG: str = "resnet_9blocks"
    norm: str = "instance"
    no_dropout: bool = True


class BatchNorm2d(nn.BatchNorm2d):
    """The official BatchNorm2d (same keys), whose eval mode can use each image's own statistics."""

    def __init__(self, num_features: int, per_image: bool = False):
        super().__init__(num_features)
        self.per_image = per_image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_image and not self.training:
            # = training-mode batch norm on a batch of one (biased variance), without the buffer update
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        return super().forward(x)


class Dropout(nn.Dropout):
    """Dropout(0.5) as in training; at inference off, or on with a mask drawn from a fixed seed.

    The seeded mask is drawn by NumPy on the host, so it is the same on every device and an exported
    graph holds it as a constant; it is one (C, H, W) mask for every image of a batch, so an image's
    output does not depend on its place in the batch.
    """

    def __init__(self, seed: int | None = None):
        super().__init__(0.5)
        self.seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        if self.seed is None:
            return x
        keep = np.random.default_rng(self.seed).random((1, *map(int, x.shape[1:]))) >= self.p
        return x * torch.from_numpy(keep).to(x.device, x.dtype) / (1 - self.p)


def norm_layer(norm: str, per_image: bool = False):
    """channels -> the official norm module (`get_norm_layer`)."""
    if norm == "batch":
        return lambda c: BatchNorm2d(c, per_image)
    if norm == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    return lambda c: nn.Identity()


class _Dropouts:
    """Hands out Dropout layers with seeds seed, seed+1, ... in construction order."""

    def __init__(self, seed: int | None):
        self.seed, self.n = seed, 0

    def __call__(self) -> Dropout:
        self.n += 1
        return Dropout(None if self.seed is None else self.seed + self.n - 1)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm, use_bias: bool, dropout: Dropout | None = None):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim), nn.ReLU(True)]
        layers += [dropout] if dropout is not None else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class _ImageToImage(nn.Module):
    """What both generators share: input checks, the engine signature and uint8 -> [-1, 1] input."""

    config: Pix2PixConfig

    def _check(self, image: torch.Tensor) -> None:
        c = self.config
        if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != c.input_nc:
            got = f"{tuple(image.shape)} {image.dtype}" if isinstance(image, torch.Tensor) else type(image).__name__
            raise InputError(f"{c.arch} ({c.netG}) takes an image of shape (B, {c.input_nc}, H, W), got {got}")
        weight = next(self.parameters())
        if image.dtype != weight.dtype:
            raise InputError(f"the image must be {weight.dtype} in [-1, 1] (the model's dtype), got {image.dtype}")
        c.check_size(*image.shape[2:])

    def signature(self) -> Signature:
        c = self.config
        # not "image": that is the graph's output name (rtgan/engine/contract.py)
        inputs = (Input("source", "image"),)
        return Signature(inputs, channels=c.output_nc, spatial="multiple", size=(256, 256), multiple=c.size_factor)

    def prepare_inputs(self, source: torch.Tensor) -> tuple[torch.Tensor]:
        """uint8 RGB (B, H, W, 3) -> (B, input_nc, H, W) in [-1, 1], as the official data loader.

        The official loader runs ToTensor then Normalize(0.5, 0.5); a 1-channel model's images go
        through torchvision's Grayscale first, which on PIL images is PIL's convert('L'): ITU-R
        601-2 luma in 16-bit fixed point, (19595 R + 38470 G + 7471 B + 2^15) >> 16, reproduced here.
        """
        x = source
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.dim() != 4 or x.shape[3] != 3:
            got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"source must be a uint8 RGB image tensor of shape (B, H, W, 3), got {got}")
        x = x.permute(0, 3, 1, 2)
        if self.config.input_nc == 1:
            rgb = x.to(torch.int32)
            x = (rgb[:, 0:1] * 19595 + rgb[:, 1:2] * 38470 + rgb[:, 2:3] * 7471 + 32768) // 65536
        x = x.to(next(self.parameters()).dtype)
        return ((x / 255 - 0.5) / 0.5,)


class ResnetGenerator(_ImageToImage):
    """ResNet generator (Johnson et al.): image (B, input_nc, H, W) in [-1, 1] -> (B, output_nc, H, W)."""

    def __init__(self, config: Pix2PixConfig):
        super().__init__()
        self.config = c = config
        norm = norm_layer(c.norm, c.bn_mode == "per_image")
        bias = c.norm == "instance"
        dropouts = _Dropouts(c.dropout_seed)
        ngf = c.ngf
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(c.input_nc, ngf, 7, bias=bias), norm(ngf), nn.ReLU(True)]
        for m in (1, 2):
            down = nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=bias)
            layers += [down, norm(ngf * m * 2), nn.ReLU(True)]
        for _ in range(NET_G[c.netG]):
            layers.append(ResnetBlock(ngf * 4, norm, bias, None if c.no_dropout else dropouts()))
        for m in (4, 2):
            up = nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)
            layers += [up, norm(ngf * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, c.output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self._check(image)
        return self.model(image)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down (LeakyReLU, stride-2 conv, norm), the inner levels, up (ReLU, transposed
    conv, norm[, dropout]), and the input concatenated to the result. The outermost level takes the
    image without an activation and ends in tanh; the innermost has no down norm."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        norm,
        use_bias: bool,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        dropout: Dropout | None = None,
    ):
        super().__init__()
        self.outermost = outermost
        down = nn.Conv2d(input_nc or outer_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        if outermost:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [down, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif submodule is None:  # innermost
            up = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2), down, nn.ReLU(True), up, norm(outer_nc)]
        else:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2), down, norm(inner_nc), submodule, nn.ReLU(True), up, norm(outer_nc)]
            layers += [dropout] if dropout is not None else []
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # the official LeakyReLU is in-place, so its skip carries LeakyReLU(x), not x; the ReLU that
        # follows in the outer level maps both to the same values, so this one need not be in-place
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(_ImageToImage):
    """U-Net generator with num_downs = 8 (unet_256) or 7 (unet_128) levels."""

    def __init__(self, config: Pix2PixConfig):
        super().__init__()
        self.config = c = config
        norm = norm_layer(c.norm, c.bn_mode == "per_image")
        bias = c.norm == "instance"
        dropouts = _Dropouts(c.dropout_seed)
        ngf = c.ngf
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm, bias)
        for _ in range(NET_G[c.netG] - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, norm, bias, submodule=block, dropout=None if c.no_dropout else dropouts()
            )
        for m in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * m, ngf * m * 2, norm, bias, submodule=block)
        self.model = UnetSkipConnectionBlock(c.output_nc, ngf, norm, bias, c.input_nc, block, outermost=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self._check(image)
        return self.model(image)


def Pix2PixGenerator(config: Pix2PixConfig) -> nn.Module:
    """The generator `config.netG` names: a ResnetGenerator or a UnetGenerator."""
    return (UnetGenerator if config.unet else ResnetGenerator)(config)
