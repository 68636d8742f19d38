"""Fused SPADE normalization + denormalization + leaky ReLU, one pass over x.

    y = leaky_relu((x - mean) * rstd * (1 + gamma) + beta, slope)

SPADE computes this as four or five full-size tensors (normalized, 1 + gamma, the product, the sum,
the activation); the fused kernel reads x, gamma and beta once and writes y once. Modes:
- running statistics (batch norm at inference): `mean`, `var` per channel;
- per-instance statistics (instance norm): computed by `_plane_stats`, a first pass that splits
  each (n, c) plane into parts and writes each part's count, mean and M2; the main kernel merges
  the parts (Chan's parallel variance) so planes of any size need no single huge reduction;
- per-channel gamma/beta (AdaIN, StyleGAN-style modulation): gamma and beta of shape (N, C).
fp32 or fp16 in and out, fp32 arithmetic. `norm_denorm_reference` is the plain PyTorch definition
the kernel is tested against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .triton_util import tl, triton

EPS = 1e-5


def norm_denorm_reference(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    mean: torch.Tensor | None = None,
    var: torch.Tensor | None = None,
    eps: float = EPS,
    slope: float | None = 0.2,
) -> torch.Tensor:
    """The definition: x (N, C, H, W); gamma/beta (N, C, H, W) or (N, C); mean/var (C,) or None (instance)."""
    xf = x.float()
    if mean is None:
        mean = xf.mean((2, 3), keepdim=True)
        var = xf.var((2, 3), unbiased=False, keepdim=True)
    else:
        mean, var = mean.float().view(1, -1, 1, 1), var.float().view(1, -1, 1, 1)
    g, b = gamma.float(), beta.float()
    if g.dim() == 2:  # AdaIN: one scale and shift per channel
        g, b = g[:, :, None, None], b[:, :, None, None]
    y = (xf - mean) * torch.rsqrt(var + eps) * (1 + g) + b
    if slope is not None:
        y = F.leaky_relu(y, slope)
    return y.to(x.dtype)


if triton is not None:

    @triton.jit
    def _plane_stats(x_ptr, part_ptr, HW, CHUNK, PARTS, BLOCK: tl.constexpr):
        """Program (plane, part): count, mean and M2 of x[plane, part*CHUNK : (part+1)*CHUNK]."""
        plane = tl.program_id(0)
        part = tl.program_id(1)
        start = part * CHUNK
        base = x_ptr + plane.to(tl.int64) * HW
        offs = tl.arange(0, BLOCK)
        # pass 1: sum for the part's mean; pass 2: squared deviations from it (stable, unlike sum of squares)
        total = tl.zeros([BLOCK], tl.float32)
        for i in range(0, CHUNK, BLOCK):
            idx = start + i + offs
            m = (idx < HW) & (i + offs < CHUNK)
            total += tl.load(base + idx, mask=m, other=0.0).to(tl.float32)
        count = tl.minimum(CHUNK, HW - start).to(tl.float32)
        mean = tl.sum(total, 0) / tl.maximum(count, 1.0)
        dev = tl.zeros([BLOCK], tl.float32)
        for i in range(0, CHUNK, BLOCK):
            idx = start + i + offs
            m = (idx < HW) & (i + offs < CHUNK)
            d = tl.where(m, tl.load(base + idx, mask=m, other=0.0).to(tl.float32) - mean, 0.0)
            dev += d * d
        out = part_ptr + (plane.to(tl.int64) * PARTS + part) * 3
        tl.store(out, count)
        tl.store(out + 1, mean)
        tl.store(out + 2, tl.sum(dev, 0))

    @triton.jit
    def _norm_denorm(
        x_ptr, g_ptr, b_ptr, mean_ptr, var_ptr, part_ptr, y_ptr,
        C, HW, PARTS,
        g_sn, g_sc, g_sp,  # gamma strides over (n, c, pixel); g_sp = 0 for per-channel (AdaIN)
        eps, slope,
        INSTANCE: tl.constexpr, ACT: tl.constexpr, MAX_PARTS: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        plane = tl.program_id(0)
        n = plane // C
        c = plane % C
        if INSTANCE:  # merge the parts' (count, mean, M2): Chan et al.'s parallel variance
            p = tl.arange(0, MAX_PARTS)
            pm = p < PARTS
            rec = part_ptr + (plane.to(tl.int64) * PARTS + p) * 3
            cnt = tl.load(rec, mask=pm, other=0.0)
            pmean = tl.load(rec + 1, mask=pm, other=0.0)
            m2 = tl.load(rec + 2, mask=pm, other=0.0)
            total = tl.sum(cnt, 0)
            mean = tl.sum(cnt * pmean, 0) / total
            var = (tl.sum(m2, 0) + tl.sum(cnt * (pmean - mean) * (pmean - mean), 0)) / total
        else:
            mean = tl.load(mean_ptr + c).to(tl.float32)
            var = tl.load(var_ptr + c).to(tl.float32)
        rstd = 1.0 / tl.sqrt(var + eps)
        offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        m = offs < HW
        x = tl.load(x_ptr + plane.to(tl.int64) * HW + offs, mask=m, other=0.0).to(tl.float32)
        gofs = n.to(tl.int64) * g_sn + c * g_sc + offs * g_sp
        g = tl.load(g_ptr + gofs, mask=m, other=0.0).to(tl.float32)
        b = tl.load(b_ptr + gofs, mask=m, other=0.0).to(tl.float32)
        y = (x - mean) * rstd * (1.0 + g) + b
        if ACT:
            y = tl.where(y >= 0, y, y * slope)
        tl.store(y_ptr + plane.to(tl.int64) * HW + offs, y.to(y_ptr.dtype.element_ty), mask=m)


BLOCK = 1024
MAX_PARTS = 64


def _parts(hw: int) -> tuple[int, int]:
    """How many parts a plane's statistics are split into, and each part's length (a BLOCK multiple)."""
    parts = min(MAX_PARTS, triton.cdiv(hw, 4 * BLOCK))
    chunk = triton.cdiv(triton.cdiv(hw, parts), BLOCK) * BLOCK
    return triton.cdiv(hw, chunk), chunk


def norm_denorm(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    mean: torch.Tensor | None = None,
    var: torch.Tensor | None = None,
    eps: float = EPS,
    slope: float | None = 0.2,
) -> torch.Tensor:
    """The Triton kernel, same contract as `norm_denorm_reference` (CUDA tensors, or CPU under TRITON_INTERPRET=1)."""
    if triton is None:
        raise RuntimeError("Triton is not installed: pip install 'rtgan[kernels]'")
    n, c, h, w = x.shape
    hw = h * w
    x = x.contiguous()
    if gamma.dim() == 2:  # AdaIN
        gamma, beta = gamma.contiguous(), beta.contiguous()
        strides = (c, 1, 0)
    else:
        gamma, beta = gamma.expand_as(x).contiguous(), beta.expand_as(x).contiguous()
        strides = (c * hw, hw, 1)
    y = torch.empty_like(x)
    instance = mean is None
    if instance:
        parts, chunk = _parts(hw)
        part = torch.empty(n * c, parts, 3, device=x.device, dtype=torch.float32)
        _plane_stats[(n * c, parts)](x, part, hw, chunk, parts, BLOCK=BLOCK)
        mean = var = part  # unused by the kernel in this mode
    else:
        parts, part = 1, x
        mean, var = mean.float().contiguous(), var.float().contiguous()
    grid = (n * c, triton.cdiv(hw, BLOCK))
    _norm_denorm[grid](
        x, gamma, beta, mean, var, part, y, c, hw, parts, *strides, eps, 0.0 if slope is None else slope,
        INSTANCE=instance, ACT=slope is not None, MAX_PARTS=MAX_PARTS, BLOCK=BLOCK,
    )  # fmt: skip
    return y
