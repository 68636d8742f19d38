"""Table-row modulation, the fused consumer of boundary-sparse SPADE: one pass over x.

    y = leaky_relu(x * table[rows, :C] + table[rows, C:], slope)

`rows` (N, H, W) picks each pixel's row of `table` (R, 2C): a class row where the pixel's 5x5
label window is one class, a row of convolution results where it is not (`sparse_spade` builds
both). Batch norm is folded into the rows, so this is the whole SPADE layer after the boundary
convolutions: the per-pixel scale and shift are never written out as (N, C, H, W) tensors.
`row_modulate_reference` is the PyTorch definition (and the CPU path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .triton_util import tl, triton

BLOCK = 1024


def row_modulate_reference(
    x: torch.Tensor, table: torch.Tensor, rows: torch.Tensor, slope: float | None = None
) -> torch.Tensor:
    """x (N, C, H, W), table (R, 2C), rows (N, H, W) integer in [0, R) -> (N, C, H, W)."""
    n, c, h, w = x.shape
    picked = torch.index_select(table, 0, rows.flatten().long()).view(n, h, w, 2 * c).permute(0, 3, 1, 2)
    # the result keeps the picked rows' channel-fastest layout: writing it in x's NCHW layout
    # instead made the whole sparse SPADE model 1.4x slower on the CPU (strided row reads)
    y = torch.addcmul(picked[:, c:], x.to(picked.dtype), picked[:, :c])
    return (y if slope is None else F.leaky_relu(y, slope)).to(x.dtype)


if triton is not None:

    @triton.jit
    def _row_modulate(
        x_ptr, table_ptr, rows_ptr, C, HW, y_ptr,
        SLOPE: tl.constexpr, ACT: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        plane = tl.program_id(0)
        n = plane // C
        c = plane % C
        offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        m = offs < HW
        row = tl.load(rows_ptr + n.to(tl.int64) * HW + offs, mask=m, other=0).to(tl.int64)
        x = tl.load(x_ptr + plane.to(tl.int64) * HW + offs, mask=m, other=0.0).to(tl.float32)
        at = table_ptr + row * (2 * C) + c
        scale = tl.load(at, mask=m, other=0.0).to(tl.float32)
        shift = tl.load(at + C, mask=m, other=0.0).to(tl.float32)
        y = x * scale + shift
        if ACT:
            y = tl.where(y >= 0, y, y * SLOPE)
        tl.store(y_ptr + plane.to(tl.int64) * HW + offs, y.to(y_ptr.dtype.element_ty), mask=m)


def kernel_signature(dtype: str, slope: float | None = None) -> tuple[dict, dict]:
    """`_row_modulate`'s Triton signature and constants for ahead-of-time compilation."""
    sig = {"x_ptr": f"*{dtype}", "table_ptr": "*fp32", "rows_ptr": "*i32", "C": "i32", "HW": "i32"}
    sig["y_ptr"] = f"*{dtype}"
    consts = {"SLOPE": 0.0 if slope is None else slope, "ACT": slope is not None, "BLOCK": BLOCK}
    return sig | {k: "constexpr" for k in consts}, consts


def row_modulate(x: torch.Tensor, table: torch.Tensor, rows: torch.Tensor, slope: float | None = None) -> torch.Tensor:
    """The Triton kernel, same contract as `row_modulate_reference` (table read as fp32)."""
    if triton is None:
        raise RuntimeError("Triton is not installed: pip install 'rtgan[kernels]'")
    n, c, h, w = x.shape
    x = x.contiguous()
    y = torch.empty_like(x)
    _, consts = kernel_signature("fp32", slope)
    grid = (n * c, triton.cdiv(h * w, BLOCK))
    _row_modulate[grid](x, table.float().contiguous(), rows.to(torch.int32).contiguous(), c, h * w, y, **consts)
    return y
