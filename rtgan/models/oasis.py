"""OASIS (Schönfeld, Sushko et al., ICLR 2021) as boschresearch/OASIS builds it (`OASIS_Generator`).

Parameter names match that repository's checkpoints (`fc`, `body.N.conv_0.weight_orig`,
`body.N.norm_0.first_norm.running_mean`, `conv_img`), so its `best_EMA.pth` files load strictly.
`model(model.prepare(labels), z=z)` is the official forward with the 3D noise made an input.

Details of the official code kept because they change the image:
- The noise: z (B, z_dim) is broadcast over the label map and concatenated *before* the one-hot
  channels; that (z ⊕ labels) map is the input of `fc` (after nearest resizing to the latent grid)
  and of every SPADE's `mlp_shared.0` (nearest-resized to the block's size). The official forward
  ignores its `z` argument and draws `torch.randn(B, z_dim)` itself; here `z=None` draws the same
  way (seed torch for the official draw), a given z is used, and `noise=` takes a full per-pixel
  (B, z_dim, H, W) map instead (the official code has only the broadcast one). `no_3dnoise` drops it.
- Six residual blocks from width to width of 16, 16, 16, 8, 4, 2, 1 x channels_G (`ResnetBlock_with_SPADE`,
  the SPADE block: learned 1x1 shortcut where widths change, leaky ReLU 0.2), nearest 2x upsampling
  between them (none after the last), then leaky ReLU 0.2, `conv_img` and tanh. The forward runs
  `num_res_blocks` of the six and `conv_img` takes channels_G, so only num_res_blocks=6 runs.
- The latent grid is crop_size / 2**(num_res_blocks - 1) wide and round(that / aspect_ratio) high;
  here, as rtgan's SPADE, it follows the label map (any multiple of 32; the same at the crop size).
- Spectral norm on conv_0, conv_1 and conv_s only, from the stored u, v (test.py calls eval(): no
  power iteration; recomputing sigma changes the image). `no_spectral_norm` (a NameError in the
  official norms.py, which never imports torch) builds plain convs.
- The parameter-free norm is `first_norm`: batch or sync batch norm (running statistics at eval),
  or instance norm; the SPADE hidden width is 128, its kernel `spade_ks`.
- Labels are the channel indices of the official dataloaders (`dataset_labels`): ADE20K's annotation
  ids as they are (0 = unknown), Cityscapes' labelIds 0..33 (channel 34 spare), COCO-Stuff's ids
  shifted by one with 255 -> 0 (unlabelled). No mode uses instance edges.

Engines (`signature()`): label ids and z (B, z_dim) in, the engine drawing z from N(0, I) with its
seeded generator when not given, so an image is determined by (labels, z). With `noise_regions`
M > 1 (rtgan's, for local noise) the engine also takes `noise_regions` (B, H, W), region ids in
[0, M) (the `regions` kind, all 0 when not given), and `z_regions` (B, M - 1, z_dim) (the
`latents` kind, drawn N(0, I)): the 3D noise at a pixel is z where its region is 0 and
z_regions[:, r - 1] where it is r, one gather in `prepare_inputs` feeding the forward's `noise=`. The blocks are rtgan's
SPADE modules (subclassed for the official names), so export folds spectral norm and the batch
norm's running statistics into them as for SPADE; the label-gather rewrite does not apply (the
label channels do not come first).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ..errors import InputError
from ..signature import Input, Signature
from .config import GeneratorConfig
from .labels import as_id_map, check_divisible, check_semantics, prepare_semantics, validating
from .spade import SPADE, SPADEResBlock

WIDTHS = (16, 16, 16, 8, 4, 2, 1)  # OASIS_Generator.channels, in units of channels_G
NORMS = ("syncbatch", "batch", "instance")
DATASET_MODES = ("ade20k", "cityscapes", "coco")


@dataclasses.dataclass(frozen=True)
class OASISConfig(GeneratorConfig):
    """The options `OASIS_Generator(opt)` reads; the dataset modes set label_nc, crop_size and aspect_ratio."""

    arch = "oasis"
    derived = ("semantic_nc",)

    label_nc: int = 182
    contain_dontcare_label: bool = True
    crop_size: int = 256
    aspect_ratio: float = 1.0
    channels_G: int = 64
    num_res_blocks: int = 6
    z_dim: int = 64
    no_3dnoise: bool = False
    param_free_norm: str = "syncbatch"
    spade_ks: int = 3
    no_spectral_norm: bool = False
    # Not an official option (rtgan's): how many noise regions an engine paints, region 0 with z and
    # regions 1.. with a latent each (`z_regions`); 1, the default, is the official broadcast z.
    noise_regions: int = 1

    def __post_init__(self):
        self._check_label_ids()
        for k in ("label_nc", "channels_G", "z_dim", "crop_size"):
            self._require(getattr(self, k) > 0, f"{k} must be positive, got {getattr(self, k)}")
        self._require(
            self.num_res_blocks == len(WIDTHS) - 1,
            f"num_res_blocks must be {len(WIDTHS) - 1}: the official generator always builds {len(WIDTHS) - 1} "
            f"blocks and its conv_img takes the last one's width, got {self.num_res_blocks}",
        )
        self._require(
            self.param_free_norm in NORMS, f"param_free_norm must be one of {NORMS}, got {self.param_free_norm!r}"
        )
        self._require(self.spade_ks % 2 == 1, f"spade_ks must be odd (padding spade_ks // 2), got {self.spade_ks}")
        self._require(self.aspect_ratio > 0, f"aspect_ratio must be positive, got {self.aspect_ratio}")
        self._require(self.noise_regions >= 1, f"noise_regions must be at least 1, got {self.noise_regions}")
        self._require(
            self.noise_regions == 1 or not self.no_3dnoise,
            f"noise_regions={self.noise_regions} paints regions of 3D noise, which no_3dnoise=True removes",
        )

    @property
    def semantic_nc(self) -> int:
        """The one-hot channels: label_nc plus the unknown class (index 0 in ADE20K and COCO-Stuff)."""
        return self.label_nc + int(self.contain_dontcare_label)

    @property
    def num_classes(self) -> int:
        return self.semantic_nc

    @property
    def noise_nc(self) -> int:
        return 0 if self.no_3dnoise else self.z_dim

    @property
    def factor(self) -> int:
        return 2 ** (self.num_res_blocks - 1)

    @property
    def latent_size(self) -> tuple[int, int]:
        """(h, w) of the official latent grid, as `compute_latent_vector_size`."""
        w = self.crop_size // self.factor
        return round(w / self.aspect_ratio), w

    @property
    def size(self) -> tuple[int, int]:
        """The official output (H, W): the crop size."""
        h, w = self.latent_size
        return h * self.factor, w * self.factor

    def check_size(self, h: int, w: int) -> None:
        check_divisible(h, w, self.factor, f"{self.num_res_blocks - 1} 2x upsamplings from the latent grid")
        if self.param_free_norm == "instance" and h * w == self.factor**2:
            raise InputError(f"spatial size {h}x{w} is too small: instance norm needs more than one latent pixel")


class OASISSPADE(SPADE):
    """The official norms.SPADE: rtgan's SPADE (its forward, hence its export rewrites) with the
    parameter-free norm stored as `first_norm` and batch, sync batch or instance norm."""

    def __init__(self, norm_nc: int, label_nc: int, norm: str = "syncbatch", kernel_size: int = 3, hidden: int = 128):
        nn.Module.__init__(self)
        # sync batch norm: BatchNorm2d's state-dict layout and, in eval mode, its arithmetic
        self.first_norm = (
            nn.InstanceNorm2d(norm_nc, affine=False) if norm == "instance" else nn.BatchNorm2d(norm_nc, affine=False)
        )
        pad = kernel_size // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)

    @property
    def param_free_norm(self) -> nn.Module:  # the name SPADE.forward and the rewrites read
        return self.first_norm


class OASISResBlock(SPADEResBlock):
    """The official ResnetBlock_with_SPADE: the SPADE block's forward, built with OASIS's SPADE layers."""

    def __init__(self, fin: int, fout: int, cond_nc: int, norm: str, kernel_size: int, spectral: bool):
        nn.Module.__init__(self)
        self.learned_shortcut = fin != fout
        fmid = min(fin, fout)
        sn = spectral_norm if spectral else (lambda m: m)
        self.conv_0 = sn(nn.Conv2d(fin, fmid, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fmid, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
        self.norm_0 = OASISSPADE(fin, cond_nc, norm, kernel_size)
        self.norm_1 = OASISSPADE(fmid, cond_nc, norm, kernel_size)
        if self.learned_shortcut:
            self.norm_s = OASISSPADE(fin, cond_nc, norm, kernel_size)
        self.actvn = nn.LeakyReLU(0.2)  # `activ` in the official code (no weights, so no key)


def _describe(x: Any) -> str:
    return f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


class OASISGenerator(nn.Module):
    """(B, semantic_nc, H, W) one-hot map (+ z or a noise map) -> image (B, 3, H, W) in [-1, 1]."""

    def __init__(self, config: OASISConfig):
        super().__init__()
        self.config = config
        c, ch = config, [w * config.channels_G for w in WIDTHS]
        cond = c.semantic_nc + c.noise_nc
        self.conv_img = nn.Conv2d(ch[-1], 3, 3, padding=1)
        spectral = not c.no_spectral_norm
        self.body = nn.ModuleList(
            OASISResBlock(fin, fout, cond, c.param_free_norm, c.spade_ks, spectral) for fin, fout in zip(ch, ch[1:])
        )
        self.fc = nn.Conv2d(cond, ch[0], 3, padding=1)

    def prepare(self, labels: torch.Tensor) -> torch.Tensor:
        """Label ids (B, [1,] H, W), the official dataloaders' channel indices -> one-hot (B, semantic_nc, H, W)."""
        c = self.config
        return prepare_semantics(labels, None, c.num_classes, False, self.conv_img.weight.dtype, c.label_ids)

    def prepare_inputs(
        self,
        labels: torch.Tensor,
        z: torch.Tensor | None = None,
        noise_regions: torch.Tensor | None = None,
        z_regions: torch.Tensor | None = None,
    ) -> tuple:
        """The signature's inputs -> `forward`'s arguments: `model(*model.prepare_inputs(**inputs))`.

        With `noise_regions` (B, H, W) ids in [0, noise_regions) and `z_regions` (B, M - 1, z_dim), the
        per-pixel noise map (B, z_dim, H, W): z where the region is 0, z_regions[:, r - 1] where it is r."""
        semantics = self.prepare(labels)
        if noise_regions is None and z_regions is None:
            return semantics, z
        return semantics, None, self.region_noise(z, noise_regions, z_regions, semantics.dtype)

    def region_noise(
        self, z: torch.Tensor, regions: torch.Tensor, z_regions: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """(B, z_dim) z, (B, H, W) region ids and (B, M - 1, z_dim) latents -> the (B, z_dim, H, W) noise map."""
        c = self.config
        m = c.noise_regions
        if c.no_3dnoise or m < 2:
            raise InputError(f"oasis: noise regions need noise_regions > 1 (this config has {m}) and 3D noise")
        ok = isinstance(regions, torch.Tensor) and regions.dim() == 3 and not regions.is_floating_point()
        if not ok:
            raise InputError(f"oasis: noise_regions must be integer region ids (B, H, W), got {_describe(regions)}")
        b, h, w = regions.shape
        if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.shape != (b, c.z_dim):
            raise InputError(f"oasis: z must be a float tensor ({b}, {c.z_dim}), got {_describe(z)}")
        want = (b, m - 1, c.z_dim)
        if not isinstance(z_regions, torch.Tensor) or not z_regions.is_floating_point() or z_regions.shape != want:
            raise InputError(f"oasis: z_regions must be a float tensor {want}, got {_describe(z_regions)}")
        if validating() and regions.numel() and not bool(((regions >= 0) & (regions < m)).all()):
            raise InputError(f"oasis: noise_regions ids must be in 0..{m - 1}")
        table = torch.cat([z[:, None], z_regions], 1).to(dtype).transpose(1, 2)  # (B, z_dim, M)
        index = regions.long().reshape(b, 1, h * w).expand(b, c.z_dim, h * w)
        return torch.gather(table, 2, index).reshape(b, c.z_dim, h, w)

    def _noise(self, semantics: torch.Tensor, z: Any, noise: Any) -> torch.Tensor | None:
        """The (B, z_dim, H, W) noise concatenated before the labels, or None with no_3dnoise."""
        c = self.config
        b, _, h, w = semantics.shape
        if c.no_3dnoise:
            if z is not None or noise is not None:
                raise InputError("oasis: z or noise was given but this model has no 3D noise (no_3dnoise=True)")
            return None
        if noise is not None:
            if z is not None:
                raise InputError("oasis: give z (B, z_dim), broadcast over the image, or a noise map, not both")
            want = (b, c.z_dim, h, w)
            if not isinstance(noise, torch.Tensor) or noise.shape != want or noise.dtype != semantics.dtype:
                raise InputError(f"oasis: noise must be a {semantics.dtype} tensor {want}, got {_describe(noise)}")
            return noise
        if z is None:  # as the official forward: a fresh draw from the global generator
            z = torch.randn(b, c.z_dim, dtype=torch.float32, device=semantics.device).to(semantics.dtype)
        elif not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.shape != (b, c.z_dim):
            raise InputError(f"oasis: z must be a float tensor ({b}, {c.z_dim}), got {_describe(z)}")
        if validating() and not bool(torch.isfinite(z).all()):
            raise InputError("oasis: z contains NaN or infinite values")
        return z.to(semantics.dtype)[:, :, None, None].expand(b, c.z_dim, h, w)

    def forward(
        self, semantics: torch.Tensor, z: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`z` (B, z_dim), broadcast as the official 3D noise (None: drawn as the official forward
        draws it), or `noise` (B, z_dim, H, W), a full per-pixel map."""
        c = self.config
        check_semantics(semantics, c.semantic_nc, self.conv_img.weight)
        _, _, h, w = semantics.shape
        c.check_size(h, w)
        noise = self._noise(semantics, z, noise)
        seg = semantics if noise is None else torch.cat([noise, semantics], 1)
        x = self.fc(F.interpolate(seg, size=(h // c.factor, w // c.factor)))
        for i, block in enumerate(self.body[: c.num_res_blocks]):
            x = block(x, seg)
            if i < c.num_res_blocks - 1:
                x = F.interpolate(x, scale_factor=2)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))

    def signature(self) -> Signature:
        c = self.config
        ids = tuple(c.label_ids) if c.label_ids is not None else None
        inputs = [Input("labels", "labels", classes=c.num_classes, ids=ids)]
        inputs += [] if c.no_3dnoise else [Input("z", "latent", size=c.z_dim)]
        if c.noise_regions > 1:
            inputs += [
                Input("noise_regions", "regions", classes=c.noise_regions),
                Input("z_regions", "latents", classes=c.noise_regions - 1, size=c.z_dim),
            ]
        return Signature(tuple(inputs), spatial="multiple", multiple=c.factor, size=c.size)


def dataset_labels(annotation: torch.Tensor, dataset_mode: str) -> torch.Tensor:
    """An annotation image's ids (B, [1,] H, W) -> the channel indices the official dataloader of
    `dataset_mode` feeds the generator: ADE20K and Cityscapes unchanged, COCO-Stuff + 1 with 255 -> 0."""
    if dataset_mode not in DATASET_MODES:
        raise InputError(f"oasis: dataset_mode must be one of {DATASET_MODES}, got {dataset_mode!r}")
    ids = as_id_map(annotation, "annotation").long()
    if dataset_mode != "coco":
        return ids
    ids = ids + 1
    return torch.where(ids == 256, torch.zeros_like(ids), ids)  # unknown class should be zero, as the official


# ---------------------------------------------------------------------------------------------
# official checkpoints


def oasis_hints(expected: dict, got: dict, config: OASISConfig) -> list[str]:
    """Options that likely differ, read from the shapes of a checkpoint's generator."""
    hints = []
    if any(k.startswith(("body_down.", "body_up.", "layer_up_last.")) for k in got):
        hints.append("this looks like an OASIS discriminator (best_D.pth); load best_EMA.pth or best_G.pth")
    if "fc.weight" in got and "fc.weight" in expected:
        (w_got, n_got), (w_exp, n_exp) = got["fc.weight"][:2], expected["fc.weight"][:2]
        if w_got != w_exp:
            hints.append(f"channels_G: the checkpoint's fc is {w_got} wide, i.e. channels_G={w_got // WIDTHS[0]}")
        if n_got != n_exp:
            hints.append(
                f"label_nc/contain_dontcare_label/z_dim/no_3dnoise: the checkpoint's fc takes {n_got} channels, "
                f"these options give {n_exp} (z_dim {config.noise_nc} + label_nc {config.label_nc} + "
                f"unknown {int(config.contain_dontcare_label)}); ADE20K 151, Cityscapes 35, COCO-Stuff 183, plus 64"
            )
    k = "body.0.norm_0.mlp_shared.0.weight"
    if k in got and k in expected and got[k][2:] != expected[k][2:]:
        hints.append(f"spade_ks: the checkpoint's SPADE convs are {got[k][2]}x{got[k][3]}")
    sn = lambda s: any(k.endswith("weight_orig") for k in s)
    if sn(got) != sn(expected):
        hints.append(f"no_spectral_norm={not sn(got)}: the checkpoint {'has' if sn(got) else 'has no'} spectral norm")
    bn = lambda s: any(k.endswith("first_norm.running_mean") for k in s)
    if bn(got) != bn(expected):
        hints.append(
            f"param_free_norm: the checkpoint {'has' if bn(got) else 'has no'} running statistics "
            f"({'syncbatch/batch' if bn(got) else 'instance'})"
        )
    if any(".param_free_norm." in k for k in got):
        hints.append("this is a SPADE checkpoint (param_free_norm keys): load it with arch 'spade'")
    blocks = lambda s: len({m.group(1) for k in s if (m := re.match(r"body\.(\d+)\.", k))})
    if blocks(got) != blocks(expected):
        hints.append(f"the checkpoint has {blocks(got)} residual blocks, the official generator {blocks(expected)}")
    return hints
