"""Exact rewrites of OASIS's noise and SEAN's style conditioning: work on maps that are constant
by construction done once per value instead of once per pixel.

- OASIS (`NoiseLabelConv`): each SPADE's first conv (and `fc`) reads [z broadcast ⊕ one-hot labels].
  With the engine's z (the noise the same at every pixel) the z part of the conv is, at a pixel,
  the sum over the kernel taps that fall inside the image of W_tap · z: a (B, out, 9) matmul with z
  times a (9, H·W) tap-validity map, instead of z_dim multiply-adds per output channel,
  pixel and tap. The label part stays a dense conv over the one-hot channels: as a sum of per-class
  weight rows gathered at each tap (`LabelConv`'s way) the whole engine measured 1.5x slower on
  both CPU runtimes (nine 128-wide gathers are memory-bound; oneDNN's conv is not). A per-pixel
  noise map (OASIS's `noise_regions`) keeps a dense conv for its noise part.
- SEAN (`TabledACE`): the style branch convolves a style map that is piecewise constant by
  construction, relu(fc_mu_k(code_k)) over region k. Such a conv is a conv over the one-hot map
  of the regions with per-sample kernels K[o, k, tap] = W[o, :, tap] · mu_k: K is computed once per
  forward from the codes, and the conv then costs (regions · 9) instead of (style_length · 9)
  multiply-adds per output channel and pixel (19 · 9 against 512 · 9 for CelebAMask-HQ), run as one
  batched matmul over the 9 shifted one-hot maps (per-sample weights: a conv's weights are shared
  by the batch). The blend weights sigmoid(blending_*) are folded into the style and SPADE kernels,
  and the 19 fc_mu layers run as one batched matmul per layer, once per forward.

Both are exact up to float reassociation (tested against the models' own forward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.sean import ACE


class NoiseLabelConv(nn.Module):
    """A 'same' conv over [noise (noise_nc) ⊕ one-hot labels], the OASIS layout, in two parts.

    `constant_noise`: the noise channels hold one value per sample at every pixel (the broadcast z),
    read at pixel (0, 0); otherwise they are convolved densely. `label_ids`: the label part convolves
    `one_hot(argmax(labels))`, equal to the one-hot channels it is given (exactly one is set per pixel)."""

    def __init__(self, conv: nn.Conv2d, noise_nc: int, constant_noise: bool, label_ids: bool = False):
        super().__init__()
        kh, kw = conv.kernel_size
        if conv.padding != (kh // 2, kw // 2) or conv.stride != (1, 1) or conv.groups != 1 or kh % 2 == 0:
            raise ConfigError(f"noise/label split: {conv} is not an odd 'same' stride-1 conv")
        w = conv.weight.detach()
        self.noise_nc, self.kernel, self.constant_noise, self.label_ids = noise_nc, (kh, kw), constant_noise, label_ids
        self.register_buffer("classes", torch.arange(w.shape[1] - noise_nc).view(1, -1, 1, 1))
        self.register_buffer("label_weight", w[:, noise_nc:].contiguous())
        self.register_buffer("noise_weight", w[:, :noise_nc].contiguous())  # (out, noise_nc, kh, kw)
        self.register_buffer("bias", conv.bias.detach().clone() if conv.bias is not None else None)
        self.register_buffer("taps", torch.eye(kh * kw, dtype=w.dtype).view(kh * kw, 1, kh, kw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        pad = (self.kernel[0] // 2, self.kernel[1] // 2)
        labels = x[:, self.noise_nc :]
        if self.label_ids:
            labels = (labels.argmax(1, keepdim=True) == self.classes).to(x.dtype)
        out = F.conv2d(labels, self.label_weight, self.bias, padding=pad)
        if not self.noise_nc:
            return out
        if not self.constant_noise:
            return out + F.conv2d(x[:, : self.noise_nc], self.noise_weight, padding=pad)
        # the sum of the in-image taps of W · z: (B, out, taps) @ (taps, h*w), where a tap's row is 1 at the
        # pixels whose tap reads inside the image (a conv of ones, one output per tap: a size-only constant)
        # a plain (B, c) @ (c, out * taps) matmul, not an einsum: OpenVINO keeps a MatMul in float32 where
        # a bf16 export asks it to, not the ops it decomposes an Einsum into
        rows = self.noise_weight.flatten(2).transpose(0, 1).flatten(1)  # (noise_nc, out * taps)
        per_tap = (x[:, : self.noise_nc, 0, 0] @ rows).view(b, self.noise_weight.shape[0], -1)
        valid = F.conv2d(torch.ones_like(x[:1, :1]), self.taps, padding=pad)[0].flatten(1)
        return out + torch.matmul(per_tap, valid).view(b, self.noise_weight.shape[0], h, w)  # static channels


def read_label_ids(graph: nn.Module) -> int:
    """Every `NoiseLabelConv` of `graph` in its label-ids form (the CPU plugin graph); how many."""
    convs = [m for m in graph.modules() if isinstance(m, NoiseLabelConv)]
    for m in convs:
        m.label_ids = True
    return len(convs)


def split_oasis_convs(model: nn.Module) -> nn.Module:
    """OASIS's `fc` and every SPADE's first conv as `NoiseLabelConv`, in place."""
    c = model.config
    constant = getattr(c, "noise_regions", 1) == 1  # the engine's z, broadcast: the same noise at every pixel
    model.fc = NoiseLabelConv(model.fc, c.noise_nc, constant)
    for block in model.body:
        for name in ("norm_0", "norm_1", "norm_s"):
            spade = getattr(block, name, None)
            if spade is not None:
                spade.mlp_shared[0] = NoiseLabelConv(spade.mlp_shared[0], c.noise_nc, constant)
    return model


class TabledACE(nn.Module):
    """SEAN's ACE layer at eval with its style convolutions as per-region kernels (see the module doc)."""

    def __init__(self, ace: ACE, semantic_nc: int):
        super().__init__()
        bn = ace.param_free_norm
        if bn.training or bn.running_var is None:
            raise ConfigError("TabledACE needs the ACE batch norm's running statistics (eval mode)")
        inv = torch.rsqrt(bn.running_var + bn.eps)
        self.register_buffer("scale", inv.view(-1, 1, 1).clone())
        self.register_buffer("shift", (-bn.running_mean * inv).view(-1, 1, 1).clone())
        self.register_buffer("noise_var", ace.noise_var.detach().view(-1, 1, 1).clone())
        self.mlp_shared = ace.Spade.mlp_shared
        self.use_rgb, self.classes = ace.use_rgb, semantic_nc
        a, b = (torch.sigmoid(p.detach()) for p in (ace.blending_gamma, ace.blending_beta))
        if not self.use_rgb:  # up_3: SPADE only, its blending weights unused
            a, b = torch.zeros(1), torch.zeros(1)
        self.mlp_gamma = _scaled(ace.Spade.mlp_gamma, 1 - a)
        self.mlp_beta = _scaled(ace.Spade.mlp_beta, 1 - b)
        if self.use_rgb:
            fcs = [getattr(ace, f"fc_mu{j}") for j in range(semantic_nc)]
            self.register_buffer("fc_weight", torch.stack([f.weight.detach().t() for f in fcs]))  # (C, S_in, S)
            self.register_buffer("fc_bias", torch.stack([f.bias.detach() for f in fcs]))  # (C, S)
            wg, wb = ace.conv_gamma.weight.detach() * a, ace.conv_beta.weight.detach() * b
            self.channels = wg.shape[0]
            self.register_buffer("style_weight", torch.cat([wg, wb]).flatten(2).permute(2, 0, 1).contiguous())
            bias = torch.cat([ace.conv_gamma.bias.detach() * a, ace.conv_beta.bias.detach() * b])
            self.register_buffer("style_bias", bias.view(1, -1, 1).clone())

    def _style(self, seg: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """(B, 2N, h, w): [a·conv_gamma | b·conv_beta] of the style map, as a conv over the regions' one-hot map."""
        bsz, c, h, w = seg.shape
        mu = torch.relu(torch.einsum("bcs,cst->bct", style, self.fc_weight) + self.fc_bias)  # (B, C, S)
        # per-sample kernels, tap-major: K[b, t, o, k] = W[o, :, t] · mu[b, k]
        kernels = torch.einsum("tos,bks->btok", self.style_weight, mu).permute(0, 2, 1, 3).flatten(2)  # (B, 2N, 9C)
        # the style map's region: the last non-zero channel (an edge overrides its class), none -> no row
        order = torch.arange(1, c + 1, dtype=torch.int32, device=seg.device).view(1, c, 1, 1)
        last = ((seg != 0).int() * order).amax(1, keepdim=True)
        one_hot = (last == order).to(seg.dtype)  # (B, C, h, w); all zero where no channel is set
        padded = F.pad(one_hot, (1, 1, 1, 1))
        taps = torch.cat([padded[:, :, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], 1)
        out = torch.matmul(kernels, taps.flatten(2)) + self.style_bias  # (B, 2N, h*w)
        return out.view(bsz, self.style_weight.shape[1], h, w)  # 2N: a static channel count

    def forward(self, x: torch.Tensor, seg: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        normalized = (x + noise * self.noise_var) * self.scale + self.shift
        s = seg.shape[2] // x.shape[2]  # nearest resampling by an integer factor is a strided slice
        seg = seg[:, :, ::s, ::s] if s > 1 else seg
        actv = self.mlp_shared(seg)
        gamma, beta = self.mlp_gamma(actv), self.mlp_beta(actv)
        if self.use_rgb:
            g, b = self._style(seg, style).split(self.channels, 1)
            gamma, beta = gamma + g, beta + b
        return normalized * (1 + gamma) + beta


def _scaled(conv: nn.Conv2d, factor: torch.Tensor) -> nn.Conv2d:
    """A copy of `conv` whose output is `factor` times the original's."""
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding)
    out.weight.data = conv.weight.detach() * factor
    out.bias.data = conv.bias.detach() * factor
    return out.requires_grad_(False)


def table_sean_styles(model: nn.Module) -> nn.Module:
    """Every ACE layer of a SEAN generator as `TabledACE`, in place."""
    nc = model.config.semantic_nc
    for block in (m for m in model.modules() if hasattr(m, "ace_0")):
        for name in ("ace_0", "ace_1", "ace_s"):
            if isinstance(getattr(block, name, None), ACE):
                setattr(block, name, TabledACE(getattr(block, name), nc))
    return model
