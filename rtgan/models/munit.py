"""MUNIT (Huang et al., ECCV 2018): two `AdaINGen` auto-encoders, translation = content of one, style of the other.

Parameter names match NVlabs/MUNIT `gen_*.pt` files, which hold `{'a': gen_a.state_dict(), 'b':
gen_b.state_dict()}`; `MUNITGenerator` keeps both generators whole as `gen_a` and `gen_b`, so its
state dict is that file with `gen_a.`/`gen_b.` prefixes (`munit_state_dict` makes it) and one model
translates either way (`a2b` picks the default). a -> b is the official test script's
`gen_b.decode(gen_a.encode(x_a)[0], s_b)`: the source generator's content encoder, the target
generator's MLP and decoder; a style image is encoded by the target generator's style encoder.
Both whole generators are kept (the unused halves cost memory, not time, and are not exported) so
that the file loads strictly and `a2b` can flip without another file.

`model(image, style)` takes float tensors; the engine's inputs (`signature()`) are `source`, uint8
RGB (B, H, W, 3), and `style_code` (B, style_dim), drawn from N(0, I) when not given, as test.py's
random styles (`prepare_inputs` maps them).

Details of the official code kept because they change the image:
- AdaIN normalizes with the instance statistics (biased variance, eps 1e-5); the MLP's output is
  read per AdaIN layer in module order, mean (the shift) first, then std (the scale). The layers'
  `running_mean`/`running_var` buffers are saved and never used (the official forward updates
  copies of them); they load here and stay unused.
- The decoder's LayerNorm normalizes each sample over (C, H, W) with the *unbiased* std, as
  `(x - mean) / (std + eps)`, then applies a per-channel gamma and beta.
- The style encoder always has 4 strided convs (the first two double the width) whatever
  n_downsample says, then global average pooling and a 1x1 conv.
- PyTorch 0.3 checkpoints also hold content-encoder InstanceNorm statistics, which the official
  test script deletes by a fixed list of names (`pytorch03_to_pytorch04`); exactly those names are
  dropped here, with a warning.

Sizes: every 4x4 stride-2 conv floors, so the official net turns an H x W image into one of
2^n * floor(H / 2^n) x 2^n * floor(W / 2^n) (a 130- or 131-pixel side comes back as 128). Here a
side that is not a multiple of 2^n_downsample is an InputError instead, as is one under
2 * 2^n_downsample (4 for n_downsample 0), where the official net fails too (instance norm of a
1-pixel bottleneck, a 3x3 reflection pad of it). The style encoder takes any size from 16 pixels
up (below that its fourth strided conv gets a 1-pixel input and the official code fails), so a
style image need not be a multiple of anything.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, InputError
from ..signature import Input, Signature
from .config import GeneratorConfig

ACTIVATIONS = ("relu", "lrelu", "prelu", "selu", "tanh", "none")
PAD_TYPES = ("reflect", "replicate", "zero")
STYLE_DOWNSAMPLE = 4  # AdaINGen builds its StyleEncoder with 4 strided convs, whatever n_downsample is

# What utils.pytorch03_to_pytorch04 deletes from each MUNIT generator before loading (a fixed list:
# the InstanceNorm statistics of PyTorch 0.3 for n_downsample 2 and n_res 4).
STALE_KEYS = tuple(
    f"enc_content.model.{m}.norm.running_{s}"
    for m in ("0", "1", "2", *(f"3.model.{r}.model.{c}" for r in range(4) for c in (1, 0)))
    for s in ("mean", "var")
)


@dataclasses.dataclass(frozen=True)
class MUNITConfig(GeneratorConfig):
    """The official YAML's `gen:` block (dim ... pad_type), `input_dim_a`/`input_dim_b` and `new_size`.

    `a2b` is test.py's `--a2b`: translate domain a -> b (True) or b -> a. `new_size` (the side test
    images are resized to) is only the engine's default size.
    """

    arch = "munit"

    dim: int = 64
    mlp_dim: int = 256
    style_dim: int = 8
    activ: str = "relu"
    n_downsample: int = 2
    n_res: int = 4
    pad_type: str = "reflect"
    input_dim_a: int = 3
    input_dim_b: int = 3
    new_size: int = 256
    a2b: bool = True

    def __post_init__(self):
        for k in ("dim", "mlp_dim", "style_dim", "n_res", "new_size"):
            self._require(getattr(self, k) > 0, f"{k} must be positive, got {getattr(self, k)}")
        self._require(self.n_downsample >= 0, f"n_downsample must be >= 0, got {self.n_downsample}")
        for k in ("input_dim_a", "input_dim_b"):
            self._require(getattr(self, k) in (1, 3), f"{k} must be 1 or 3, got {getattr(self, k)}")
        self._require(self.activ in ACTIVATIONS, f"activ must be one of {', '.join(ACTIVATIONS)}, got {self.activ!r}")
        self._require(
            self.pad_type in PAD_TYPES, f"pad_type must be one of {', '.join(PAD_TYPES)}, got {self.pad_type!r}"
        )
        self._require(
            self.new_size % self.size_factor == 0,
            f"new_size must be a multiple of 2**n_downsample = {self.size_factor}, got {self.new_size}",
        )
        self._require(self.label_ids is None, "label_ids is for label-map generators; MUNIT takes images")

    @property
    def size_factor(self) -> int:
        return 2**self.n_downsample

    @property
    def source_dim(self) -> int:
        return self.input_dim_a if self.a2b else self.input_dim_b

    @property
    def output_dim(self) -> int:
        return self.input_dim_b if self.a2b else self.input_dim_a

    def check_size(self, h: int, w: int) -> None:
        """Raise InputError unless the translation path can paint an h x w image."""
        f = self.size_factor
        if h % f or w % f:
            raise InputError(
                f"munit: height and width must be multiples of 2**n_downsample = {f}, got {h}x{w} "
                f"(the official net would silently return {f * (h // f)}x{f * (w // f)})"
            )
        if min(h, w) < max(4, 2 * f):  # 4: the first 7x7 conv's reflection pad, for n_downsample 0
            raise InputError(f"munit: {h}x{w} is too small: sides must be at least {max(4, 2 * f)}")


# ---------------------------------------------------------------------------------------------
# layers (names and registration order as networks.py, so state dicts match key for key)


def _activation(activ: str) -> nn.Module | None:
    return {
        "relu": lambda: nn.ReLU(inplace=True),
        "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
        "prelu": nn.PReLU,
        "selu": lambda: nn.SELU(inplace=True),
        "tanh": nn.Tanh,
        "none": lambda: None,
    }[activ]()


class AdaIN(nn.Module):
    """Instance norm whose per-sample scale and shift come from the style MLP: x (B, C, H, W),
    mean and std (B, C). The buffers exist for the checkpoint layout only."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, eps=self.eps) * std[:, :, None, None] + mean[:, :, None, None]


class LayerNorm(nn.Module):
    """MUNIT's LayerNorm: per sample over (C, H, W), unbiased std added to eps, per-channel affine."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.empty(num_features).uniform_())  # the official init
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.dim()))
        mean = x.mean(dims, keepdim=True)
        n = x[0].numel()
        std = ((x - mean).square().sum(dims, keepdim=True) / (n - 1)).sqrt()  # = torch.std (unbiased)
        x = (x - mean) / (std + self.eps)
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


class Conv2dBlock(nn.Module):
    """Explicit padding (reflect/replicate/zero), conv, optional norm, optional activation."""

    def __init__(self, fin: int, fout: int, kernel: int, stride: int, padding: int, norm: str, activ: str, pad: str):
        super().__init__()
        self.pad = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}[pad](padding)
        self.norm = {
            "none": lambda: None,
            "in": lambda: nn.InstanceNorm2d(fout),
            "ln": lambda: LayerNorm(fout),
            "adain": lambda: AdaIN(fout),
        }[norm]()
        self.activation = _activation(activ)
        self.conv = nn.Conv2d(fin, fout, kernel, stride)

    def forward(self, x: torch.Tensor, adain: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = self.conv(self.pad(x))
        if isinstance(self.norm, AdaIN):
            x = self.norm(x, *adain)
        elif self.norm is not None:
            x = self.norm(x)
        return x if self.activation is None else self.activation(x)


class ResBlock(nn.Module):
    def __init__(self, dim: int, norm: str, activ: str, pad: str):
        super().__init__()
        self.model = nn.Sequential(
            Conv2dBlock(dim, dim, 3, 1, 1, norm, activ, pad), Conv2dBlock(dim, dim, 3, 1, 1, norm, "none", pad)
        )

    def forward(self, x: torch.Tensor, adain: list | None = None) -> torch.Tensor:
        first, second = (None, None) if adain is None else adain
        return x + self.model[1](self.model[0](x, first), second)


class ResBlocks(nn.Module):
    def __init__(self, n: int, dim: int, norm: str, activ: str, pad: str):
        super().__init__()
        self.model = nn.Sequential(*(ResBlock(dim, norm, activ, pad) for _ in range(n)))

    def forward(self, x: torch.Tensor, adain: list | None = None) -> torch.Tensor:
        for i, block in enumerate(self.model):
            x = block(x, None if adain is None else adain[2 * i : 2 * i + 2])
        return x


class StyleEncoder(nn.Module):
    def __init__(self, input_dim: int, dim: int, style_dim: int, activ: str, pad: str):
        super().__init__()
        layers = [Conv2dBlock(input_dim, dim, 7, 1, 3, "none", activ, pad)]
        for i in range(STYLE_DOWNSAMPLE):
            fout = 2 * dim if i < 2 else dim
            layers.append(Conv2dBlock(dim, fout, 4, 2, 1, "none", activ, pad))
            dim = fout
        self.model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ContentEncoder(nn.Module):
    def __init__(self, n_downsample: int, n_res: int, input_dim: int, dim: int, activ: str, pad: str):
        super().__init__()
        layers = [Conv2dBlock(input_dim, dim, 7, 1, 3, "in", activ, pad)]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, "in", activ, pad))
            dim *= 2
        self.model = nn.Sequential(*layers, ResBlocks(n_res, dim, "in", activ, pad))
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """AdaIN residual blocks, n x (nearest 2x upsampling, 5x5 conv, LayerNorm), 7x7 conv + tanh."""

    def __init__(self, n_upsample: int, n_res: int, dim: int, output_dim: int, activ: str, pad: str):
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, "adain", activ, pad)]
        for _ in range(n_upsample):
            layers += [nn.Upsample(scale_factor=2), Conv2dBlock(dim, dim // 2, 5, 1, 2, "ln", activ, pad)]
            dim //= 2
        layers.append(Conv2dBlock(dim, output_dim, 7, 1, 3, "none", "tanh", pad))
        self.model = nn.Sequential(*layers)
        self.adain_features = [m.num_features for m in self.modules() if isinstance(m, AdaIN)]

    def forward(self, content: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        # the official assign_adain_params: per AdaIN layer in module order, mean then std
        adain, i = [], 0
        for c in self.adain_features:
            adain.append((adain_params[:, i : i + c], adain_params[:, i + c : i + 2 * c]))
            i += 2 * c
        x = self.model[0](content, adain)
        for layer in self.model[1:]:
            x = layer(x)
        return x


class LinearBlock(nn.Module):
    def __init__(self, fin: int, fout: int, activ: str):
        super().__init__()
        self.fc = nn.Linear(fin, fout)
        self.activation = _activation(activ)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        return x if self.activation is None else self.activation(x)


class MLP(nn.Module):
    """style_dim -> mlp_dim -> mlp_dim -> the decoder's AdaIN parameters (3 blocks, as AdaINGen's)."""

    def __init__(self, fin: int, fout: int, dim: int, activ: str):
        super().__init__()
        self.model = nn.Sequential(
            LinearBlock(fin, dim, activ), LinearBlock(dim, dim, activ), LinearBlock(dim, fout, "none")
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.flatten(1))


class AdaINGen(nn.Module):
    """One domain's auto-encoder: style encoder, content encoder, decoder, AdaIN-parameter MLP."""

    def __init__(self, input_dim: int, c: MUNITConfig):
        super().__init__()
        self.enc_style = StyleEncoder(input_dim, c.dim, c.style_dim, c.activ, c.pad_type)
        self.enc_content = ContentEncoder(c.n_downsample, c.n_res, input_dim, c.dim, c.activ, c.pad_type)
        self.dec = Decoder(c.n_downsample, c.n_res, self.enc_content.output_dim, input_dim, c.activ, c.pad_type)
        self.mlp = MLP(c.style_dim, 2 * sum(self.dec.adain_features), c.mlp_dim, c.activ)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.enc_content(images), self.enc_style(images)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.dec(content, self.mlp(style))


# ---------------------------------------------------------------------------------------------
# the translator


def _describe(x: Any) -> str:
    return f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


class MUNITGenerator(nn.Module):
    """Image of the source domain (+ style code) -> image of the target domain, in [-1, 1]."""

    def __init__(self, config: MUNITConfig):
        super().__init__()
        self.config = config
        self.gen_a = AdaINGen(config.input_dim_a, config)
        self.gen_b = AdaINGen(config.input_dim_b, config)

    @property
    def source(self) -> AdaINGen:
        return self.gen_a if self.config.a2b else self.gen_b

    @property
    def target(self) -> AdaINGen:
        return self.gen_b if self.config.a2b else self.gen_a

    def _weight(self) -> torch.Tensor:
        return self.gen_a.enc_style.model[0].conv.weight

    def _check_image(self, image: Any, channels: int, what: str) -> None:
        if not isinstance(image, torch.Tensor) or not image.is_floating_point() or image.dim() != 4:
            raise InputError(
                f"munit: {what} must be a float tensor (B, {channels}, H, W) in [-1, 1], got {_describe(image)}"
            )
        if image.shape[1] != channels:
            raise InputError(
                f"munit: {what} must have {channels} channel(s), got {image.shape[1]} ({_describe(image)})"
            )

    def _style(self, style: Any, batch: int) -> torch.Tensor:
        d = self.config.style_dim
        if isinstance(style, torch.Tensor) and style.dim() == 2:
            style = style[:, :, None, None]
        if (
            not isinstance(style, torch.Tensor)
            or not style.is_floating_point()
            or style.dim() != 4
            or style.shape[1:] != (d, 1, 1)
            or style.shape[0] != batch
        ):
            raise InputError(
                f"munit: style must be a float tensor of shape ({batch}, {d}, 1, 1) or ({batch}, {d}), "
                f"got {_describe(style)}"
            )
        return style

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """image (B, source input_dim, H, W) in [-1, 1], style (B, style_dim, 1, 1) or (B, style_dim)
        -> (B, target input_dim, H, W) in [-1, 1]."""
        c = self.config
        self._check_image(image, c.source_dim, "image")
        c.check_size(*image.shape[2:])
        return self.target.decode(self.source.enc_content(image), self._style(style, image.shape[0]))

    def encode_style(self, image: torch.Tensor) -> torch.Tensor:
        """A target-domain image (B, target input_dim, H, W) -> its style code (B, style_dim, 1, 1)."""
        c = self.config
        self._check_image(image, c.output_dim, "a style image (of the target domain)")
        h, w = image.shape[2:]
        if min(h, w) < 2**STYLE_DOWNSAMPLE:
            raise InputError(
                f"munit: a style image of {h}x{w} is too small: the style encoder needs sides of 16 or more"
            )
        return self.target.enc_style(image)

    def signature(self) -> Signature:
        c = self.config
        # not `image` (every graph's output) nor `style` (Engine.run's style *image*, as SPADE's VAE)
        inputs = (Input("source", "image"), Input("style_code", "latent", size=c.style_dim))
        size = (c.new_size, c.new_size)
        return Signature(inputs, channels=c.output_dim, spatial="multiple", multiple=c.size_factor, size=size)

    def prepare_inputs(self, source: torch.Tensor, style_code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 RGB (B, H, W, 3) and a float style code (B, style_dim) -> `forward`'s arguments.

        As test.py's ToTensor + Normalize((0.5,) * 3, (0.5,) * 3); a 1-channel source domain takes
        PIL's `convert('L')` luma (ITU-R 601: 0.299 R + 0.587 G + 0.114 B), an rtgan choice (the
        official loader reads RGB only).
        """
        if (
            not isinstance(source, torch.Tensor)
            or source.dtype != torch.uint8
            or source.dim() != 4
            or source.shape[3] != 3
        ):
            raise InputError(f"munit: source must be a uint8 RGB tensor (B, H, W, 3), got {_describe(source)}")
        x = source.permute(0, 3, 1, 2).to(self._weight().dtype) / 255
        if self.config.source_dim == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)[:, None, None]).sum(1, True)
        return (x - 0.5) / 0.5, self._style(style_code, source.shape[0]).to(x.dtype)


# ---------------------------------------------------------------------------------------------
# official checkpoints


def _hints(expected: dict, got: dict, config: MUNITConfig, domain: str) -> list[str]:
    """Options that likely differ, read from the shapes of one generator's checkpoint."""
    hints = []

    def dim(k, i):  # (checkpoint, model) size of axis i of key k where they differ
        if k in got and k in expected and len(got[k]) > i and got[k][i] != expected[k][i]:
            return got[k][i], expected[k][i]

    if any(k.startswith("cnns.") for k in got):
        hints.append("this is a discriminator file (dis_*.pt), not a generator file (gen_*.pt)")
    if d := dim("enc_content.model.0.conv.weight", 1):
        hints.append(f"input_dim_{domain}: the checkpoint's generator {domain} takes {d[0]} channel(s), not {d[1]}")
    if d := dim("enc_content.model.0.conv.weight", 0):
        hints.append(f"dim: the checkpoint's first conv is {d[0]} wide")
    if d := dim("enc_style.model.6.weight", 0):
        hints.append(f"style_dim: the checkpoint's style codes have {d[0]} values")
    if d := dim("mlp.model.0.fc.weight", 0):
        hints.append(f"mlp_dim: the checkpoint's MLP is {d[0]} wide")
    n_down = lambda s: sum(bool(re.fullmatch(r"enc_content\.model\.\d+\.conv\.weight", k)) for k in s) - 1
    n_res = lambda s: len({m.group(1) for k in s if (m := re.match(r"dec\.model\.0\.model\.(\d+)\.", k))})
    if n_down(got) != n_down(expected):
        hints.append(f"n_downsample: the checkpoint's content encoder has {n_down(got)} strided convs")
    if n_res(got) != n_res(expected):
        hints.append(f"n_res: the checkpoint's decoder has {n_res(got)} residual blocks")
    if any(k.endswith("activation.weight") for k in got) != any(k.endswith("activation.weight") for k in expected):
        hints.append("activ: PReLU activations have weights ('activation.weight' keys): activ='prelu' or not")
    return hints


def munit_state_dict(raw: Any, config: MUNITConfig, *, what: str = "MUNIT checkpoint") -> dict[str, torch.Tensor]:
    """An official `gen_*.pt` dict {'a': state, 'b': state}, as `torch.load(weights_only=True)`
    returns it -> the state dict of `MUNITGenerator(config)`, every key and shape checked.

    Only the PyTorch 0.3 InstanceNorm statistics the official test script deletes (STALE_KEYS) are
    dropped, with a warning; anything else missing, extra or mis-shaped is a CheckpointError.
    """
    from .official import check_dtypes, check_keys, check_tensors, state_shapes  # official imports the registry

    if not isinstance(raw, Mapping) or set(raw) != {"a", "b"}:
        got = sorted(map(str, raw))[:8] if isinstance(raw, Mapping) else type(raw).__name__
        raise CheckpointError(
            f"{what}: expected a MUNIT generator file (gen_*.pt), a dict of the two generators under 'a' and "
            f"'b', got {got}"
        )
    with torch.device("meta"):
        skeleton = MUNITGenerator(config)
    state: dict[str, torch.Tensor] = {}
    for domain in ("a", "b"):
        where = f"{what}, generator {domain!r}"
        part = check_tensors(raw[domain], where)
        stale = [k for k in part if k in STALE_KEYS]
        if stale:
            warnings.warn(
                f"{where}: dropping {len(stale)} PyTorch 0.3 InstanceNorm statistics (never used; the official "
                "test script deletes them too)",
                stacklevel=2,
            )
        part = {k: v for k, v in part.items() if k not in STALE_KEYS}
        model = getattr(skeleton, f"gen_{domain}").state_dict()
        expected, got = state_shapes(model), state_shapes(part)
        check_keys(expected, got, what=where, hints=_hints(expected, got, config, domain))
        check_dtypes(model, part, what=where)
        state.update({f"gen_{domain}.{k}": v for k, v in part.items()})
    return state
