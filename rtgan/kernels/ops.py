"""The kernels as PyTorch custom ops: Triton on CUDA tensors, the PyTorch references elsewhere.

    torch.ops.rtgan.spade_norm_denorm(x, gamma, beta, mean, var, eps, slope)
    torch.ops.rtgan.asap_pixel_mlp(labels, params, num_classes, channels, tile, extra, uint8)
    torch.ops.rtgan.row_modulate(x, table, rows, slope)

Registered with `torch.library.custom_op` (with fake implementations), so they trace through
`torch.compile` / `torch.export` as single nodes and `torch.library.opcheck` can check them.
"""

from __future__ import annotations

import torch

from . import asap_mlp as _asap
from . import row_modulate as _rows
from . import spade_norm as _norm
from .triton_util import triton


def _use_triton(t: torch.Tensor) -> bool:
    return triton is not None and t.is_cuda


@torch.library.custom_op("rtgan::spade_norm_denorm", mutates_args=())
def spade_norm_denorm(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    mean: torch.Tensor | None,
    var: torch.Tensor | None,
    eps: float,
    slope: float | None,
) -> torch.Tensor:
    fn = _norm.norm_denorm if _use_triton(x) else _norm.norm_denorm_reference
    return fn(x, gamma, beta, mean, var, eps, slope)


@spade_norm_denorm.register_fake
def _(x, gamma, beta, mean, var, eps, slope):
    return torch.empty_like(x)


@torch.library.custom_op("rtgan::asap_pixel_mlp", mutates_args=())
def asap_pixel_mlp(
    labels: torch.Tensor,
    params: torch.Tensor,
    num_classes: int,
    channels: list[int],
    tile: int,
    extra: torch.Tensor | None,
    uint8: bool,
) -> torch.Tensor:
    """`extra` (B, E, H, W): instance edges and noise, the MLP input's float channels (or None)."""
    fn = _asap.asap_mlp if _use_triton(params) else _asap.asap_mlp_reference
    return fn(labels, params, num_classes, channels, tile, extra, uint8)


@asap_pixel_mlp.register_fake
def _(labels, params, num_classes, channels, tile, extra, uint8):
    b, h, w = labels.shape
    if uint8:
        return labels.new_empty(b, h, w, 3, dtype=torch.uint8)
    return params.new_empty(b, 3, h, w)


@torch.library.custom_op("rtgan::row_modulate", mutates_args=())
def row_modulate(x: torch.Tensor, table: torch.Tensor, rows: torch.Tensor, slope: float | None) -> torch.Tensor:
    if _use_triton(x):
        return _rows.row_modulate(x, table, rows, slope)
    # the op's output is contiguous like x; the reference's layout follows the table rows
    return _rows.row_modulate_reference(x, table, rows, slope).contiguous()


@row_modulate.register_fake
def _(x, table, rows, slope):
    return torch.empty_like(x)
