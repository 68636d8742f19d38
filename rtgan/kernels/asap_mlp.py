"""Fused ASAPNet pixelwise MLP: label ids + per-cell MLP parameters -> image, with no per-pixel tensors.

ASAPNet's full-resolution stream runs, for every pixel, a small MLP whose weights come from the
low-resolution stream's output at the pixel's cell (tile). The module builds a one-hot map, a
position code of 4*log2(tile) channels, their concatenation and every hidden activation at full
resolution: H x W x (classes + code + widths) floats through memory. This kernel runs one program
per block of pixels of one cell, so the cell's parameters are read once and shared:
- the position code (cos/sin of x and y modulo tile, tile/2, ..., 2) is computed in registers;
- the first layer's one-hot part is a gather of the label's weight row, plus the rows of the
  float channels the model puts between one-hot and code (instance edges, noise: `extra`), its code
  part a `tl.dot`;
- hidden layers are `tl.dot` (tensor cores for fp16 parameters), leaky ReLU 0.01, final tanh;
- output fp32 (B, 3, H, W) as the module, or uint8 (B, H, W, 3) as the exported graphs.
`asap_mlp_reference` computes the same from the model's own functions (one-hot, `cosine_coords`,
`pixelwise_mlp`): the kernel is tested against it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .triton_util import tl, triton


def asap_mlp_reference(
    labels: torch.Tensor,
    params: torch.Tensor,
    num_classes: int,
    channels: list[int],
    tile: int,
    extra: torch.Tensor | None = None,
    uint8: bool = False,
) -> torch.Tensor:
    """labels (B, H, W) class indices, params (B, P, H/tile, W/tile) -> (B, 3, H, W) in [-1, 1] (or uint8 HWC).

    `extra` (B, E, H, W): the float channels between the one-hot map and the code (instance edges,
    then noise), as the model's MLP input orders them.
    """
    from ..models.asapnet import cosine_coords, pixelwise_mlp

    b, h, w = labels.shape
    sem = F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).to(params.dtype)
    if extra is not None:
        sem = torch.cat([sem, extra.to(params.dtype)], 1)
    code = cosine_coords(h, w, tile, labels.device).to(params.dtype).expand(b, -1, -1, -1)
    image = pixelwise_mlp(torch.cat([sem, code], 1), params, channels, tile)
    if uint8:
        return ((image.float() + 1) * 127.5).clamp(0, 255).round().permute(0, 2, 3, 1).to(torch.uint8).contiguous()
    return image


if triton is not None:

    @triton.jit
    def _leaky(x):
        return tl.where(x >= 0, x, x * 0.01)

    @triton.jit
    def _asap_mlp(
        # TensorRT's AOT plugin calling convention: input pointers, then int32 scalars, then outputs
        labels_ptr, params_ptr, extra_ptr,
        H, W, HL, WL, P,
        out_ptr,
        NUM_CLASSES: tl.constexpr, N_EXTRA: tl.constexpr, TILE: tl.constexpr, NFREQ: tl.constexpr,
        HID: tl.constexpr, HID_P: tl.constexpr, N_MID: tl.constexpr, CODE_P: tl.constexpr,
        BLOCK_P: tl.constexpr, UINT8: tl.constexpr, PREC: tl.constexpr,
    ):  # fmt: skip
        cell = tl.program_id(0)
        b = cell // (HL * WL)
        hl = (cell // WL) % HL
        wl = cell % WL
        pix = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
        valid = pix < TILE * TILE
        ty = pix // TILE
        tx = pix % TILE
        y = hl * TILE + ty
        x = wl * TILE + tx
        at = b.to(tl.int64) * H * W + y * W + x
        label = tl.load(labels_ptr + at, mask=valid, other=0)

        # this cell's parameters, channels-last: [bias, weight (cin-major)] per layer
        cp = params_ptr + cell.to(tl.int64) * P
        dt = params_ptr.dtype.element_ty
        co = tl.arange(0, HID_P)
        com = co < HID
        ci = tl.arange(0, HID_P)
        cim = ci < HID

        # layer 1: bias + the label's weight row (the one-hot product) + extra rows + code @ code weights
        h = tl.load(cp + co, mask=com, other=0.0).to(tl.float32)[None, :]
        h = h + tl.load(cp + HID + label[:, None] * HID + co[None, :], mask=valid[:, None] & com[None, :],
                        other=0.0).to(tl.float32)  # fmt: skip
        for j in tl.static_range(N_EXTRA):  # (B, N_EXTRA, H, W): edges and noise, a few channels
            e = tl.load(extra_ptr + (b.to(tl.int64) * N_EXTRA + j) * H * W + y * W + x, mask=valid, other=0)
            row = tl.load(cp + HID + (NUM_CLASSES + j) * HID + co, mask=com, other=0.0)
            h = h + e.to(tl.float32)[:, None] * row.to(tl.float32)[None, :]
        k = tl.arange(0, CODE_P)
        km = k < 4 * NFREQ
        f = tl.maximum(TILE >> (k // 4), 1).to(
            tl.float32
        )  # code channels: per f = tile, tile/2, ..., 2: xcos xsin ycos ysin
        v = tl.where((k % 4)[None, :] < 2, tx[:, None], ty[:, None]).to(tl.float32)  # x mod f == tx mod f
        angle = 6.283185307179586 * (v - f[None, :] * tl.floor(v / f[None, :])) / f[None, :]
        code = tl.where((k % 2)[None, :] == 0, tl.cos(angle), tl.sin(angle))
        code = tl.where(km[None, :], code, 0.0)
        first_code = NUM_CLASSES + N_EXTRA
        wc = tl.load(cp + HID + (first_code + k[:, None]) * HID + co[None, :], mask=km[:, None] & com[None, :],
                     other=0.0)  # fmt: skip
        h = h + tl.dot(code.to(dt), wc, input_precision=PREC, out_dtype=tl.float32)
        off = HID + (first_code + 4 * NFREQ) * HID

        for _ in tl.static_range(N_MID):
            h = _leaky(h)
            bias = tl.load(cp + off + co, mask=com, other=0.0).to(tl.float32)
            wm = tl.load(cp + off + HID + ci[:, None] * HID + co[None, :], mask=cim[:, None] & com[None, :], other=0.0)
            h = tl.dot(h.to(dt), wm, input_precision=PREC, out_dtype=tl.float32) + bias[None, :]
            off += HID + HID * HID

        h = _leaky(h)
        o = tl.arange(0, 16)  # 3 outputs, padded to tl.dot's minimum width
        om = o < 3
        bias = tl.load(cp + off + o, mask=om, other=0.0).to(tl.float32)
        wl3 = tl.load(cp + off + 3 + ci[:, None] * 3 + o[None, :], mask=cim[:, None] & om[None, :], other=0.0)
        z = tl.dot(h.to(dt), wl3, input_precision=PREC, out_dtype=tl.float32) + bias[None, :]
        t = tl.exp(-2.0 * tl.abs(z))  # tanh, written with exp (the interpreter has no libdevice)
        img = tl.where(z >= 0, 1.0, -1.0) * (1.0 - t) / (1.0 + t)
        m = valid[:, None] & om[None, :]
        if UINT8:
            s = tl.minimum(tl.maximum((img + 1.0) * 127.5, 0.0), 255.0)
            r = tl.floor(s + 0.5)
            r = tl.where((r - s == 0.5) & (r % 2 == 1), r - 1.0, r)  # round half to even, as torch.round
            tl.store(out_ptr + at[:, None] * 3 + o[None, :], r.to(tl.uint8), mask=m)
        else:
            dst = out_ptr + ((b.to(tl.int64) * 3 + o[None, :]) * H + y[:, None]) * W + x[:, None]
            tl.store(dst, img.to(out_ptr.dtype.element_ty), mask=m)


BLOCK_P = 64  # pixels per program: a quarter of a 16x16 cell


def num_warps(hidden: int) -> int:
    # width 64 takes 8 warps, either dtype: exact fp32 dots spill ~7 KB on sm_90 with 4, and Triton
    # 3.6's fp16 dots at 4 warps read past their shared-memory buffer on an H200 (compute-sanitizer)
    return 8 if hidden > 32 else 4


def _pow2(n: int, least: int = 16) -> int:
    return max(least, 1 << (n - 1).bit_length())


def launch_geometry(labels_shape, params_shape, tile, cdiv, block: int = BLOCK_P) -> tuple[tuple, tuple]:
    """`_asap_mlp`'s grid and int32 scalars (H, W, HL, WL, P); params channels-last (B, HL, WL, P).

    Shared by `asap_mlp` and the TensorRT plugin (symbolic dims: products and `cdiv` only).
    """
    b, h, w = labels_shape
    _, hl, wl, p = params_shape
    return (b * hl * wl, cdiv(tile * tile, block)), (h, w, hl, wl, p)


def kernel_signature(
    dtype: str, num_classes: int, channels: list[int], tile: int, n_extra: int, uint8: bool
) -> tuple[dict, dict, int]:
    """`_asap_mlp`'s Triton signature, constants and warp count as `asap_mlp` launches it."""
    hid, nfreq = channels[1], int(math.log2(tile))
    consts = dict(
        NUM_CLASSES=num_classes, N_EXTRA=n_extra, TILE=tile, NFREQ=nfreq, HID=hid, HID_P=_pow2(hid),
        N_MID=len(channels) - 3, CODE_P=_pow2(4 * nfreq), BLOCK_P=BLOCK_P, UINT8=uint8,
        # fp32: exact products (TF32 would cost ~1e-3 of fidelity); fp16 runs on tensor cores anyway
        PREC="ieee" if dtype == "fp32" else "tf32",
    )  # fmt: skip
    sig = {"labels_ptr": "*i32", "params_ptr": f"*{dtype}", "extra_ptr": f"*{dtype}" if n_extra else "constexpr"}
    if not n_extra:
        consts["extra_ptr"] = None
    sig |= {k: "i32" for k in ("H", "W", "HL", "WL", "P")} | {"out_ptr": "*u8" if uint8 else f"*{dtype}"}
    sig |= {k: "constexpr" for k in consts if k != "extra_ptr"}
    return sig, consts, num_warps(hid)


def asap_mlp(
    labels: torch.Tensor,
    params: torch.Tensor,
    num_classes: int,
    channels: list[int],
    tile: int,
    extra: torch.Tensor | None = None,
    uint8: bool = False,
    block: int = BLOCK_P,
) -> torch.Tensor:
    """The Triton kernel, same contract as `asap_mlp_reference` (the model's cosine code, one-hot input)."""
    if triton is None:
        raise RuntimeError("Triton is not installed: pip install 'rtgan[kernels]'")
    b, h, w = labels.shape
    nfreq = int(math.log2(tile))
    n_extra = 0 if extra is None else extra.shape[1]
    if channels[0] != num_classes + n_extra + 4 * nfreq or channels[-1] != 3:
        raise ValueError(f"channels {channels} do not fit {num_classes} classes, {n_extra} extra channels, tile {tile}")
    if extra is not None and (extra.dim() != 4 or extra.shape[0] != b or extra.shape[2:] != (h, w)):
        raise ValueError(f"extra must be ({b}, E, {h}, {w}), got {tuple(extra.shape)}")
    if len(set(channels[1:-1])) != 1:
        raise ValueError("the fused kernel takes hidden layers of one width")
    # channels-last: each cell's parameters are contiguous, so the program's gathers stay in one run of memory
    p = params.permute(0, 2, 3, 1).contiguous()
    labels = labels.to(torch.int32).contiguous()
    extra = extra.to(params.dtype).contiguous() if extra is not None else None
    if uint8:
        out = torch.empty(b, h, w, 3, dtype=torch.uint8, device=labels.device)
    else:
        out = torch.empty(b, 3, h, w, dtype=params.dtype, device=labels.device)
    dtype = "fp32" if params.dtype == torch.float32 else "fp16"
    _, consts, warps = kernel_signature(dtype, num_classes, channels, tile, n_extra, uint8)
    consts.pop("extra_ptr", None)
    consts["BLOCK_P"] = block
    grid, scalars = launch_geometry(labels.shape, p.shape, tile, triton.cdiv, block)
    _asap_mlp[grid](labels, p, extra, *scalars, out, **consts, num_warps=warps)
    return out
