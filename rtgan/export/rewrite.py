"""Inference rewrites: exact algebraic changes that remove work from a trained generator.

Every rewrite replaces modules of a frozen copy of the model; the model's own forward is what
gets exported. Each is switchable (`Rewrites`) and tested for equality with the unrewritten model:
- spectral norm folded into plain weights (eval mode uses the stored u, v, so this is exact);
- SPADE's parameter-free batch norm folded into its modulation:
  `((x - m) a)(1 + g) + b = x * a(1 + g) + (-m a (1 + g) + b)`, both factors produced by convs;
- SPADE's gamma and beta convolutions merged into one conv with twice the outputs;
- a 2x nearest upsampling followed by a 3x3 conv (pix2pixHD's `upsample='nearest'`) as one stride-2
  4x4 transposed conv: each output phase sees a 2x2 input window whose taps are sums of the 3x3
  taps, so 4 instead of 9 multiply-adds per output and input channel, and no Resize node;
- a convolution whose input is a one-hot label map (the model's `label_convs()`) computed as a sum
  of per-class weight rows gathered at each kernel offset (`LabelConv`), instead of a dense conv
  over label_nc channels;
- ASAPNet's per-pixel MLP input built tile by tile from label ids (`TiledHighResStream`): tiling
  the full float map was the graph's slowest node, and the position code and fixed noise of one
  tile are constants;
- `kernels`: SPADE's norm-denorm-activation and ASAPNet's pixelwise MLP as rtgan's custom ops
  (`rtgan.kernels.ops`): Triton on CUDA, TensorRT plugin nodes in ONNX, references on the CPU.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import remove_spectral_norm
from torch.nn.utils.spectral_norm import SpectralNorm

from ..errors import ConfigError
from ..models.asapnet import HighResStream, cosine_coords, mlp_layers, run_mlp, tiles, untile
from ..models.pix2pixhd import ResizeConv
from ..models.spade import SPADE, SPADEResBlock
from .conditioning import split_oasis_convs, table_sean_styles


@dataclasses.dataclass(frozen=True)
class Rewrites:
    """Which rewrites to apply. The default is what measured faster on a 2-core AVX2 CPU with ONNX
    Runtime and OpenVINO (BENCHMARKS.md): the folds. The merged gamma/beta conv and the label
    gathers are exact but were slower there (a channel split breaks the runtimes' blocked layout;
    a 36-channel one-hot conv is cheap for oneDNN while nine 128-wide gathers are memory-bound)."""

    fold_spectral: bool = True
    fold_norm: bool = True  # not with `kernels`: the fused kernel takes the statistics
    merge_gamma_beta: bool = False
    label_gather: bool = False
    kernels: bool = False
    fold_resize_conv: bool = True
    tiled_mlp_input: bool = True
    split_noise_conv: bool = True  # OASIS: z part once per sample, labels gathered (conditioning.py)
    style_tables: bool = True  # SEAN: style convs as per-region kernels (conditioning.py)

    @classmethod
    def none(cls) -> "Rewrites":
        return cls(**{f.name: False for f in dataclasses.fields(cls)})

    @classmethod
    def all(cls) -> "Rewrites":
        # every exact rewrite; the custom kernels are a different graph (plugin nodes), not a rewrite of this one
        return dataclasses.replace(cls(**{f.name: True for f in dataclasses.fields(cls)}), kernels=False)


DEFAULT = Rewrites()


def fold_spectral_norm(model: nn.Module) -> nn.Module:
    """Replace every spectral-normed weight by W / sigma (computed from the stored u, v)."""
    for m in model.modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, SpectralNorm):
                remove_spectral_norm(m, hook.name)
    return model


def resize_conv_as_transposed(up: ResizeConv) -> nn.ConvTranspose2d:
    """conv3x3(nearest_upsample_2x(x)) as one ConvTranspose2d(4, stride=2, padding=1), exactly.
    (Bilinear upsampling clamps at the borders, so it has no such exact fold.)

    Per axis, an even output row 2i reads upsampled rows 2i-1, 2i, 2i+1 = input rows i-1, i, i
    (taps w0 | w1 + w2), an odd one 2i+1 reads i, i, i+1 (taps w0 + w1 | w2). The transposed conv
    gives output 2i + a the kernel index 2(i - i') + a + 1 for input i', so its 4 taps are
    [w2, w1 + w2, w0 + w1, w0]; zero padding maps to inputs that do not exist, as in the original.
    """
    conv = up.conv
    w = conv.weight  # (out, in, 3, 3)
    mix = w.new_tensor([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]])  # 4 taps from 3
    k = torch.einsum("ay,bx,oiyx->ioab", mix, mix, w)  # ConvTranspose2d weight: (in, out, 4, 4)
    folded = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, 4, stride=2, padding=1, bias=conv.bias is not None)
    folded.weight.data.copy_(k)
    if conv.bias is not None:
        folded.bias.data.copy_(conv.bias)
    return folded.requires_grad_(False)


def replace_modules(model: nn.Module, replacement) -> nn.Module:
    """Swap, in place, every submodule for which `replacement(module)` is not None by what it returns."""
    for name, child in model.named_children():
        new = replacement(child)
        if new is None:
            replace_modules(child, replacement)
        else:
            setattr(model, name, new)
    return model


def fold_resize_convs(model: nn.Module) -> nn.Module:
    return replace_modules(
        model, lambda m: resize_conv_as_transposed(m) if isinstance(m, ResizeConv) and m.mode == "nearest" else None
    )


class InstanceNormAsGroupNorm(nn.Module):
    """Instance norm as group norm with one group per channel: the same arithmetic, and an ONNX
    export that does not need the channel count to be known statically (it is not, after a gather)."""

    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        self.channels, self.eps = norm.num_features, norm.eps
        self.weight = norm.weight if norm.affine else None
        self.bias = norm.bias if norm.affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.channels, self.weight, self.bias, self.eps)


def replace_instance_norms(model: nn.Module) -> nn.Module:
    return replace_modules(
        model,
        lambda m: (
            InstanceNormAsGroupNorm(m) if isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats else None
        ),
    )


def frozen_copy(model: nn.Module) -> nn.Module:
    model = replace_instance_norms(copy.deepcopy(model).eval())
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 RGB, rounded half to even."""
    # the cast comes last: TensorRT-RTX accepts uint8 only on graph outputs
    return ((image + 1) * 127.5).clamp(0, 255).round().permute(0, 2, 3, 1).to(torch.uint8)


def label_ids(x: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, C, H, W) float map whose first `num_classes` channels are one-hot -> (B, H, W) ids (exact)."""
    return (x[:, :num_classes] if x.shape[1] > num_classes else x).argmax(1)


class LabelConv(nn.Module):
    """conv(x) for an x whose first C channels are one-hot, as a sum over kernel offsets of
    W[:, label(p + offset), offset].

    A k x k conv from C one-hot channels costs C*k*k MACs per output channel and pixel; the
    gather costs k*k additions. The float channels after the one-hot ones (instance edges, noise)
    keep a small dense conv. The conv's zero padding is a zero weight row (id C).
    """

    def __init__(self, conv: nn.Conv2d, num_classes: int):
        super().__init__()
        if conv.padding_mode != "zeros" or conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
            raise ConfigError(f"label gather: {conv} is not a plain stride-1 conv with zero padding")
        w = conv.weight.detach()
        cout, cin, kh, kw = w.shape
        self.num_classes, self.kernel, self.padding = num_classes, (kh, kw), conv.padding
        table = w[:, :num_classes].permute(2, 3, 1, 0).reshape(kh * kw, num_classes, cout)
        table = torch.cat([table, table.new_zeros(kh * kw, 1, cout)], 1)  # row `num_classes`: zero padding
        self.register_buffer("table", table.reshape(-1, cout).contiguous())
        self.register_buffer("extra_weight", w[:, num_classes:].contiguous() if cin > num_classes else None)
        self.register_buffer("bias", conv.bias.detach().clone() if conv.bias is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (ph, pw), n = self.kernel, self.padding, self.num_classes + 1
        h, w = x.shape[2] + 2 * ph - kh + 1, x.shape[3] + 2 * pw - kw + 1
        ids = F.pad(label_ids(x, self.num_classes), (pw, pw, ph, ph), value=self.num_classes)
        out = None
        for i in range(kh * kw):
            dy, dx = divmod(i, kw)
            term = F.embedding(ids[:, dy : dy + h, dx : dx + w] + i * n, self.table)
            out = term if out is None else out + term
        out = out.permute(0, 3, 1, 2)
        if self.extra_weight is not None:
            out = out + F.conv2d(x[:, self.num_classes :], self.extra_weight, padding=self.padding)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out


class FastSPADE(nn.Module):
    """SPADE(x, seg) with batch norm folded into gamma/beta, gamma/beta merged, or the fused kernel
    (then with the block's activation: `slope`)."""

    def __init__(self, spade: SPADE, rewrites: Rewrites, slope: float | None = None):
        super().__init__()
        self.mlp_shared = spade.mlp_shared  # a LabelConv already, with `label_gather`
        pad = spade.mlp_gamma.padding
        norm = spade.param_free_norm
        self.instance = isinstance(norm, (nn.InstanceNorm2d, InstanceNormAsGroupNorm))
        self.kernel, self.slope = rewrites.kernels, slope
        self.fold = rewrites.fold_norm and not self.instance and not self.kernel
        self.merge = rewrites.merge_gamma_beta
        self.norm, self.eps = norm, norm.eps
        wg, bg = spade.mlp_gamma.weight.detach(), spade.mlp_gamma.bias.detach()
        wb, bb = spade.mlp_beta.weight.detach(), spade.mlp_beta.bias.detach()
        if self.kernel:  # the op computes (1 + gamma) itself
            import rtgan.kernels.ops  # noqa: F401  (registers torch.ops.rtgan)
        elif self.fold:
            a = torch.rsqrt(norm.running_var + norm.eps)
            c = -norm.running_mean * a
            wg, bg, wb, bb = (a.view(-1, 1, 1, 1) * wg, a * (1 + bg), c.view(-1, 1, 1, 1) * wg + wb, c * (1 + bg) + bb)
        else:
            bg = 1 + bg  # the conv yields (1 + gamma) directly
        self.channels = wg.shape[0]
        if self.merge:
            self.gamma_beta = nn.Conv2d(wg.shape[1], 2 * self.channels, wg.shape[-1], padding=pad)
            self.gamma_beta.weight.data = torch.cat([wg, wb])
            self.gamma_beta.bias.data = torch.cat([bg, bb])
        else:
            self.gamma = nn.Conv2d(wg.shape[1], self.channels, wg.shape[-1], padding=pad)
            self.beta = nn.Conv2d(wg.shape[1], self.channels, wg.shape[-1], padding=pad)
            self.gamma.weight.data, self.gamma.bias.data, self.beta.weight.data, self.beta.bias.data = wg, bg, wb, bb

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        s = seg.shape[2] // x.shape[2]  # nearest resampling by an integer factor is a strided slice
        actv = self.mlp_shared(seg[:, :, ::s, ::s] if s > 1 else seg)
        if self.merge:
            g, b = self.gamma_beta(actv).split(self.channels, 1)
        else:
            g, b = self.gamma(actv), self.beta(actv)
        if self.kernel:
            if self.instance:  # statistics from the graph's reductions, as the TensorRT plugin takes them
                mean, var = x.mean((2, 3)), x.var((2, 3), unbiased=False)
            else:
                mean, var = self.norm.running_mean, self.norm.running_var
            return torch.ops.rtgan.spade_norm_denorm(x, g, b, mean, var, self.eps, self.slope)
        if not self.fold:
            x = self.norm(x)
        return x * g + b


class TiledHighResStream(nn.Module):
    """ASAPNet's full-resolution stream with its MLP input built per tile from label ids: the one-hot
    part compared (or, with `gather`, the first layer's rows gathered) in tile order, the float
    channels tiled, the position code one tile's constant. With `kernel`, the fused op, which
    writes the uint8 image itself."""

    def __init__(self, stream: HighResStream, num_classes: int, gather: bool, kernel: bool):
        super().__init__()
        self.channels, self.tile, self.num_classes = stream.channels, stream.tile, num_classes
        self.gather, self.kernel = gather, kernel
        if kernel:
            import rtgan.kernels.ops  # noqa: F401  (registers torch.ops.rtgan)

            if not stream.coords or len(set(self.channels[1:-1])) != 1:
                raise ConfigError("the fused ASAPNet kernel needs hr_coor='cosine' and hidden layers of one width")
        k = self.tile
        # (tile*tile, n_coords): position codes repeat with the tile, so one tile's codes serve all
        coords = cosine_coords(k, k, k)[0].flatten(1).t().contiguous() if stream.coords else None
        self.register_buffer("coords", coords)

    def _tiles(self, x: torch.Tensor, b: int) -> torch.Tensor:
        # a batch-1 map (the fixed noise) is tiled once and shared: a constant of an exported graph
        return tiles(x, self.tile).expand(b, -1, -1, -1, -1) if x.shape[0] == 1 < b else tiles(x, self.tile)

    def forward(self, semantics: torch.Tensor, noise: torch.Tensor | None, params: torch.Tensor) -> torch.Tensor:
        b, nc, k = semantics.shape[0], self.num_classes, self.tile
        ids = label_ids(semantics, nc)
        edges = semantics[:, nc:] if semantics.shape[1] > nc else None
        if self.kernel:  # uint8 (B, H, W, 3) straight from the op
            extra = [edges] if edges is not None else []
            extra += [noise.expand(b, -1, -1, -1)] if noise is not None else []
            extra = torch.cat(extra, 1) if extra else None
            return torch.ops.rtgan.asap_pixel_mlp(ids, params, nc, list(self.channels), k, extra, True)
        layers = list(mlp_layers(params, self.channels))
        weight, bias = layers[0]
        hl, wl = params.shape[2:]
        tiled_ids = tiles(ids.unsqueeze(1), k)  # (B, hl, wl, k*k, 1)
        floats = [self._tiles(x, b) for x in (edges, noise) if x is not None]
        if self.coords is not None:
            floats.append(self.coords.expand(b, hl, wl, -1, -1))
        if self.gather:  # row `label` of each tile's first weight matrix, plus the float channels' part
            base = torch.arange(b * hl * wl, device=ids.device).view(b, hl, wl, 1) * weight.shape[3]
            out = F.embedding(base + tiled_ids.squeeze(-1), weight.reshape(-1, weight.shape[-1])) + bias
            if floats:
                out = out + torch.matmul(torch.cat(floats, -1), weight[:, :, :, nc:])
        else:
            one_hot = (tiled_ids == torch.arange(nc, device=ids.device)).to(params.dtype)
            out = torch.matmul(torch.cat([one_hot, *floats], -1), weight) + bias
        out = F.leaky_relu(out, 0.01) if len(layers) > 1 else torch.tanh(out)
        return untile(run_mlp(out, layers, first=1), k)


class ChannelsLastConv1x1(nn.Module):
    """A 1x1 convolution as a channels-last matmul, handed on as a permuted view. ASAPNet's fused op
    reads its MLP parameters channels-last, so this permute and the op's cancel in the exported
    graph; as a Conv, OpenVINO transposed the (B, P, H/16, W/16) parameters with a reference kernel
    (12 ms of 38 at 512x512). The weights stay the conv's own (the model reads `weight.dtype`)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if conv.kernel_size != (1, 1) or conv.groups != 1:
            raise ConfigError(f"ChannelsLastConv1x1 replaces a 1x1 convolution, not {conv}")
        self.weight, self.bias = conv.weight, conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x.permute(0, 2, 3, 1), self.weight.flatten(1).t())
        return (y + self.bias if self.bias is not None else y).permute(0, 3, 1, 2)


def apply_rewrites(model: nn.Module, rewrites: Rewrites = DEFAULT) -> nn.Module:
    """Apply `rewrites` to `model` in place (a `frozen_copy`): modules replaced, the forward its own."""
    if rewrites.fold_spectral:
        fold_spectral_norm(model)
    if rewrites.fold_resize_conv:
        fold_resize_convs(model)
    num_classes = getattr(getattr(model, "config", None), "num_classes", None)
    arch = getattr(getattr(model, "config", None), "arch", None)
    if rewrites.split_noise_conv and arch == "oasis":
        split_oasis_convs(model)  # before the SPADE folds below, which keep each SPADE's mlp_shared
    if rewrites.label_gather and hasattr(model, "label_convs"):
        for name in model.label_convs():
            parent, _, leaf = name.rpartition(".")
            owner = model.get_submodule(parent)
            setattr(owner, leaf, LabelConv(getattr(owner, leaf), num_classes))
    if rewrites.style_tables and arch == "sean":
        table_sean_styles(model)  # after the label gathers: it keeps each ACE's SPADE mlp_shared
    if rewrites.fold_norm or rewrites.merge_gamma_beta or rewrites.kernels:
        fused = rewrites.kernels  # the kernel applies the block's activation: the block's own goes

        def spade_block(m):
            if not isinstance(m, SPADEResBlock):
                return None
            for name, slope in (("norm_0", 0.2), ("norm_1", 0.2), ("norm_s", None)):
                if hasattr(m, name):
                    setattr(m, name, FastSPADE(getattr(m, name), rewrites, slope if fused else None))
            if fused:
                m.actvn = nn.Identity()
            return m

        replace_modules(model, spade_block)
    if rewrites.tiled_mlp_input or rewrites.label_gather or rewrites.kernels:
        replace_modules(
            model,
            lambda m: (
                TiledHighResStream(m, num_classes, rewrites.label_gather, rewrites.kernels)
                if isinstance(m, HighResStream)
                else None
            ),
        )
    layers = getattr(getattr(model, "lowres_stream", None), "model", None)  # ASAPNet's parameter head
    if rewrites.kernels and layers is not None and isinstance(layers[-1], nn.Conv2d):
        layers[-1] = ChannelsLastConv1x1(layers[-1])  # the parameters, as the fused op reads them
    return model
