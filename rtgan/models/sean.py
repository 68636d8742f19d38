"""SEAN (Zhu et al., CVPR 2020) as ZPdesu/SEAN builds it: a SPADE generator whose every norm is an ACE layer,
and the Zencoder that pools a style image into one style code per semantic region.

Parameter names match that repository's `latest_net_G.pth` (`Zencoder.model.N`, `head_0.ace_0.fc_mu3`,
`up_0.ace_s.Spade.mlp_shared.0`, ...), so its files load strictly. `codes = model.encode(style_image,
semantics)` is the official Zencoder; `model(semantics, style=codes, noise=maps)` the generator's forward
with the codes given, which is the official UI mode (`obj_dic[str(j)]['ACE']`) and, with the Zencoder's
codes of a style image, its test mode.

Details of the official code kept because they change the image:
- An ACE layer is a batch norm without affine terms (the official sync batch norm: at eval, running
  statistics, eps 1e-5) of x + noise * noise_var, the noise one map per layer (B, 1, H, W) shared by
  every channel, then x * (1 + gamma) + beta with gamma = a * gamma_style + (1 - a) * gamma_spade,
  a = sigmoid(blending_gamma) (beta alike). The style branch is a 3x3 conv over the style map; the
  SPADE branch the usual label-map MLP (`Spade`), whose own parameter-free norm (`norm_G`'s kind) is
  built, in the state dict, and never run. The ACE norm is a batch norm whatever `norm_G` says.
- The style map: each pixel takes relu(fc_mu_j(code_j)) of the last semantic channel j that is non-zero
  there (the official loop scatters channel after channel), zero where none is. With instance edges the
  edge channel is the last one, so on edge pixels its style replaces the class style.
- There are always 19 `fc_mu` layers (the official count is hard-coded), so at most 19 semantic
  channels; up_3 has no style branch (`use_rgb=False`): SPADE only, though its blending weights exist.
- The Zencoder: reflection pad, 3x3 conv to 32, two stride-2 convs (64, 128), a stride-2 transposed
  conv to 256, instance norms (the last one declared for 64 channels runs on 256: no parameters, so
  the same), leaky ReLU 0.2, reflection pad, 3x3 conv to style_length, tanh; at half the image size.
  A region's code is the mean of that map over the region's pixels (the label map resized nearest),
  zero for an absent region; the edge channel gets a code of its own.
- The generator starts from the label map resized (nearest) to (crop_size / 2**n / aspect_ratio,
  crop_size / 2**n) whatever the input size, so it always paints that grid times 2**n.
- The noise: `torch.randn(B, W, H, 1)` per ACE call, transposed to (B, 1, H, W), in call order (a
  block's ace_s first, then ace_0, ace_1); `noise=None` draws it the same way from the global
  generator, so a seeded run reproduces the official one. 18 maps for the released config.
- `num_upsampling_layers='most'` builds an up_4 that the forward never calls and a conv_img for ngf / 2
  channels that then fails; rtgan refuses it. `style_length` (the official code: 512 everywhere) is a
  parameter; the Zencoder's inner widths (32 ... 256) are fixed, as in the official code.

Per-class loops as graphs: the codes go through fc_mu0 .. fc_mu(semantic_nc - 1) as a static loop (a
fixed count, no data-dependent branch), the per-pixel choice of class is an integer max over the
channels, and the style map is one gather (`F.embedding`) of those rows, a zero row for pixels of no
channel; the Zencoder's per-region means are a batched matmul of the region masks with the code map,
divided by the pixel counts (at least 1: an absent region's sum is 0). At eval the ACE batch norm is
written out from its running statistics, so that the export needs no static channel count.

Engines (`signature()`): labels (+ instance), `style` (per-class codes (semantic_nc, style_length),
the `styles` kind, or, with `style_input='image'`, a uint8 RGB style image of the output size whose
regions are the input labels, as the test mode), and `noise` (B, N), every layer's map flattened
row-major in call order (`noise_layout`); the engine draws noise N(0, I) and codes U(-1, 1) with its
seeded generator when not given. A `style_input='codes'` engine also holds the style encoder
(`style_encoder_inputs`, `encode_inputs`): a uint8 style image of the output size and its label ids
(+ instance ids) -> the codes, the Zencoder's per-region means, so that `Engine.encode_style(image,
labels)` then `Engine.run(labels, style=codes)` paints what a `style_input='image'` engine paints.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ..errors import InputError
from ..signature import Input, Signature
from .config import GeneratorConfig
from .labels import check_semantics, prepare_semantics, validating
from .spade import SPADE, SPADEConfig

FC_MU = 19  # per-class linear layers in every styled ACE layer, hard-coded in the official code
_UP_LAYERS = {"normal": 5, "more": 6}
_BLOCKS = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")


@dataclasses.dataclass(frozen=True)
class SEANConfig(GeneratorConfig):
    """The official options of `SPADEGenerator` in ZPdesu/SEAN; the defaults are CelebAMask-HQ's.

    `style_length` is the width of the style codes (the official code hard-codes 512). `style_input`
    (rtgan's) says what an engine's `style` input is: per-class `codes` or a style `image`.
    """

    arch = "sean"
    derived = ("semantic_nc",)

    label_nc: int = 19
    contain_dontcare_label: bool = False
    no_instance: bool = True
    crop_size: int = 256
    aspect_ratio: float = 1.0
    ngf: int = 64
    norm_G: str = "spectralspadesyncbatch3x3"
    num_upsampling_layers: str = "normal"
    style_length: int = 512
    style_input: str = "codes"

    def __post_init__(self):
        self._check_label_ids()
        for k in ("label_nc", "ngf", "style_length", "crop_size"):
            self._require(getattr(self, k) > 0, f"{k} must be positive, got {getattr(self, k)}")
        self._require(
            self.num_upsampling_layers in _UP_LAYERS,
            f"num_upsampling_layers must be one of {list(_UP_LAYERS)}, got {self.num_upsampling_layers!r} "
            "('most' builds an up_4 the official forward never runs and a conv_img it cannot feed)",
        )
        self._require(
            self.semantic_nc <= FC_MU,
            f"at most {FC_MU} semantic channels (the official fc_mu0..fc_mu18), got {self.semantic_nc} "
            f"(label_nc {self.label_nc} + don't-care {int(self.contain_dontcare_label)} + "
            f"instance edge {int(not self.no_instance)})",
        )
        ok = self.style_input in ("codes", "image")
        self._require(ok, f"style_input must be 'codes' or 'image', got {self.style_input!r}")
        self._require(self.aspect_ratio > 0, f"aspect_ratio must be positive, got {self.aspect_ratio}")
        sh, sw = self.latent_size
        self._require(
            sh >= 1 and sw >= 1, f"crop_size {self.crop_size} is too small for {self.num_up_layers} 2x stages"
        )
        _ = self.spade_norm

    # derived as SPADE's options (norm_G: spectral convs, the SPADE branch's never-run norm, its kernel size)
    num_classes = SPADEConfig.num_classes
    semantic_nc = SPADEConfig.semantic_nc
    num_up_layers = SPADEConfig.num_up_layers
    spade_norm = SPADEConfig.spade_norm
    latent_size = SPADEConfig.latent_size

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every image: the latent grid times 2**n."""
        sh, sw = self.latent_size
        return sh * 2**self.num_up_layers, sw * 2**self.num_up_layers

    @property
    def block_scales(self) -> tuple[int, ...]:
        """Each block's resolution over the latent grid's (a 2x upsampling before each increase)."""
        more = int(self.num_upsampling_layers == "more")
        return tuple(2**e for e in (0, 1, 1 + more, 2 + more, 3 + more, 4 + more, 5 + more))

    @property
    def noise_layout(self) -> tuple[tuple[str, int, int], ...]:
        """(official layer name, H, W) of every noise map, in the official call order."""
        (sh, sw), out = self.latent_size, []
        for i, (block, s) in enumerate(zip(_BLOCKS, self.block_scales)):
            shortcut = ("ace_s",) if i >= 3 else ()  # up_0 .. up_3 change width: a learned shortcut, run first
            out += [(f"{block}.{ace}", sh * s, sw * s) for ace in (*shortcut, "ace_0", "ace_1")]
        return tuple(out)

    @property
    def noise_size(self) -> int:
        return sum(h * w for _, h, w in self.noise_layout)

    def check_size(self, h: int, w: int) -> None:
        if (h, w) != self.size:
            raise InputError(
                f"sean paints {self.size[0]}x{self.size[1]} only (crop_size {self.crop_size}, aspect_ratio "
                f"{self.aspect_ratio}), not {h}x{w}"
            )


# ---------------------------------------------------------------------------------------------
# layers (names and registration order as the official code, so state dicts match key for key)


class ACE(nn.Module):
    """Noise, batch norm, and the blend of the style branch (per-region codes) and the SPADE branch."""

    def __init__(self, norm_nc: int, label_nc: int, spade_norm: str, ks: int, style_length: int, use_rgb: bool):
        super().__init__()
        self.blending_gamma = nn.Parameter(torch.zeros(1))
        self.blending_beta = nn.Parameter(torch.zeros(1))
        self.noise_var = nn.Parameter(torch.zeros(norm_nc))
        self.Spade = SPADE(norm_nc, label_nc, spade_norm, ks)  # its mlp only: the norm is never run
        self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        self.use_rgb = use_rgb
        if use_rgb:
            for j in range(FC_MU):
                setattr(self, f"fc_mu{j}", nn.Linear(style_length, style_length))
            self.conv_gamma = nn.Conv2d(style_length, norm_nc, 3, padding=1)
            self.conv_beta = nn.Conv2d(style_length, norm_nc, 3, padding=1)

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        """The batch norm; at eval spelled out, (x - mean) / sqrt(var + eps) as PyTorch's CPU kernel folds it,
        so that an ONNX export needs no static channel count (the noise map's is not known)."""
        bn = self.param_free_norm
        if bn.training or bn.running_var is None:
            return bn(x)
        inv = 1 / torch.sqrt(bn.running_var + bn.eps)
        return x * inv[:, None, None] - (bn.running_mean * inv)[:, None, None]

    def style_map(self, seg: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """(B, S, H, W): at each pixel relu(fc_mu_j(style[:, j])) of the last non-zero channel j of seg, or 0."""
        b, c, h, w = seg.shape
        mu = torch.stack([getattr(self, f"fc_mu{j}")(style[:, j]) for j in range(c)], 1).relu()  # (B, C, S)
        rows = torch.cat([mu, mu.new_zeros(b, 1, mu.shape[2])], 1).flatten(0, 1)  # row C of each sample: 0
        order = torch.arange(1, c + 1, dtype=torch.int32, device=seg.device).view(1, c, 1, 1)
        last = ((seg != 0).int() * order).amax(1)  # 1 + the last non-zero channel; 0: none
        ids = torch.where(last > 0, last - 1, c).long()
        ids = ids + (c + 1) * torch.arange(b, device=seg.device).view(b, 1, 1)
        return F.embedding(ids, rows).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor, seg: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        normalized = self.norm(x + noise * self.noise_var[:, None, None])
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        actv = self.Spade.mlp_shared(seg)
        gamma, beta = self.Spade.mlp_gamma(actv), self.Spade.mlp_beta(actv)
        if self.use_rgb:
            middle = self.style_map(seg, style)
            a, b = torch.sigmoid(self.blending_gamma), torch.sigmoid(self.blending_beta)
            gamma = a * self.conv_gamma(middle) + (1 - a) * gamma
            beta = b * self.conv_beta(middle) + (1 - b) * beta
        return normalized * (1 + gamma) + beta


class SEANResBlock(nn.Module):
    """The official SPADEResnetBlock of SEAN: ACE norms, spectral-norm convs, a learned shortcut when widths differ."""

    def __init__(self, fin: int, fout: int, config: SEANConfig, use_rgb: bool = True):
        super().__init__()
        spectral, norm, ks = config.spade_norm
        sn = spectral_norm if spectral else (lambda m: m)
        self.learned_shortcut = fin != fout
        fmid = min(fin, fout)
        self.conv_0 = sn(nn.Conv2d(fin, fmid, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fmid, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
        ace = lambda n: ACE(n, config.semantic_nc, norm, ks, config.style_length, use_rgb)  # noqa: E731
        self.ace_0 = ace(fin)
        self.ace_1 = ace(fmid)
        if self.learned_shortcut:
            self.ace_s = ace(fin)

    def forward(self, x: torch.Tensor, seg: torch.Tensor, style: torch.Tensor, noise: Mapping) -> torch.Tensor:
        x_s = self.conv_s(self.ace_s(x, seg, style, noise["ace_s"])) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.ace_0(x, seg, style, noise["ace_0"]), 0.2))
        dx = self.conv_1(F.leaky_relu(self.ace_1(dx, seg, style, noise["ace_1"]), 0.2))
        return x_s + dx


class Zencoder(nn.Module):
    """Style image (B, 3, H, W) in [-1, 1] and its semantic map -> per-region codes (B, C, style_length)."""

    def __init__(self, input_nc: int = 3, output_nc: int = 512, ngf: int = 32):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(input_nc, ngf, 3), nn.InstanceNorm2d(ngf), act()]
        for mult in (1, 2):
            down = nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1)
            layers += [down, nn.InstanceNorm2d(ngf * mult * 2), act()]
        layers += [nn.ConvTranspose2d(ngf * 4, ngf * 8, 3, stride=2, padding=1, output_padding=1)]
        layers += [nn.InstanceNorm2d(ngf * 8), act()]  # official: InstanceNorm2d(128 / 2), parameter-free
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(256, output_nc, 3), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        codes = self.model(image)
        seg = F.interpolate(seg, size=codes.shape[2:], mode="nearest")
        masks = (seg != 0).to(codes.dtype).flatten(2)  # (B, C, hw)
        sums = torch.bmm(masks, codes.flatten(2).transpose(1, 2))  # (B, C, S)
        return sums / masks.sum(2, keepdim=True).clamp_min(1)


def _describe(x: Any) -> str:
    return f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


class SEANGenerator(nn.Module):
    """Label map (one-hot, + instance edges) and per-region style codes -> image (B, 3, *config.size) in [-1, 1]."""

    def __init__(self, config: SEANConfig):
        super().__init__()
        self.config = config
        nf = config.ngf
        self.Zencoder = Zencoder(3, config.style_length)
        self.fc = nn.Conv2d(config.semantic_nc, 16 * nf, 3, padding=1)
        widths = (16, 16, 16, 16, 8, 4, 2, 1)
        for name, fin, fout in zip(_BLOCKS, widths, widths[1:]):
            setattr(self, name, SEANResBlock(fin * nf, fout * nf, config, use_rgb=name != "up_3"))
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def _weight(self) -> torch.Tensor:
        return self.conv_img.weight

    def prepare(self, labels: torch.Tensor, instance: torch.Tensor | None = None) -> torch.Tensor:
        """Integer label ids (B, [1,] H, W) and instance ids -> float semantic map (B, semantic_nc, H, W)."""
        c = self.config
        return prepare_semantics(labels, instance, c.num_classes, not c.no_instance, self._weight().dtype, c.label_ids)

    def encode(self, style_image: torch.Tensor, semantics: torch.Tensor) -> torch.Tensor:
        """Style image (B, 3, H, W) in [-1, 1] and its semantic map -> codes (B, semantic_nc, style_length)."""
        check_semantics(style_image, 3, self._weight(), "style_image")
        check_semantics(semantics, self.config.semantic_nc, self._weight())
        if style_image.shape[0] != semantics.shape[0]:
            raise InputError(f"sean: style_image has batch {style_image.shape[0]}, semantics {semantics.shape[0]}")
        return self.Zencoder(style_image, semantics)

    def draw_noise(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Every layer's map (batch, 1, H, W), drawn as the official ACE layers draw them (randn(B, W, H, 1)),
        in their call order: after `torch.manual_seed(s)`, the maps of the official forward under that seed."""
        w = self._weight()
        return {
            name: torch.randn(batch, wd, h, 1, generator=generator, device=w.device).permute(0, 3, 2, 1).to(w.dtype)
            for name, h, wd in self.config.noise_layout
        }

    def split_noise(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, noise_size) -> {layer name: (B, 1, H, W)}, each map row-major, in `noise_layout` order."""
        maps, start = {}, 0
        for name, h, w in self.config.noise_layout:
            maps[name] = flat[:, start : start + h * w].reshape(-1, 1, h, w)
            start += h * w
        return maps

    def _noise(self, noise: Any, batch: int) -> dict[str, torch.Tensor]:
        if noise is None:
            return self.draw_noise(batch)
        layout = self.config.noise_layout
        if not isinstance(noise, Mapping) or set(noise) != {n for n, _, _ in layout}:
            got = sorted(noise) if isinstance(noise, Mapping) else _describe(noise)
            raise InputError(
                f"sean: noise must map every ACE layer ({layout[0][0]} ... {layout[-1][0]}, {len(layout)} maps) "
                f"to a (B, 1, H, W) map, got {got}"
            )
        for name, h, w in layout:
            n = noise[name]
            if not (
                isinstance(n, torch.Tensor) and n.is_floating_point() and n.shape in ((batch, 1, h, w), (1, 1, h, w))
            ):
                want = f"({batch} or 1, 1, {h}, {w})"
                raise InputError(f"sean: noise[{name!r}] must be a float tensor {want}, got {_describe(n)}")
        return {k: v.to(self._weight().dtype) for k, v in noise.items()}

    def forward(
        self, semantics: torch.Tensor, style: torch.Tensor, noise: Mapping[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """`style`: codes (B, semantic_nc, style_length) (`encode`, or saved ones); `noise`: {layer name: map}
        (`draw_noise`, `split_noise`), None to draw it as the official forward does."""
        c = self.config
        check_semantics(semantics, c.semantic_nc, self._weight())
        b = semantics.shape[0]
        want = (b, c.semantic_nc, c.style_length)
        if not isinstance(style, torch.Tensor) or style.shape != want or style.dtype != self._weight().dtype:
            raise InputError(
                f"sean: style must be {self._weight().dtype} codes of shape {want} (model.encode(image, semantics)), "
                f"got {_describe(style)}"
            )
        if validating() and not bool(torch.isfinite(style).all()):
            raise InputError("sean: style contains NaN or infinite values")
        noise = self._noise(noise, b)
        x = self.fc(F.interpolate(semantics, size=c.latent_size))
        previous = 1
        for name, scale in zip(_BLOCKS, c.block_scales):
            if scale > previous:
                x = F.interpolate(x, scale_factor=2)
            previous, prefix = scale, name + "."
            maps = {k[len(prefix) :]: v for k, v in noise.items() if k.startswith(prefix)}
            x = getattr(self, name)(x, semantics, style, maps)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))

    # engines

    def signature(self) -> Signature:
        c = self.config
        ids = tuple(c.label_ids) if c.label_ids is not None else None
        inputs = [Input("labels", "labels", classes=c.num_classes, ids=ids)]
        inputs += [] if c.no_instance else [Input("instance", "instance")]
        if c.style_input == "image":
            inputs.append(Input("style", "image"))
        else:
            inputs.append(Input("style", "styles", size=c.style_length, classes=c.semantic_nc))
        inputs.append(Input("noise", "latent", size=c.noise_size))
        return Signature(tuple(inputs), spatial="fixed", size=c.size)

    def label_convs(self) -> list[str]:
        """The convs whose input is the one-hot label map (at some scale), for the export's label gather."""
        return ["fc"] + [f"{name}.Spade.mlp_shared.0" for name, m in self.named_modules() if isinstance(m, ACE)]

    def style_image(self, style: torch.Tensor) -> torch.Tensor:
        """uint8 RGB (B, H, W, 3) -> (B, 3, H, W) in [-1, 1], as the official ToTensor + Normalize(0.5, 0.5)."""
        ok = isinstance(style, torch.Tensor) and style.dtype == torch.uint8 and style.dim() == 4
        if not ok or style.shape[3] != 3:
            raise InputError(f"sean: style must be a uint8 RGB image tensor (B, H, W, 3), got {_describe(style)}")
        return (style.permute(0, 3, 1, 2).to(self._weight().dtype) / 255 - 0.5) / 0.5

    def style_encoder_inputs(self) -> tuple[str, ...] | None:
        """The inputs of the style-encoder graph an export writes beside a codes engine (None: an image engine,
        which encodes inside its graph): the style image, the labels and, with instance edges, the instance ids."""
        if self.config.style_input != "codes":
            return None
        return ("style", "labels") + (() if self.config.no_instance else ("instance",))

    def encode_inputs(
        self, style: torch.Tensor, labels: torch.Tensor, instance: torch.Tensor | None = None
    ) -> torch.Tensor:
        """uint8 RGB style image(s) (B, H, W, 3) and their label ids (+ instance ids) -> codes (B, semantic_nc,
        style_length): `encode(image, prepare(labels, instance))`, the image normalized as `prepare_inputs` does."""
        return self.encode(self.style_image(style), self.prepare(labels, instance))

    def prepare_inputs(self, labels, instance=None, style=None, noise=None) -> tuple:
        """The signature's inputs -> `forward`'s arguments: `model(*model.prepare_inputs(**inputs))`."""
        c, dtype = self.config, self._weight().dtype
        semantics = self.prepare(labels, instance)
        if c.style_input == "image":
            style = self.encode(self.style_image(style), semantics)
        if not isinstance(noise, torch.Tensor) or noise.dim() != 2 or noise.shape[1] != c.noise_size:
            raise InputError(f"sean: noise must be a float tensor (B, {c.noise_size}), got {_describe(noise)}")
        return semantics, style.to(dtype), self.split_noise(noise.to(dtype))


# ---------------------------------------------------------------------------------------------
# official checkpoints


def sean_hints(expected: dict, got: dict, config: SEANConfig) -> list[str]:
    """Options that likely differ, read from the shapes of a `latest_net_G.pth`."""
    hints = []
    if not any(k.startswith("Zencoder.") for k in got):
        hints.append("this is not a SEAN generator (no Zencoder.* keys): a SPADE checkpoint? use arch='spade'")
    k = "head_0.conv_0.weight_orig" if "head_0.conv_0.weight_orig" in got else "head_0.conv_0.weight"
    if k in got and got[k][0] != 16 * config.ngf:
        hints.append(f"ngf: the checkpoint's head is {got[k][0]} wide, i.e. ngf={got[k][0] // 16}")
    k = "Zencoder.model.14.weight"
    if k in got and got[k][0] != config.style_length:
        hints.append(f"style_length: the checkpoint's codes are {got[k][0]} wide")
    k = "fc.weight"
    if k in got and k in expected and got[k][1] != expected[k][1]:
        hints.append(
            f"label count: the checkpoint's fc takes {got[k][1]} channels, these options give {expected[k][1]} "
            "(label_nc + contain_dontcare_label + the instance-edge channel unless no_instance)"
        )
    k = "head_0.ace_0.Spade.mlp_shared.0.weight"
    if k in got and k in expected and got[k][2:] != expected[k][2:]:
        hints.append(f"norm_G kernel size: the checkpoint's SPADE convs are {got[k][2]}x{got[k][3]}")
    spade_bn = lambda s: any(k.endswith("Spade.param_free_norm.running_mean") for k in s)  # noqa: E731
    if spade_bn(got) != spade_bn(expected):
        hints.append(
            "norm_G: the checkpoint's SPADE branches "
            + ("have running statistics (spadesyncbatch)" if spade_bn(got) else "have none (spadeinstance)")
        )
    sn = lambda s: any(k.endswith("weight_orig") for k in s)  # noqa: E731
    if sn(got) != sn(expected):
        hints.append(f"norm_G: the checkpoint {'has' if sn(got) else 'has no'} spectral norm ('spectral' prefix)")
    if any(k.startswith("up_4.") for k in got):
        hints.append("num_upsampling_layers: the checkpoint has up_4 ('most'), which the official forward cannot run")
    return hints
