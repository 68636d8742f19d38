"""ASAPNet (Rott Shaham et al., CVPR 2021): a low-res CNN predicts one pixelwise MLP per tile.

A convolutional low-resolution stream turns the label map into a grid of MLP parameters, one
set per `tile x tile` block of pixels; each full-resolution pixel then runs its tile's MLP on its
one-hot label plus sinusoidal coordinates of its position within the tile. Parameter names match
tamarott/ASAPNet checkpoints (`lowres_stream.model.N...`).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .config import GeneratorConfig
from .labels import check_divisible, check_semantics, label_map_signature, noise_map, prepare_semantics
from .layers import conv_norm


@dataclasses.dataclass(frozen=True)
class ASAPNetConfig(GeneratorConfig):
    arch = "asapnet"
    derived = ("semantic_nc",)
    fixed = {"no_one_hot": False, "output_nc": 3}

    label_nc: int = 182
    contain_dontcare_label: bool = False
    no_instance_edge: bool = False
    no_instance_dist: bool = True
    lr_instance: bool = True
    crop_size: int = 512
    aspect_ratio: float = 1.0
    norm_G: str = "instanceaffine"
    learned_ds_factor: int = 16
    lr_width: int = 64
    lr_max_width: int = 1024
    lr_depth: int = 7
    hr_width: int = 64
    hr_depth: int = 5
    hr_coor: str | None = "cosine"
    reflection_pad: bool = False
    # per-pixel noise channels into the MLPs, after the semantics (not official): the cosine code
    # repeats with the tile, so without noise every texture inside a flat region is a 16-px plaid
    noise_nc: int = 0

    def __post_init__(self):
        self._check_label_ids()
        self._require(self.label_nc > 0, f"label_nc must be positive, got {self.label_nc}")
        self._require(
            self.no_instance_dist,
            "no_instance_dist=False (a distance-transform channel) is not "
            "supported: it needs SciPy's EDT on the host and no released checkpoint uses it",
        )
        self._require(
            not (self.lr_instance and self.no_instance_edge),
            "lr_instance=True routes the instance-edge channel to the low-res stream only, "
            "but no_instance_edge=True removes it",
        )
        self._require(self.hr_coor in ("cosine", None), f"hr_coor must be 'cosine' or None, got {self.hr_coor!r}")
        self._require(self.hr_depth >= 1, f"hr_depth must be >= 1, got {self.hr_depth}")
        self._require(self.noise_nc >= 0, f"noise_nc must be >= 0, got {self.noise_nc}")
        t, f = self.tile_size, self.learned_ds_factor
        self._require(f >= 1 and f & (f - 1) == 0, f"learned_ds_factor must be a power of two, got {f}")
        self._require(
            t >= f and t & (t - 1) == 0,
            f"the tile size crop_size // (16 * aspect_ratio) = {t} must be a power of two >= learned_ds_factor ({f})",
        )

    @property
    def num_classes(self) -> int:
        return self.label_nc + int(self.contain_dontcare_label)

    @property
    def semantic_nc(self) -> int:
        return self.num_classes + int(not self.no_instance_edge)

    def check_size(self, h: int, w: int) -> None:
        """Raise InputError unless this architecture can paint an h x w image."""
        check_divisible(h, w, self.tile_size, "each MLP covers one tile of that size")
        if self.reflection_pad and min(h, w) < 2 * self.tile_size:
            raise InputError(
                f"spatial size {h}x{w} is too small: reflection padding needs at least 2 tiles "
                f"({2 * self.tile_size} pixels) per side"
            )

    @property
    def tile_size(self) -> int:
        """Pixels per MLP tile side (S = S1 x S2 in the paper): the low-res grid is 16 tiles high."""
        return int(self.crop_size // (16 * self.aspect_ratio))

    @property
    def pre_downsample(self) -> int:
        """Fixed tent-filter downsampling (S1) applied before the learned one."""
        return self.tile_size // self.learned_ds_factor

    @property
    def mlp_channels(self) -> list[int]:
        cin = self.num_classes + int(not self.no_instance_edge and not self.lr_instance) + self.noise_nc
        if self.hr_coor == "cosine":
            cin += 4 * int(math.log2(self.tile_size))
        return [cin] + [self.hr_width] * (self.hr_depth - 1) + [3]

    @property
    def num_mlp_params(self) -> int:
        ch = self.mlp_channels
        return sum((cin + 1) * cout for cin, cout in zip(ch, ch[1:]))


class TentDownsample(nn.Module):
    """Separable tent-filter downsampling by an integer stride, with reflection padding.

    It has no learned weights (the official code builds it on every call), so its taps are
    non-persistent buffers and checkpoints never see them.
    """

    def __init__(self, stride: int, channels: int):
        super().__init__()
        self.stride, self.channels = stride, channels
        ramp = torch.arange(1, 2 * stride + 1, 2, dtype=torch.float64)
        taps = torch.cat([ramp, ramp.flip(0)])
        taps = (taps / taps.sum()).float()
        self.register_buffer("kernel_horz", taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), persistent=False)
        self.register_buffer("kernel_vert", taps.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, [self.stride // 2] * 4, mode="reflect")
        x = F.conv2d(x, self.kernel_horz, stride=(1, self.stride), groups=self.channels)
        return F.conv2d(x, self.kernel_vert, stride=(self.stride, 1), groups=self.channels)


class ConvBlock(nn.Module):
    """conv3x3 -> norm -> ReLU (ASAPNet's 'block' has no residual connection)."""

    def __init__(self, dim: int, norm: str, reflection_pad: bool = False):
        super().__init__()
        pad = [nn.ReflectionPad2d(1)] if reflection_pad else []
        self.conv_block = nn.Sequential(
            *pad, conv_norm(nn.Conv2d(dim, dim, 3, padding=0 if reflection_pad else 1), norm), nn.ReLU(inplace=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(x)


class LowResStream(nn.Module):
    """Strided convs down by `learned_ds_factor`, `depth` conv blocks, then a 1x1 conv to MLP parameters."""

    def __init__(
        self,
        num_in: int,
        num_out: int,
        norm: str,
        width: int = 64,
        max_width: int = 1024,
        depth: int = 7,
        learned_ds_factor: int = 16,
        reflection_pad: bool = False,
    ):
        super().__init__()

        def conv(cin, cout, stride):
            pad = [nn.ReflectionPad2d(1)] if reflection_pad else []
            return pad + [
                conv_norm(nn.Conv2d(cin, cout, 3, stride, padding=0 if reflection_pad else 1), norm),
                nn.ReLU(inplace=True),
            ]

        layers = conv(num_in, width, 1)
        n_down = int(math.log2(learned_ds_factor))
        for i in range(n_down):
            out = max_width if i == n_down - 1 else width
            layers += conv(width, out, 2)
            width = out
        layers += [ConvBlock(width, norm, reflection_pad) for _ in range(depth)]
        layers += [nn.Conv2d(width, num_out, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def cosine_coords(h: int, w: int, tile: int, device=None) -> torch.Tensor:
    """(1, 4*log2(tile), h, w) position code: cos/sin of x and y modulo f for f = tile, tile/2, ..., 2.

    Computed for the size at hand on every call (the official code caches the first size's codes).
    """
    x = torch.arange(0, w, device=device).float()
    y = torch.arange(0, h, device=device).float()
    codes = []
    f = tile
    while f > 1:
        xr, yr = torch.remainder(x, f), torch.remainder(y, f)
        xcos, xsin = torch.cos(2 * math.pi * xr / f), torch.sin(2 * math.pi * xr / f)
        ycos, ysin = torch.cos(2 * math.pi * yr / f), torch.sin(2 * math.pi * yr / f)
        codes += [v.view(1, 1, 1, w).expand(1, 1, h, w) for v in (xcos, xsin)]
        codes += [v.view(1, 1, h, 1).expand(1, 1, h, w) for v in (ycos, ysin)]
        f //= 2
    return torch.cat(codes, 1)


def tiles(x: torch.Tensor, tile: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/tile, W/tile, tile*tile, C): each tile's pixels, row-major, channels last."""
    b, c, h, w = x.shape
    k = tile
    return x.view(b, c, h // k, k, w // k, k).permute(0, 2, 4, 3, 5, 1).reshape(b, h // k, w // k, k * k, c)


def mlp_layers(params: torch.Tensor, channels: list[int]):
    """Each layer's (weight (B, hl, wl, cin, cout), bias (B, hl, wl, 1, cout)) from the low-res
    stream's output (B, P, hl, wl). Parameters of each layer are laid out [bias (cout), weight
    (cin*cout, cin-major)], as the official `_set_num_params`."""
    b, _, hl, wl = params.shape
    p = params.permute(0, 2, 3, 1)  # (B, hl, wl, P)
    idx = 0
    for cin, cout in zip(channels, channels[1:]):
        bias = p[..., idx : idx + cout].unsqueeze(3)
        idx += cout
        # contiguous: as a strided view of params (no unit stride) it sent matmul down a non-BLAS
        # path, 16 s instead of milliseconds for one 256x256 image outside autograd
        weight = p[..., idx : idx + cin * cout].reshape(b, hl, wl, cin, cout).contiguous()
        idx += cin * cout
        yield weight, bias


def untile(out: torch.Tensor, tile: int) -> torch.Tensor:
    """(B, hl, wl, tile*tile, C) -> (B, C, H, W), the inverse of `tiles`."""
    b, hl, wl, _, c = out.shape
    k = tile
    return out.view(b, hl, wl, k, k, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, hl * k, wl * k)


def run_mlp(out: torch.Tensor, layers, first: int = 0) -> torch.Tensor:
    """The MLP from layer `first` on, over tiled inputs: leaky ReLU 0.01 after hidden layers, tanh last."""
    layers = list(layers)
    for i, (weight, bias) in enumerate(layers[first:], start=first):
        out = torch.matmul(out, weight) + bias
        out = F.leaky_relu(out, 0.01) if i < len(layers) - 1 else torch.tanh(out)
    return out


def pixelwise_mlp(x: torch.Tensor, params: torch.Tensor, channels: list[int], tile: int) -> torch.Tensor:
    """Run one MLP per tile: x (B, C, H, W), params (B, P, H/tile, W/tile) -> (B, 3, H, W)."""
    return untile(run_mlp(tiles(x, tile), mlp_layers(params, channels)), tile)


class HighResStream(nn.Module):
    """The full-resolution stream: each pixel's MLP input (semantics, noise, position code) through
    its tile's MLP. No weights of its own: they come from the low-res stream (`params`)."""

    def __init__(self, config: ASAPNetConfig):
        super().__init__()
        self.channels, self.tile, self.coords = config.mlp_channels, config.tile_size, config.hr_coor == "cosine"

    def forward(self, semantics: torch.Tensor, noise: torch.Tensor | None, params: torch.Tensor) -> torch.Tensor:
        """semantics (B, classes [+ edge], H, W), noise (B or 1, noise_nc, H, W) or None -> (B, 3, H, W)."""
        b = semantics.shape[0]
        parts = [semantics] + ([noise.expand(b, -1, -1, -1)] if noise is not None else [])
        if self.coords:
            h, w = semantics.shape[2:]
            code = cosine_coords(h, w, self.tile, semantics.device).to(semantics.dtype)
            parts.append(code.expand(b, -1, -1, -1))
        return pixelwise_mlp(torch.cat(parts, 1), params, self.channels, self.tile)


class ASAPNetGenerator(nn.Module):
    """Label map (one-hot, plus instance edges) -> image in [-1, 1]; any multiple of the tile size."""

    noise_octaves = True  # its MLPs see one pixel each: noise with grain at several scales (draw_noise)

    def __init__(self, config: ASAPNetConfig):
        super().__init__()
        self.config = config
        c = config
        self.downsample = TentDownsample(c.pre_downsample, c.semantic_nc) if c.pre_downsample > 1 else None
        self.lowres_stream = LowResStream(
            c.semantic_nc,
            c.num_mlp_params,
            c.norm_G,
            c.lr_width,
            c.lr_max_width,
            c.lr_depth,
            c.learned_ds_factor,
            c.reflection_pad,
        )
        self.highres_stream = HighResStream(c)

    def signature(self):
        return label_map_signature(self.config, not self.config.no_instance_edge, self.config.tile_size)

    def label_convs(self) -> list[str]:
        """The convs whose input starts with the one-hot label map: the low-res stream's first, unless
        the tent filter blurs the map before it."""
        if self.downsample is not None:
            return []
        name, _ = next((n, m) for n, m in self.lowres_stream.model.named_modules() if isinstance(m, nn.Conv2d))
        return [f"lowres_stream.model.{name}"]

    def prepare(self, labels: torch.Tensor, instance: torch.Tensor | None = None) -> torch.Tensor:
        """Integer label ids (B, [1,] H, W) and instance ids -> float semantic map (B, semantic_nc, H, W)."""
        c, dtype = self.config, self.lowres_stream.model[-1].weight.dtype
        return prepare_semantics(labels, instance, c.num_classes, not c.no_instance_edge, dtype, c.label_ids)

    def prepare_inputs(self, labels, instance=None) -> tuple:
        """The signature's inputs -> `forward`'s arguments: `model(*model.prepare_inputs(**inputs))`."""
        return (self.prepare(labels, instance),)

    def forward(
        self, semantics: torch.Tensor, z: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`noise`: (B, noise_nc, H, W) for a `noise_nc` model, to the MLPs only; None: the fixed map."""
        c = self.config
        if z is not None:
            raise InputError("z was given but ASAPNet has no latent input")
        check_semantics(semantics, c.semantic_nc, self.lowres_stream.model[-1].weight)
        h, w = semantics.shape[2:]
        c.check_size(h, w)
        lowres = self.downsample(semantics) if self.downsample is not None else semantics
        params = self.lowres_stream(lowres)
        hr = semantics[:, :-1] if c.lr_instance else semantics
        return self.highres_stream(hr, noise_map(hr, noise, c.noise_nc, self.noise_octaves), params)
