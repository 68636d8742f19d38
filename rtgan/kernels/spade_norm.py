"""Fused SPADE normalization + denormalization + leaky ReLU, one pass over x.

    y = leaky_relu((x - mean) * rstd * (1 + gamma) + beta, slope)

SPADE computes this as four or five full-size tensors (normalized, 1 + gamma, the product, the sum,
the activation); the fused kernel reads x, gamma and beta once and writes y once. Modes:
- running statistics (batch norm at inference): `mean`, `var` per channel;
- per-instance statistics (instance norm): computed by `_plane_stats`, a first pass that splits
  each (n, c) plane into parts and writes each part's count, mean and M2; the main kernel merges
  the parts (Chan's parallel variance) so planes of any size need no single huge reduction;
- per-channel gamma/beta (AdaIN, StyleGAN-style modulation): gamma and beta of shape (N, C);
- statistics given per sample, `mean`/`var` of shape (N, C): instance norm whose statistics another
  op computed (the TensorRT plugin takes them from the graph's reductions).
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
    """The definition: x (N, C, H, W); gamma/beta (N, C, H, W) or (N, C); mean/var (C,), (N, C) or None (instance)."""
    xf = x.float()
    if mean is None:
        mean = xf.mean((2, 3), keepdim=True)
        var = xf.var((2, 3), unbiased=False, keepdim=True)
    else:
        shape = (-1, x.shape[1], 1, 1) if mean.dim() == 2 else (1, -1, 1, 1)
        mean, var = mean.float().view(shape), var.float().view(shape)
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
        # TensorRT's AOT plugin calling convention: input pointers, then int32 scalars, then outputs
        # (floats cannot be passed as plugin scalars, hence EPS and SLOPE as compile-time constants)
        x_ptr, g_ptr, b_ptr, mean_ptr, var_ptr, part_ptr,
        C, HW,
        g_sn, g_sc, g_sp,  # gamma strides over (n, c, pixel); g_sp = 0 for per-channel (AdaIN)
        s_sn,  # statistics stride over n: 0 for running statistics (C,), C for per-sample (N, C)
        PARTS,  # instance mode: parts per plane in the stats buffer
        y_ptr,
        EPS: tl.constexpr, SLOPE: tl.constexpr,
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
            mean = tl.load(mean_ptr + n * s_sn + c).to(tl.float32)
            var = tl.load(var_ptr + n * s_sn + c).to(tl.float32)
        rstd = 1.0 / tl.sqrt(var + EPS)
        offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        m = offs < HW
        x = tl.load(x_ptr + plane.to(tl.int64) * HW + offs, mask=m, other=0.0).to(tl.float32)
        gofs = n.to(tl.int64) * g_sn + c * g_sc + offs * g_sp
        g = tl.load(g_ptr + gofs, mask=m, other=0.0).to(tl.float32)
        b = tl.load(b_ptr + gofs, mask=m, other=0.0).to(tl.float32)
        y = (x - mean) * rstd * (1.0 + g) + b
        if ACT:
            y = tl.where(y >= 0, y, y * SLOPE)
        tl.store(y_ptr + plane.to(tl.int64) * HW + offs, y.to(y_ptr.dtype.element_ty), mask=m)


BLOCK = 1024
MAX_PARTS = 64


def launch_geometry(shape, per_channel_gamma: bool, per_sample_stats: bool, cdiv) -> tuple[tuple, tuple]:
    """`_norm_denorm`'s grid and int32 scalars (C, HW, gamma strides, stats stride) for x of `shape`.

    Shared by `norm_denorm` and the TensorRT plugin, whose dims are symbolic expressions: only
    products and `cdiv` are applied to them.
    """
    n, c, h, w = shape
    hw = h * w
    strides = (c, 1, 0) if per_channel_gamma else (c * hw, hw, 1)
    return (n * c, cdiv(hw, BLOCK)), (c, hw, *strides, c if per_sample_stats else 0)


def stats_signature(dtype: str) -> tuple[dict, dict]:
    """`_plane_stats`' Triton signature and constants for ahead-of-time compilation."""
    sig = {"x_ptr": f"*{dtype}", "part_ptr": "*fp32", "HW": "i32", "CHUNK": "i32", "PARTS": "i32", "BLOCK": "constexpr"}
    return sig, {"BLOCK": BLOCK}


def kernel_signature(dtype: str, instance: bool, eps: float = EPS, slope: float | None = 0.2) -> tuple[dict, dict]:
    """`_norm_denorm`'s Triton signature and constants as `norm_denorm` launches it.

    Given statistics (running or per sample): no parts buffer and PARTS = 1, which is also what
    Triton's JIT specializes them to, so the TensorRT plugin embeds the kernel the op runs.
    """
    ptr = f"*{dtype}"
    sig = {"x_ptr": ptr, "g_ptr": ptr, "b_ptr": ptr}
    consts = {}
    if instance:
        sig |= {"mean_ptr": "constexpr", "var_ptr": "constexpr", "part_ptr": "*fp32"}
        consts |= {"mean_ptr": None, "var_ptr": None}
    else:
        sig |= {"mean_ptr": "*fp32", "var_ptr": "*fp32", "part_ptr": "constexpr"}
        consts |= {"part_ptr": None}
    sig |= {k: "i32" for k in ("C", "HW", "g_sn", "g_sc", "g_sp", "s_sn")}
    sig |= {"PARTS": "i32" if instance else "constexpr", "y_ptr": ptr}
    if not instance:
        consts["PARTS"] = 1
    consts |= {"EPS": eps, "SLOPE": 0.0 if slope is None else slope, "INSTANCE": instance, "ACT": slope is not None}
    consts |= {"MAX_PARTS": MAX_PARTS, "BLOCK": BLOCK}
    sig |= {k: "constexpr" for k in ("EPS", "SLOPE", "INSTANCE", "ACT", "MAX_PARTS", "BLOCK")}
    return sig, consts


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
    adain = gamma.dim() == 2
    if adain:
        gamma, beta = gamma.contiguous(), beta.contiguous()
    else:
        gamma, beta = gamma.expand_as(x).contiguous(), beta.expand_as(x).contiguous()
    y = torch.empty_like(x)
    instance = mean is None
    if instance:
        parts, chunk = _parts(hw)
        part = torch.empty(n * c, parts, 3, device=x.device, dtype=torch.float32)
        _plane_stats[(n * c, parts)](x, part, hw, chunk, parts, BLOCK=BLOCK)
    else:
        parts, part = 1, None
        mean, var = mean.float().contiguous(), var.float().contiguous()
    grid, scalars = launch_geometry(x.shape, adain, not instance and mean.dim() == 2, triton.cdiv)
    _norm_denorm[grid](
        x, gamma, beta, mean, var, part, *scalars, parts, y,
        EPS=eps, SLOPE=0.0 if slope is None else slope,
        INSTANCE=instance, ACT=slope is not None, MAX_PARTS=MAX_PARTS, BLOCK=BLOCK,
    )  # fmt: skip
    return y
