"""Exact boundary-sparse SPADE modulation (PyTorch, with a fused Triton consumer on CUDA).

SPADE's gamma and beta at a pixel depend only on the semantic map in the 5x5 window around it
(two 3x3 convolutions). Where that window lies inside the image and holds one class and no
instance edge, gamma and beta are a function of the class alone: a per-class table computed once
from the weights. Only the pixels near label boundaries, instance edges and the image border run
the convolutions, and those run as gathers: the first convolution's input is one-hot, so its
output at a pixel is a sum of 9 weight columns picked by the labels around it; the second is one
matmul over the boundary pixels' 3x3 neighbourhoods. Batch norm's running statistics and the
`1 +` of `1 + gamma` fold into the table and that matmul (gamma and beta are affine in the hidden
activations), so a layer ends in one `x * scale + shift` with each pixel's scale and shift a row of
the class table or of the boundary results: `row_modulate`, one Triton pass on CUDA, index_select +
addcmul on the CPU. Equal to the dense path up to float rounding.

`SparseSPADE` wraps a `SPADE` layer; `sparsify(model)` swaps every SPADE layer of a generator.
Each call measures the boundary density and falls back to the dense layer above `max_density`,
where the gathers cost more than the convolutions they replace.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from . import ops as _ops  # noqa: F401  (torch.ops.rtgan.row_modulate)
from .row_modulate import row_modulate_reference


class SparseSPADE(nn.Module):
    """`spade` with boundary-sparse modulation. For inference: the tables are built from the weights
    and batch-norm statistics at construction."""

    def __init__(self, spade: nn.Module, num_classes: int, max_density: float = 0.5, cache: dict | None = None):
        super().__init__()
        self.spade, self.num_classes, self.max_density = spade, num_classes, max_density
        self.cache = {} if cache is None else cache  # shared by the layers of one generator
        conv1 = spade.mlp_shared[0]
        if conv1.kernel_size != (3, 3) or spade.mlp_gamma.kernel_size != (3, 3):
            raise ValueError("boundary-sparse SPADE is written for 3x3 modulation convolutions")
        self.has_edge = conv1.in_channels == num_classes + 1
        w1 = conv1.weight.detach()  # (hidden, K[+1], 3, 3)
        hidden = w1.shape[0]
        # per tap, per input channel: the hidden-layer contribution; one extra zero row for outside the image
        taps = w1.permute(2, 3, 1, 0).reshape(9, -1, hidden)
        cls, zero = taps[:, :num_classes], w1.new_zeros(9, 1, hidden)
        if self.has_edge:  # the edge channel is 0/1: fold it into the row index (class + K * edge), one gather per tap
            rows = torch.cat([cls, cls + taps[:, num_classes:], zero], 1)
        else:
            rows = torch.cat([cls, zero], 1)
        self.rows_per_tap = rows.shape[1]
        self.w1_rows = rows.reshape(-1, hidden).contiguous()  # tap t, row r at t * rows_per_tap + r
        self.b1 = conv1.bias.detach()
        # (9 * hidden, C) each: rows ordered tap-major as the gathered patches
        wg = spade.mlp_gamma.weight.detach().permute(2, 3, 1, 0).reshape(9 * hidden, -1)
        wb = spade.mlp_beta.weight.detach().permute(2, 3, 1, 0).reshape(9 * hidden, -1)
        bg, bb = spade.mlp_gamma.bias.detach(), spade.mlp_beta.bias.detach()
        norm = spade.param_free_norm
        # y = norm(x) * (1 + gamma) + beta = x * scale + shift. Batch norm's running statistics
        # (a = rstd, c = -mean * rstd per channel) fold into both, since gamma and beta are affine in
        # the hidden activations: scale = a (1 + gamma), shift = c (1 + gamma) + beta. Instance
        # norm keeps its own pass: scale = 1 + gamma, shift = beta.
        self.fold_norm = isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats
        if self.fold_norm:
            a = torch.rsqrt(norm.running_var + norm.eps)
            c = -norm.running_mean * a
        else:
            a, c = torch.ones_like(bg), torch.zeros_like(bg)
        self.w2 = torch.cat([wg * a, wg * c + wb], 1).contiguous()
        self.b2 = torch.cat([a * (1 + bg), c * (1 + bg) + bb])
        # the tables: a pixel whose whole 5x5 window is class k sees 9 copies of the same column per layer
        pure = torch.relu(cls.sum(0) + self.b1)  # (K, hidden)
        self.table = (pure @ self.w2.view(9, hidden, -1).sum(0) + self.b2).contiguous()  # (K, 2C)

    def modulation(self, labels: torch.Tensor, edges: torch.Tensor | None, boundary: torch.Tensor | None = None):
        """labels (B, H, W) class indices [, edges (B, H, W) 0/1] -> (rows (B, H, W), table (K + S, 2C)).

        Each pixel's [scale | shift] is row `rows[p]` of the table: its class row, or for the S
        boundary pixels a row of convolution results appended after the K class rows.
        """
        k = self.table.shape[0]
        if boundary is None:
            boundary = self.boundary(labels, edges)
        at = boundary.nonzero()  # (S, 3): b, y, x of the pixels that need the convolutions
        if not len(at):
            return labels, self.table
        rows = labels.clone()
        rows[at[:, 0], at[:, 1], at[:, 2]] = torch.arange(k, k + len(at), device=labels.device)
        return rows, torch.cat([self.table, self._convolved(labels, edges, boundary, at)])

    def boundary(self, labels: torch.Tensor, edges: torch.Tensor | None) -> torch.Tensor:
        """(B, H, W) bool: pixels whose 5x5 window is not one class without edges, inside the image."""
        lab = labels.float()[:, None]
        mask = (F.max_pool2d(lab, 5, 1, 2) != -F.max_pool2d(-lab, 5, 1, 2))[:, 0]
        if edges is not None:
            mask |= F.max_pool2d(edges.float()[:, None], 5, 1, 2)[:, 0] > 0
        mask[:, :2], mask[:, -2:], mask[:, :, :2], mask[:, :, -2:] = True, True, True, True
        return mask

    def _convolved(self, labels, edges, boundary, at: torch.Tensor) -> torch.Tensor:
        b, h, w = labels.shape
        hid = self.w1_rows.shape[1]
        zero_row = self.rows_per_tap - 1  # index of the all-zero weight row: outside the image
        # layer 1 once per pixel of S1 = the boundary pixels' 3x3 neighbourhoods (inside the image)
        ring = F.max_pool2d(boundary.float()[:, None], 3, 1, 1)[:, 0] > 0
        s1 = ring.nonzero()
        bb, y, x = s1[:, 0], s1[:, 1] + 2, s1[:, 2] + 2
        rows = labels if edges is None else labels + self.num_classes * (edges > 0)
        pad_rows = F.pad(rows, (2, 2, 2, 2), value=zero_row)
        # the 9 taps' rows summed in one pass: an embedding bag of 9 indices per pixel
        idx = torch.stack([pad_rows[bb, y + t // 3 - 1, x + t % 3 - 1] + t * self.rows_per_tap for t in range(9)], 1)
        acc = F.embedding_bag(idx, self.w1_rows, mode="sum") + self.b1
        hidden = torch.cat([torch.relu(acc), acc.new_zeros(1, hid)])  # last row: zero padding of layer 2
        # where each S1 pixel's activations sit; everything else (incl. outside the image) -> the zero row
        row = torch.full((b, h + 2, w + 2), len(s1), dtype=torch.long, device=labels.device)
        row[s1[:, 0], s1[:, 1] + 1, s1[:, 2] + 1] = torch.arange(len(s1), device=labels.device)
        # layer 2: one matmul of each boundary pixel's 3x3 patch of hidden activations (tap-major)
        bb, y, x = at[:, 0], at[:, 1] + 1, at[:, 2] + 1
        taps = torch.stack([row[bb, y + t // 3 - 1, x + t % 3 - 1] for t in range(9)], 1)  # (S, 9)
        patches = torch.index_select(hidden, 0, taps.flatten()).view(len(at), 9 * hid)
        return torch.addmm(self.b2, patches, self.w2)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        labels, edges, boundary, density = self._maps(seg, tuple(x.shape[2:]))
        if density > self.max_density:  # too many boundaries: the dense convolutions are cheaper
            return self.spade(x, self._resized(seg, tuple(x.shape[2:])))
        return self._sparse(x, labels, edges, boundary)

    def _resized(self, seg: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """seg at `size` for the dense layers, resized once per forward (SPADE resizes it per layer)."""
        key = ("seg", size)
        if key not in self.cache:
            self.cache[key] = F.interpolate(seg, size=size, mode="nearest")
        return self.cache[key]

    def _maps(self, seg: torch.Tensor, size: tuple[int, int]):
        """Labels, edges, boundary mask and density at `size`, shared by all layers of one forward.

        The cache holds the semantic tensor itself (compared by identity and version), so a new
        input can never be mistaken for the last one.
        """
        cache = self.cache
        version = None if seg.is_inference() else seg._version  # inference tensors keep no version counter
        if cache.get("seg") is not seg or cache.get("version") != version:
            cache.clear()
            cache.update(seg=seg, version=version)
            cache["full"] = (seg[:, : self.num_classes].argmax(1), seg[:, self.num_classes] if self.has_edge else None)
        if size not in cache:
            labels, edges = cache["full"]
            if labels.shape[1:] != size:  # nearest resizing picks the same pixels as SPADE's resized one-hot
                labels = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
                edges = F.interpolate(edges[:, None], size=size, mode="nearest")[:, 0] if edges is not None else None
            boundary = self.boundary(labels, edges)
            cache[size] = (labels, edges, boundary, float(boundary.float().mean()))
        return cache[size]

    def _sparse(self, x, labels, edges, boundary=None) -> torch.Tensor:
        rows, table = self.modulation(labels, edges, boundary)
        x = x if self.fold_norm else self.spade.param_free_norm(x)
        if x.is_cuda:  # the fused consumer: one Triton pass, no (B, C, H, W) scale and shift
            return torch.ops.rtgan.row_modulate(x, table, rows, None)
        return row_modulate_reference(x, table, rows)  # CPU: index_select + addcmul, in the rows' layout


def sparsify(model: nn.Module, max_density: float = 0.5, fold_spectral: bool = True) -> nn.Module:
    """Swap every SPADE layer of a SPADE generator for its boundary-sparse form (in place, for inference).

    `fold_spectral`: replace spectral-normed weights by W / sigma once (exact in eval mode, which
    uses the stored u, v) instead of recomputing them at every forward.
    """
    from torch.nn.utils import remove_spectral_norm
    from torch.nn.utils.spectral_norm import SpectralNorm

    from ..errors import ConfigError
    from ..models.spade import SPADE

    if getattr(model.config, "noise_nc", 0):
        raise ConfigError("sparsify needs flat label regions; a noise_nc model's input varies at every pixel")
    if fold_spectral:
        for m in model.modules():
            for hook in list(m._forward_pre_hooks.values()):
                if isinstance(hook, SpectralNorm):
                    remove_spectral_norm(m, hook.name)
    k = model.config.num_classes
    cache: dict = {}
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, SPADE):
                setattr(module, child_name, SparseSPADE(child, k, max_density, cache))
    return model


def calibrate(model: nn.Module, *inputs, repeats: int = 2) -> list[dict]:
    """Set each sparse layer's fallback density from timings on a sample input (at export/setup time).

    Per layer: the sample's boundary density d, the dense time and the sparse time; the sparse cost
    grows with the boundary pixels, so the break-even density is d * dense / sparse.
    """
    layers = [m for m in model.modules() if isinstance(m, SparseSPADE)]
    captured: dict[SparseSPADE, tuple] = {}
    hooks = [m.register_forward_pre_hook(lambda m, args: captured.setdefault(m, args)) for m in layers]
    with torch.inference_mode():
        model(*inputs)
    for h in hooks:
        h.remove()
    report = []
    with torch.inference_mode():
        for layer in layers:
            x, seg = captured[layer]
            labels, edges, _, density = layer._maps(seg, tuple(x.shape[2:]))

            dense = _timed(repeats, layer.spade, x, seg)
            sparse = _timed(repeats, layer._sparse, x, labels, edges)
            layer.max_density = min(1.0, density * dense / max(sparse, 1e-9))
            report.append({"size": tuple(x.shape[2:]), "density": density, "dense_ms": dense * 1e3,
                           "sparse_ms": sparse * 1e3, "max_density": layer.max_density})  # fmt: skip
    return report


def _timed(repeats: int, fn, *args) -> float:
    fn(*args)
    t = time.perf_counter()
    for _ in range(repeats):
        fn(*args)
    return (time.perf_counter() - t) / repeats
