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
from .labels import check_divisible, check_semantics, label_map_signature, prepare_semantics, with_noise
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


def pixelwise_mlp(x: torch.Tensor, params: torch.Tensor, channels: list[int], tile: int) -> torch.Tensor:
    """Run one MLP per tile: x (B, C, H, W), params (B, P, H/tile, W/tile) -> (B, 3, H, W).

    Parameters of each layer are laid out [bias (cout), weight (cin*cout, cin-major)], as the
    official `_set_num_params`; hidden layers use leaky ReLU 0.01, the last tanh.
    """
    b, c, h, w = x.shape
    hl, wl = params.shape[2:]
    tiles = x.unfold(2, tile, tile).unfold(3, tile, tile)  # b, c, hl, wl, tile, tile
    out = tiles.permute(0, 2, 3, 4, 5, 1).reshape(b, hl, wl, tile * tile, c)
    idx, n = 0, len(channels) - 1
    for layer, (cin, cout) in enumerate(zip(channels, channels[1:])):
        bias = params[:, idx : idx + cout].permute(0, 2, 3, 1).reshape(b, hl, wl, 1, cout)
        idx += cout
        # contiguous: as a strided view of params (no unit stride) it sent matmul down a non-BLAS
        # path, 16 s instead of milliseconds for one 256x256 image outside autograd
        weight = params[:, idx : idx + cin * cout].permute(0, 2, 3, 1).reshape(b, hl, wl, cin, cout).contiguous()
        idx += cin * cout
        out = torch.matmul(out, weight) + bias
        out = F.leaky_relu(out, 0.01) if layer < n - 1 else torch.tanh(out)
    out = out.view(b, hl, wl, tile, tile, 3).permute(0, 5, 1, 3, 2, 4)
    return out.reshape(b, 3, h, w)


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

    def signature(self):
        return label_map_signature(self.config, not self.config.no_instance_edge, self.config.tile_size)

    def prepare(self, labels: torch.Tensor, instance: torch.Tensor | None = None) -> torch.Tensor:
        """Integer label ids (B, [1,] H, W) and instance ids -> float semantic map (B, semantic_nc, H, W)."""
        c, dtype = self.config, self.lowres_stream.model[-1].weight.dtype
        return prepare_semantics(labels, instance, c.num_classes, not c.no_instance_edge, dtype, c.label_ids)

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
        hr = with_noise(hr, noise, c.noise_nc, self.noise_octaves)
        if c.hr_coor == "cosine":
            coords = cosine_coords(h, w, c.tile_size, semantics.device).to(hr.dtype)
            hr = torch.cat([hr, coords.expand(hr.shape[0], -1, -1, -1)], 1)
        return pixelwise_mlp(hr, params, c.mlp_channels, c.tile_size)
