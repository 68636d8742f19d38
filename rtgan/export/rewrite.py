"""Inference rewrites: exact algebraic changes that remove work from a trained generator.

Each rewrite is switchable (`Rewrites`) and tested for equality with the unrewritten model:
- spectral norm folded into plain weights (eval mode uses the stored u, v, so this is exact);
- SPADE's parameter-free batch norm folded into its modulation:
  `((x - m) a)(1 + g) + b = x * a(1 + g) + (-m a (1 + g) + b)`, both factors produced by convs;
- SPADE's gamma and beta convolutions merged into one conv with twice the outputs;
- a 2x nearest upsampling followed by a 3x3 conv (pix2pixHD's `upsample='nearest'`) as one stride-2
  4x4 transposed conv: each output phase sees a 2x2 input window whose taps are sums of the 3x3
  taps, so 4 instead of 9 multiply-adds per output and input channel, and no Resize node;
- a convolution whose input is a one-hot label map computed as a sum of per-class weight rows
  gathered at each kernel offset (`LabelConv`), instead of a dense conv over label_nc channels;
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

from ..models.pix2pixhd import ResizeConv
from ..models.spade import SPADE


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


def instance_edges(instance: torch.Tensor) -> torch.Tensor:
    """(B, H, W) ids -> (B, 1, H, W) float edges; the official map, built without in-place writes."""
    t = instance.unsqueeze(1)
    # int32, not float: an fp16 conversion of the graph must not leave a mixed-type comparison here
    dx = (t[:, :, :, 1:] != t[:, :, :, :-1]).int()
    dy = (t[:, :, 1:, :] != t[:, :, :-1, :]).int()
    edge = F.pad(dx, (1, 0)) + F.pad(dx, (0, 1)) + F.pad(dy, (0, 0, 1, 0)) + F.pad(dy, (0, 0, 0, 1))
    return (edge > 0).float()


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, H, W) ids -> (B, C, H, W) float; Equal against a constant range exports to every runtime."""
    classes = torch.arange(num_classes, device=labels.device).view(1, -1, 1, 1)
    return (labels.unsqueeze(1) == classes).float()


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 RGB, rounded half to even."""
    # the cast comes last: TensorRT-RTX accepts uint8 only on graph outputs
    return ((image + 1) * 127.5).clamp(0, 255).round().permute(0, 2, 3, 1).to(torch.uint8)


def pad_ids(labels: torch.Tensor, pad: int, mode: str, fill: int) -> torch.Tensor:
    """Pad an id map: 'zeros' pads with the id `fill` (a zero weight row), 'reflect' mirrors ids."""
    if pad == 0:
        return labels
    if mode == "reflect":  # ids < 2^24 survive the float round trip exactly
        return F.pad(labels.unsqueeze(1).float(), (pad,) * 4, mode="reflect").squeeze(1).long()
    return F.pad(labels, (pad,) * 4, value=fill)


class LabelConv(nn.Module):
    """conv(one_hot(labels) ++ extra, W) as sum over kernel offsets of W[:, label(p + offset), offset].

    A k x k conv from C one-hot channels costs C*k*k MACs per output channel and pixel; the
    gather costs k*k additions. Extra float channels (instance edges) keep a small dense conv.
    `padding_mode` is the conv's own: 'zeros' or 'reflect' (a ReflectionPad2d before the conv).
    """

    def __init__(self, conv: nn.Conv2d, num_classes: int, padding: int, padding_mode: str = "zeros"):
        super().__init__()
        w = conv.weight.detach()
        cout, cin, kh, kw = w.shape
        self.num_classes, self.kernel, self.padding, self.padding_mode = num_classes, (kh, kw), padding, padding_mode
        table = w[:, :num_classes].permute(2, 3, 1, 0).reshape(kh * kw, num_classes, cout)
        table = torch.cat([table, table.new_zeros(kh * kw, 1, cout)], 1)  # row `num_classes`: zero padding
        self.register_buffer("table", table.reshape(-1, cout).contiguous())
        self.register_buffer("extra_weight", w[:, num_classes:].contiguous() if cin > num_classes else None)
        self.register_buffer("bias", conv.bias.detach().clone() if conv.bias is not None else None)

    def forward(self, labels: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        (kh, kw), p, n = self.kernel, self.padding, self.num_classes + 1
        h, w = labels.shape[1:]
        ids = pad_ids(labels, p, self.padding_mode, self.num_classes)
        out = None
        for i in range(kh * kw):
            dy, dx = divmod(i, kw)
            term = F.embedding(ids[:, dy : dy + h, dx : dx + w] + i * n, self.table)
            out = term if out is None else out + term
        out = out.permute(0, 3, 1, 2)
        if self.extra_weight is not None:
            if self.padding_mode == "reflect":
                out = out + F.conv2d(F.pad(extra, (p,) * 4, mode="reflect"), self.extra_weight)
            else:
                out = out + F.conv2d(extra, self.extra_weight, padding=p)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out


class DenseLabelConv(nn.Module):
    """The unrewritten counterpart of LabelConv: a dense conv over the one-hot map."""

    def __init__(self, conv: nn.Conv2d, num_classes: int, padding: int, padding_mode: str = "zeros"):
        super().__init__()
        self.conv, self.num_classes, self.padding, self.padding_mode = conv, num_classes, padding, padding_mode

    def forward(self, labels: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        x = one_hot(labels, self.num_classes)
        x = x if extra is None else torch.cat([x, extra], 1)
        if self.padding_mode == "reflect":
            return F.conv2d(F.pad(x, (self.padding,) * 4, mode="reflect"), self.conv.weight, self.conv.bias)
        return F.conv2d(x, self.conv.weight, self.conv.bias, padding=self.padding)


def label_conv(conv: nn.Conv2d, num_classes: int, padding: int, padding_mode: str, gather: bool) -> nn.Module:
    return (LabelConv if gather else DenseLabelConv)(conv, num_classes, padding, padding_mode)


class FastSPADE(nn.Module):
    """SPADE on label ids: shared conv as gathers, batch norm folded into one merged gamma/beta conv."""

    def __init__(self, spade: SPADE, num_classes: int, rewrites: Rewrites):
        super().__init__()
        conv0 = spade.mlp_shared[0]
        pad = conv0.padding[0]
        self.shared = label_conv(conv0, num_classes, pad, "zeros", rewrites.label_gather)
        norm = spade.param_free_norm
        self.instance = isinstance(norm, (nn.InstanceNorm2d, InstanceNormAsGroupNorm))
        self.kernel = rewrites.kernels
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

    def forward(self, x, labels, edges, slope: float | None = None) -> torch.Tensor:
        """SPADE(x), followed by leaky ReLU(slope) when a slope is given."""
        actv = F.relu(self.shared(labels, edges))
        if self.merge:
            g, b = self.gamma_beta(actv).split(self.channels, 1)
        else:
            g, b = self.gamma(actv), self.beta(actv)
        if self.kernel:
            if self.instance:  # statistics from the graph's reductions, as the TensorRT plugin takes them
                mean, var = x.mean((2, 3)), x.var((2, 3), unbiased=False)
            else:
                mean, var = self.norm.running_mean, self.norm.running_var
            return torch.ops.rtgan.spade_norm_denorm(x, g, b, mean, var, self.eps, slope)
        if not self.fold:
            x = self.norm(x)
        x = x * g + b
        return x if slope is None else F.leaky_relu(x, slope)
