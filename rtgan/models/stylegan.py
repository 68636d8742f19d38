"""StyleGAN (Karras et al., CVPR 2019) as rosinality/style-based-gan-pytorch builds it (`StyledGenerator`).

Parameter names match that repository's checkpoints (`generator.progression.N...`, `style.N...`), so
its files load strictly. `model(z or [z, z2, ...], noise=maps, step=, alpha=, mean_style=,
style_weight=, mixing_range=)` is the official forward; one rtgan default differs: `step=None` (the
default) paints the config's `size` (the official default, 0, paints 4x4).

Details of the official code kept because they change the image:
- Equalized learning rate: weights are stored as `weight_orig` and used times sqrt(2 / fan_in),
  fan_in = size(1) * the numel of one [i][j] slice; the noise weights (1, C, 1, 1) too, so their
  scale is sqrt(2 / C). The fused upsampling conv stores a plain `weight` and applies the same
  scale itself, then pads it by 1 and averages its four 1-pixel shifts into a 4x4 kernel for a
  stride-2 transposed conv (nearest upsampling and the 3x3 conv in one), followed by the blur.
- Blocks from 128 px on upsample that way (`fused`, always on in `StyledGenerator`); below, nearest
  2x upsampling, a 3x3 conv and the blur. The blur kernels are buffers (`weight`, `weight_flip`)
  and are in the checkpoints; the forward uses `weight` only.
- A block is conv, noise, leaky ReLU, AdaIN, conv, noise, leaky ReLU, AdaIN: both noise injections
  add the *same* map (one per resolution), each with its own weight. AdaIN is instance norm (eps
  1e-5) times the first half of the style's linear map plus the second half.
- The mapping is PixelNorm (eps 1e-8 inside the sqrt) and n_mlp equalized-lr layers, each with a
  leaky ReLU (0.2), the last one too. Truncation, `mean_style + style_weight * (w - mean_style)`,
  applies to every w, hence to all layers; `mean_style(z)` is the official helper (the mean w of a
  batch; generate.py averages it over 10 batches of 1024 and samples with style_weight 0.7).
- `step` picks the resolution 4 * 2**step; with 0 <= alpha < 1 the image is faded with the previous
  block's to_rgb, nearest-upsampled: (1 - alpha) * skip + alpha * rgb.
- Mixing: with k > 1 styles and the default mixing_range (-1, -1), k - 1 crossover blocks are
  drawn by `random.sample(range(step), k - 1)` from Python's global `random` (seed it for the
  official draw) and block i takes style number (#crossovers < i); `inject_index=` (rtgan's)
  gives the crossovers instead. With a mixing_range (lo, hi) blocks lo..hi take the second style,
  the others the first (the official code still draws crossovers then, unused; here nothing is drawn).
- noise=None draws `torch.randn(B, 1, s, s)` for s = 4, 8, ... in that order, as the official forward.

Engines (`signature()`): `z` (B, code_dim), `noise` (B, N), every noise map of the config's
size flattened row-major and concatenated from 4x4 up (`noise_size`, `split_noise`), and
`truncation` ψ (B,) in [0, 1] (the `scalar` kind, default 1: no truncation); the engine draws z
and noise from N(0, I) with its seeded generator when not given, so an image is determined by
(z, noise, ψ), or by the engine's seed. The graph computes the official truncation on all layers,
`mean_style + ψ * (w - mean_style)` (the forward's `mean_style`, `style_weight`), with mean_style
a constant: `get_mean_style()`, generate.py's average of `mean_style` over 10 batches of 1024 z,
drawn from a fixed seed (so exports are deterministic) and cached on the instance (not a buffer:
the official checkpoints load strictly). No fade or mixing in the engine graph.

On CUDA with Triton, eager inference runs AdaIN as the fused norm-denorm kernel of
`rtgan/kernels/spade_norm.py` (its per-channel mode: scale 1 + (gamma - 1), no activation, as the
leaky ReLU comes before the norm here); on the CPU and under tracing, the plain PyTorch form.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import os
import random
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, InputError
from ..signature import Input, Signature
from .config import GeneratorConfig
from .labels import validating

MEAN_STYLE_SEED = 0  # the torch.Generator seed of get_mean_style's z draws
RELEASED_CHANNELS = (512, 512, 512, 512, 256, 128, 64, 32, 16)  # Generator.progression's widths, 4 to 1024 px
FUSED_FROM = 5  # the official Generator passes `fused` to the blocks from 128 px on


@dataclasses.dataclass(frozen=True)
class StyleGANConfig(GeneratorConfig):
    """`StyledGenerator(code_dim, n_mlp)`, its Generator's `fused` and width table, and generate.py's `--size`.

    `channels[i]` is the width of block i (4 * 2**i px); the released table is the default, and
    its length sets the largest step. `style_dim` is the mapping's output, code_dim wide (the
    official code runs with 512 only). `size` is the resolution engines paint, 4 * 2**step.
    """

    arch = "stylegan"
    derived = ("style_dim",)

    code_dim: int = 512
    n_mlp: int = 8
    channels: tuple[int, ...] = RELEASED_CHANNELS
    fused: bool = True
    size: int = 1024

    @classmethod
    def from_options(cls, **options: Any) -> "StyleGANConfig":
        if isinstance(options.get("channels"), list):  # from JSON
            options["channels"] = tuple(options["channels"])
        return super().from_options(**options)

    def __post_init__(self):
        for k in ("code_dim", "n_mlp"):
            self._require(getattr(self, k) > 0, f"{k} must be positive, got {getattr(self, k)}")
        self._require(
            len(self.channels) >= 1 and all(c > 0 for c in self.channels),
            f"channels must be one or more positive widths (block 0 at 4 px, then doubling), got {self.channels}",
        )
        sizes = [4 * 2**i for i in range(len(self.channels))]
        self._require(self.size in sizes, f"size must be one of {sizes} (4 * 2**step), got {self.size}")
        self._require(self.label_ids is None, "label_ids is for label-map generators; StyleGAN takes z")

    @property
    def style_dim(self) -> int:
        return self.code_dim

    @property
    def max_step(self) -> int:
        return len(self.channels) - 1

    @property
    def step(self) -> int:
        return int(math.log2(self.size)) - 2

    @property
    def noise_size(self) -> int:
        """Values in one sample's noise at `size`: every map from 4x4 up, flattened."""
        return sum((4 * 2**i) ** 2 for i in range(self.step + 1))

    def check_size(self, h: int, w: int) -> None:
        if (h, w) != (self.size, self.size):
            raise InputError(f"stylegan paints {self.size}x{self.size} only (size={self.size}), not {h}x{w}")


# ---------------------------------------------------------------------------------------------
# layers (names and registration order as model.py, so state dicts match key for key)


class _EqualLR(nn.Module):
    """A weight stored as `weight_orig` and used times sqrt(2 / fan_in) (the official equal_lr hook).
    The bias comes first in the state dict, as equal_lr re-registers the weight after it."""

    def __init__(self, shape: tuple[int, ...], bias: bool = True):
        super().__init__()
        if bias:
            self.bias = nn.Parameter(torch.zeros(shape[0]))
        self.weight_orig = nn.Parameter(torch.randn(shape))
        self.scale = math.sqrt(2 / (shape[1] * math.prod(shape[2:])))

    def weight(self) -> torch.Tensor:
        return self.weight_orig * self.scale


class _Conv(_EqualLR):
    def __init__(self, fin: int, fout: int, kernel: int, padding: int = 0):
        super().__init__((fout, fin, kernel, kernel))
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


class _Linear(_EqualLR):
    def __init__(self, fin: int, fout: int):
        super().__init__((fout, fin))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


class EqualConv2d(nn.Module):
    def __init__(self, fin: int, fout: int, kernel: int, padding: int = 0):
        super().__init__()
        self.conv = _Conv(fin, fout, kernel, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class EqualLinear(nn.Module):
    def __init__(self, fin: int, fout: int):
        super().__init__()
        self.linear = _Linear(fin, fout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class NoiseInjection(_EqualLR):
    """image + (weight_orig * sqrt(2 / C)) * noise; the weight starts at zero."""

    def __init__(self, channels: int):
        super().__init__((1, channels, 1, 1), bias=False)
        nn.init.zeros_(self.weight_orig)

    def forward(self, image: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return image + self.weight() * noise


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class Blur(nn.Module):
    """Depthwise 3x3 [1 2 1] x [1 2 1] / 16, padding 1; `weight_flip` is kept for the checkpoint layout."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float32).view(1, 1, 3, 3)
        k = k / k.sum()
        self.register_buffer("weight", k.repeat(channels, 1, 1, 1))
        self.register_buffer("weight_flip", torch.flip(k, [2, 3]).repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=1, groups=x.shape[1])


class FusedUpsample(nn.Module):
    """2x upsampling conv: the scaled kernel padded by 1, its four shifts averaged, a stride-2 transposed conv."""

    def __init__(self, fin: int, fout: int, kernel: int, padding: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fin, fout, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(fout))
        self.multiplier = math.sqrt(2 / (fin * kernel * kernel))
        self.pad = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.multiplier
        # F.pad(w, [1, 1, 1, 1]) as concatenated zeros: the same values, and a shape ONNX export can infer
        rows = w.new_zeros(w.shape[0], w.shape[1], 1, w.shape[3])
        w = torch.cat([rows, w, rows], 2)
        cols = w.new_zeros(w.shape[0], w.shape[1], w.shape[2], 1)
        w = torch.cat([cols, w, cols], 3)
        w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) / 4
        return F.conv_transpose2d(x, w, self.bias, stride=2, padding=self.pad)


@functools.cache
def _have_triton() -> bool:
    return importlib.util.find_spec("triton") is not None


def use_adain_kernel(x: torch.Tensor, gamma: torch.Tensor) -> bool:
    """Whether AdaIN runs as the fused Triton kernel: CUDA tensors in eager inference (the kernel has
    no backward and no ONNX form, so not under autograd, tracing or compilation)."""
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or gamma.requires_grad)
    return x.is_cuda and not needs_grad and _have_triton() and validating()


class AdaptiveInstanceNorm(nn.Module):
    def __init__(self, channels: int, style_dim: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels)  # a module, so that export swaps in its group-norm form
        self.style = EqualLinear(style_dim, channels * 2)
        with torch.no_grad():  # the official init: gamma 1, beta 0
            self.style.linear.bias[:channels] = 1
            self.style.linear.bias[channels:] = 0

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.style(style).chunk(2, 1)
        if use_adain_kernel(x, gamma):
            from ..kernels import spade_norm

            return spade_norm.norm_denorm(x, gamma - 1, beta, slope=None)  # the kernel scales by 1 + its gamma
        return gamma[:, :, None, None] * self.norm(x) + beta[:, :, None, None]


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: only its batch size is used
        return self.input.expand(x.shape[0], -1, -1, -1)


class StyledConvBlock(nn.Module):
    def __init__(self, fin: int, fout: int, style_dim: int, initial: bool = False, fused: bool = False):
        super().__init__()
        if initial:
            self.conv1 = ConstantInput(fin)
        elif fused:
            self.conv1 = nn.Sequential(FusedUpsample(fin, fout, 3, padding=1), Blur(fout))
        else:
            up = nn.Upsample(scale_factor=2, mode="nearest")
            self.conv1 = nn.Sequential(up, EqualConv2d(fin, fout, 3, 1), Blur(fout))
        self.noise1 = NoiseInjection(fout)
        self.adain1 = AdaptiveInstanceNorm(fout, style_dim)
        self.lrelu1 = nn.LeakyReLU(0.2)
        self.conv2 = EqualConv2d(fout, fout, 3, 1)
        self.noise2 = NoiseInjection(fout)
        self.adain2 = AdaptiveInstanceNorm(fout, style_dim)
        self.lrelu2 = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x = self.adain1(self.lrelu1(self.noise1(self.conv1(x), noise)), style)
        return self.adain2(self.lrelu2(self.noise2(self.conv2(x), noise)), style)


class Synthesis(nn.Module):
    """The official `Generator`: constant 4x4 input, one styled block per resolution, a to_rgb each."""

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        ch, d = config.channels, config.style_dim
        self.progression = nn.ModuleList(
            StyledConvBlock(ch[max(i - 1, 0)], c, d, initial=i == 0, fused=config.fused and i >= FUSED_FROM)
            for i, c in enumerate(ch)
        )
        self.to_rgb = nn.ModuleList(EqualConv2d(c, 3, 1) for c in ch)

    def forward(self, styles: list, noise: list, step: int, alpha: float, layer_style: list[int]) -> torch.Tensor:
        out, prev = noise[0], None
        for i in range(step + 1):
            prev = out
            out = self.progression[i](out, styles[layer_style[i]], noise[i])
        rgb = self.to_rgb[step](out)
        if step > 0 and 0 <= alpha < 1:
            skip = F.interpolate(self.to_rgb[step - 1](prev), scale_factor=2, mode="nearest")
            rgb = (1 - alpha) * skip + alpha * rgb
        return rgb


def _describe(x: Any) -> str:
    return f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def split_noise(noise: torch.Tensor, step: int) -> list[torch.Tensor]:
    """(B, N) flat noise -> the official list of maps (B, 1, 4 * 2**i, 4 * 2**i), i = 0..step."""
    maps, start = [], 0
    for i in range(step + 1):
        s = 4 * 2**i
        maps.append(noise[:, start : start + s * s].reshape(-1, 1, s, s))
        start += s * s
    return maps


class StyleGANGenerator(nn.Module):
    """z (B, code_dim), or a list of them for style mixing -> image (B, 3, 4 * 2**step, ...) in about [-1, 1]."""

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        self.config = config
        self.generator = Synthesis(config)
        layers: list[nn.Module] = [PixelNorm()]
        for _ in range(config.n_mlp):
            layers += [EqualLinear(config.code_dim, config.code_dim), nn.LeakyReLU(0.2)]
        self.style = nn.Sequential(*layers)

    def _z(self, z: Any, what: str, batch: int | None = None) -> torch.Tensor:
        d = self.config.code_dim
        if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() != 2 or z.shape[1] != d:
            raise InputError(f"stylegan: {what} must be a float tensor of shape (B, {d}), got {_describe(z)}")
        if batch is not None and z.shape[0] != batch:
            raise InputError(f"stylegan: {what} has batch {z.shape[0]}, the first z {batch}")
        return z

    def _step(self, step: Any) -> int:
        m = self.config.max_step
        if step is None:
            return self.config.step
        if not _is_int(step) or not 0 <= step <= m:
            raise InputError(f"stylegan: step must be an int in 0..{m} (4 to {4 * 2**m} px), got {step!r}")
        return step

    def _noise(self, noise: Any, step: int, batch: int, z: torch.Tensor) -> list[torch.Tensor]:
        if noise is None:  # as the official forward: fresh maps from the global generator, 4x4 first
            return [torch.randn(batch, 1, 4 * 2**i, 4 * 2**i, device=z.device).to(z.dtype) for i in range(step + 1)]
        if not isinstance(noise, (list, tuple)) or len(noise) < step + 1:
            raise InputError(
                f"stylegan: noise must be a list of at least step + 1 = {step + 1} maps (one per resolution "
                f"from 4x4), got {len(noise) if isinstance(noise, (list, tuple)) else _describe(noise)}"
            )
        for i, n in enumerate(noise[: step + 1]):
            s = 4 * 2**i
            ok = isinstance(n, torch.Tensor) and n.is_floating_point() and n.shape in ((batch, 1, s, s), (1, 1, s, s))
            if not ok:
                raise InputError(
                    f"stylegan: noise[{i}] must be a float tensor ({batch} or 1, 1, {s}, {s}), got {_describe(n)}"
                )
        return list(noise[: step + 1])

    def _layer_styles(self, n: int, step: int, mixing_range: Any, inject_index: Any) -> list[int]:
        """Which style each block 0..step takes."""
        if not (isinstance(mixing_range, (tuple, list)) and len(mixing_range) == 2 and all(map(_is_int, mixing_range))):
            raise InputError(f"stylegan: mixing_range must be two ints (lo, hi), or (-1, -1), got {mixing_range!r}")
        blocks = range(step + 1)
        if tuple(mixing_range) != (-1, -1):
            if n < 2 or inject_index is not None:
                raise InputError("stylegan: mixing_range mixes two styles: give [z, z2] (and no inject_index)")
            lo, hi = mixing_range
            return [int(lo <= i <= hi) for i in blocks]
        if inject_index is None:
            if n == 1:
                return [0] * (step + 1)
            if step < n - 1:
                raise InputError(
                    f"stylegan: mixing {n} styles needs {n - 1} crossovers drawn from range(step) = range({step}): "
                    f"step must be at least {n - 1}"
                )
            inject_index = random.sample(list(range(step)), n - 1)  # the official draw (Python's global random)
        cuts = list(inject_index) if isinstance(inject_index, (list, tuple)) else [None]
        if len(cuts) != n - 1 or len(set(cuts)) != n - 1 or not all(_is_int(c) and 0 <= c < step for c in cuts):
            raise InputError(
                f"stylegan: inject_index must be {n - 1} distinct block indices in range(step) = range({step}) "
                f"for {n} styles, got {inject_index!r}"
            )
        return [sum(c < i for c in cuts) for i in blocks]

    def forward(
        self,
        input: torch.Tensor | Sequence[torch.Tensor],
        noise: Sequence[torch.Tensor] | None = None,
        step: int | None = None,
        alpha: float = -1,
        mean_style: torch.Tensor | None = None,
        style_weight: float = 0,
        mixing_range: tuple[int, int] = (-1, -1),
        *,
        inject_index: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """The official StyledGenerator.forward; `step=None` is the config's size, `inject_index` fixes crossovers."""
        zs = list(input) if isinstance(input, (list, tuple)) else [input]
        if not zs:
            raise InputError("stylegan: input must be z or a non-empty list of z's")
        batch = self._z(zs[0], "z").shape[0]
        zs = [self._z(z, f"z number {i}", batch) for i, z in enumerate(zs)]
        step = self._step(step)
        if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and (alpha == -1 or 0 <= alpha <= 1)):
            raise InputError(f"stylegan: alpha must be in [0, 1] (or -1, the official default: no fade), got {alpha!r}")
        layer_style = self._layer_styles(len(zs), step, mixing_range, inject_index)
        styles = [self.style(z) for z in zs]
        noise = self._noise(noise, step, batch, zs[0])
        if mean_style is not None:
            d = self.config.style_dim
            if not isinstance(mean_style, torch.Tensor) or mean_style.shape not in ((1, d), (batch, d)):
                raise InputError(
                    f"stylegan: mean_style must be a tensor (1, {d}) (model.mean_style(z)), got {_describe(mean_style)}"
                )
            styles = [mean_style + style_weight * (s - mean_style) for s in styles]
        elif style_weight != 0:
            raise InputError("stylegan: style_weight truncates towards mean_style: pass mean_style=model.mean_style(z)")
        return self.generator(styles, noise, step, alpha, layer_style)

    def mean_style(self, input: torch.Tensor) -> torch.Tensor:
        """The mean style (1, style_dim) of a batch of z, as the official helper."""
        return self.style(self._z(input, "z")).mean(0, keepdim=True)

    @torch.no_grad()
    def get_mean_style(self) -> torch.Tensor:
        """The truncation centre (1, style_dim), as generate.py's `get_mean_style`: `mean_style` of 10
        batches of 1024 z ~ N(0, I), summed and divided by 10; the z from a torch.Generator seeded with
        MEAN_STYLE_SEED. Computed once per set of mapping weights (cached on the instance, recomputed when
        they change) and outside any trace, so that an exported graph holds it as a constant."""
        params = list(self.style.parameters())
        key = tuple((p.device, p.dtype, p.data_ptr(), p._version) for p in params)
        cached = self.__dict__.get("_mean_style_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        tracing = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)
        try:
            with torch.inference_mode(False), torch.no_grad():  # a plain tensor, also under inference_mode
                g = torch.Generator().manual_seed(MEAN_STYLE_SEED)
                w = params[0]
                mean = None
                for _ in range(10):
                    style = self.mean_style(torch.randn(1024, self.config.code_dim, generator=g).to(w.device, w.dtype))
                    mean = style if mean is None else mean + style
                mean = (mean / 10).detach()
        finally:
            torch._C._set_tracing_state(tracing)
        self.__dict__["_mean_style_cache"] = (key, mean)
        return mean

    def signature(self) -> Signature:
        c = self.config
        inputs = (
            Input("z", "latent", size=c.code_dim),
            Input("noise", "latent", size=c.noise_size),
            Input("truncation", "scalar", default=1.0, low=0.0, high=1.0),
        )
        return Signature(inputs, channels=3, spatial="fixed", size=(c.size, c.size))

    def prepare_inputs(self, z: torch.Tensor, noise: torch.Tensor, truncation: torch.Tensor | None = None) -> tuple:
        """Engine inputs z (B, code_dim), flat noise (B, noise_size) and ψ (B,) -> `forward`'s arguments:
        (z, maps, step), and with ψ (z, maps, step, -1, get_mean_style(), ψ as (B, 1)), the official
        truncation of every style towards the mean one (ψ = 1: none, up to rounding)."""
        c = self.config
        z = self._z(z, "z")
        if not isinstance(noise, torch.Tensor) or noise.dim() != 2 or noise.shape != (z.shape[0], c.noise_size):
            raise InputError(
                f"stylegan: noise must be a float tensor ({z.shape[0]}, {c.noise_size}) (every map from 4x4 to "
                f"{c.size}x{c.size}, flattened), got {_describe(noise)}"
            )
        maps = split_noise(noise.to(z.dtype), c.step)
        if truncation is None:
            return z, maps, c.step
        if not isinstance(truncation, torch.Tensor) or truncation.shape != (z.shape[0],):
            raise InputError(f"stylegan: truncation must be a tensor ({z.shape[0]},), got {_describe(truncation)}")
        if validating() and not bool(((truncation >= 0) & (truncation <= 1)).all()):
            raise InputError("stylegan: truncation (psi) must be in [0, 1]")
        return z, maps, c.step, -1, self.get_mean_style().to(z.dtype), truncation.to(z.dtype)[:, None]


# ---------------------------------------------------------------------------------------------
# official checkpoints


def stylegan_hints(expected: dict, got: dict, config: StyleGANConfig) -> list[str]:
    """Options that likely differ, read from the shapes of a checkpoint's generator."""
    hints = []
    if any(k.startswith("from_rgb.") for k in got):
        hints.append("this is a discriminator state dict, not a generator")

    def blocks(s: dict, key: str) -> dict[int, tuple]:  # block index -> the shape of its `key`
        pattern = re.compile(rf"generator\.progression\.(\d+)\.{re.escape(key)}")
        return {int(m.group(1)): v for k, v in s.items() if (m := pattern.fullmatch(k))}

    widths = lambda s: tuple(v[0] for _, v in sorted(blocks(s, "conv2.conv.weight_orig").items()))
    if widths(got) != widths(expected):
        hints.append(f"channels: the checkpoint's blocks are {widths(got)} wide, not {widths(expected)}")
    fused = lambda s: sorted(blocks(s, "conv1.0.weight"))
    if fused(got) != fused(expected):
        hints.append(f"fused: the checkpoint upsamples with the fused conv in blocks {fused(got) or 'none'}")
    k = "style.1.linear.weight_orig"
    if k in got and k in expected and got[k][1] != expected[k][1]:
        hints.append(f"code_dim: the checkpoint's z has {got[k][1]} values")
    mlp = lambda s: sum(bool(re.fullmatch(r"style\.\d+\.linear\.weight_orig", k)) for k in s)
    if mlp(got) != mlp(expected):
        hints.append(f"n_mlp: the checkpoint's mapping has {mlp(got)} layers")
    return hints


def read_stylegan_checkpoint(path: str | os.PathLike) -> dict:
    """The generator's tensors of a rosinality checkpoint, read weights-only (`load_official` checks them).

    A phase-end file (`train_step-N.model`: generator, discriminator, both optimizers, g_running)
    gives its `g_running` entry, the running average generate.py samples from; a bare state dict
    (the `NNNNNN.model` running-average files) is taken as it is. NVlabs `.pkl` files are refused unread.
    """
    from .official import _load_pth, check_tensors  # official imports this module

    what = os.fspath(path)
    if Path(path).suffix.lower() == ".pkl":
        raise CheckpointError(
            f"{what}: an NVlabs StyleGAN pickle: loading it runs the Python code it carries (dnnlib "
            "classes), so rtgan does not read it; rtgan loads rosinality/style-based-gan-pytorch checkpoints "
            "(torch.save of state dicts: the README's phase-end checkpoints)"
        )
    raw = _load_pth(path)
    if isinstance(raw, Mapping) and "g_running" in raw:
        raw, what = raw["g_running"], f"{what}, entry 'g_running'"
    elif isinstance(raw, Mapping) and "generator" in raw:
        raise CheckpointError(
            f"{what}: a training checkpoint without a 'g_running' entry (it holds {sorted(map(str, raw))}); "
            "the running-average generator is the one to sample from"
        )
    state = check_tensors(raw, what)
    if state and all(k.startswith("module.") for k in state):  # saved from the trainer's DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state
